"""The checks before the frontend reads a model (compiler/frontend/validate*.py, limits.py): what a
valid but unusual file still compiles to, the limits at their edge, and the errors naming their
node. The hostile corpus (tests/hostile) covers the refusals by the hundred."""
import os
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper

from edgecc.compiler.frontend import load_onnx
from edgecc.compiler.frontend.limits import Limits
from edgecc.ir import EdgeccError, print_graph

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_builders import const, model, save, vi  # noqa: E402


def add_relu(batch=1, order=(0, 1)):
    """x + w, then Relu; the nodes in `order`; `batch` is the input's first dimension."""
    nodes = [helper.make_node("Add", ["x", "w"], ["s"], name="add"), helper.make_node("Relu", ["s"], ["y"], name="act")]
    return model([nodes[i] for i in order], [vi("x", [batch, 4])], [vi("y", [batch, 4])],
                 [const("w", np.arange(4, dtype=np.float32).reshape(1, 4))])


def ir_of(m, folder) -> str:
    """The textual IR of model m, saved as model.onnx in `folder` (the graph takes the file's name)."""
    folder.mkdir()
    return print_graph(load_onnx(save(m, folder)))


def test_nodes_out_of_order_are_taken_in_order(tmp_path):
    assert ir_of(add_relu(order=(1, 0)), tmp_path / "a") == ir_of(add_relu(), tmp_path / "b")


def test_a_minus_one_batch_is_pinned_like_a_symbolic_one(tmp_path):
    assert ir_of(add_relu(batch=-1), tmp_path / "a") == ir_of(add_relu(batch="N"), tmp_path / "b")


def test_the_tensor_byte_limit_is_inclusive(tmp_path):
    path = save(add_relu(), tmp_path)  # its largest tensors: 4 floats, 16 bytes
    load_onnx(path, limits=Limits(max_tensor_bytes=16))
    with pytest.raises(EdgeccError, match=r"over the limit of 15 bytes per tensor"):
        load_onnx(path, limits=Limits(max_tensor_bytes=15))


def test_the_node_limit(tmp_path):
    path = save(add_relu(), tmp_path)
    load_onnx(path, limits=Limits(max_nodes=2))
    with pytest.raises(EdgeccError, match=r"2 nodes, over the limit of 1"):
        load_onnx(path, limits=Limits(max_nodes=1))


def test_the_model_byte_limit_counts_the_file(tmp_path):
    path = save(add_relu(), tmp_path)
    with pytest.raises(EdgeccError, match=r"the file is .* bytes, over the limit of 100 per model"):
        load_onnx(path, limits=Limits(max_model_bytes=100))


def test_onnx_checker_errors_name_the_node_in_one_line(tmp_path):
    m = add_relu()
    m.graph.node[1].attribute.append(helper.make_attribute("fancy", 1))
    with pytest.raises(EdgeccError) as e:
        load_onnx(save(m, tmp_path))
    assert (e.value.node, e.value.op) == ("act", "Relu") and "fancy" in e.value.reason
    assert "\n" not in str(e.value)


def test_a_cycle_names_its_nodes(tmp_path):
    m = add_relu()
    m.graph.node[0].input[0] = "y"  # add reads relu's result, relu reads add's
    with pytest.raises(EdgeccError, match=r"the graph has a cycle: '(add|act)' -> '(act|add)' -> '\1'"):
        load_onnx(save(m, tmp_path))


def test_external_data_reads_only_the_tensors_bytes(tmp_path):
    """Without a length, onnx would read the file to its end: the frontend sets the length from the dims."""
    m = add_relu()
    w = m.graph.initializer[0]
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="weights.bin")
    (tmp_path / "weights.bin").write_bytes(np.full(4, 2.5, np.float32).tobytes() + b"trailing bytes of another use")
    g = load_onnx(save(m, tmp_path))
    assert g.constants[0].data.tolist() == [[2.5, 2.5, 2.5, 2.5]]


def test_a_convolution_window_larger_than_its_input(tmp_path):
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3, 3])
    m = model([node], [vi("x", [1, 1, 2, 2])], [vi("y", [1, 1, 1, 1])], [const("w", np.ones((1, 1, 3, 3), np.float32))])
    with pytest.raises(EdgeccError, match=r"window \[3, 3\] .* larger than the input's spatial dims \[2, 2\]") as e:
        load_onnx(save(m, tmp_path))
    assert (e.value.node, e.value.op) == ("conv", "Conv")


def test_an_invalid_utf8_name_is_refused_where_it_is(tmp_path):
    m = add_relu()
    m.graph.node[1].name = "@@@@"
    (tmp_path / "model.onnx").write_bytes(m.SerializeToString().replace(b"@@@@", b"\xff\xfe\xfd\xfc"))
    with pytest.raises(EdgeccError, match=r"model.graph.node\[1\].name is not valid UTF-8"):
        load_onnx(tmp_path / "model.onnx")
