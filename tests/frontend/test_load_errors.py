"""What the frontend refuses, each as one EdgeccError naming the file (and node and op when
there is one)."""
import os
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgecc.compiler.frontend import load_onnx
from edgecc.ir import EdgeccError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_builders import const, model, save, vi  # noqa: E402


def relu_model(opset=17):
    return model([helper.make_node("Relu", ["x"], ["y"], name="act")], [vi("x", [1, 4])], [vi("y", [1, 4])],
                 opset=opset)


def external_data_model(folder, location):
    """A model whose weight lives in an external file at `location` (relative to the model)."""
    m = model([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", [1, 4])], [vi("y", [1, 4])],
              [const("w", np.ones((1, 4), np.float32))])
    w = m.graph.initializer[0]
    w.ClearField("float_data")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value=location)
    path = os.path.join(str(folder), "model.onnx")
    onnx.save(m, path)
    return path


def error_of(path, **kw) -> EdgeccError:
    with pytest.raises(EdgeccError) as e:
        load_onnx(path, **kw)
    assert "\n" not in str(e.value)
    assert e.value.file == str(path)
    return e.value


def test_missing_file(tmp_path):
    assert "no such file" in str(error_of(tmp_path / "nope.onnx"))


def test_text_file(tmp_path):
    p = tmp_path / "model.onnx"
    p.write_text("this is not a model\n")
    assert "not an ONNX model" in str(error_of(p))


def test_truncated_file(tmp_path):
    data = relu_model().SerializeToString()
    p = tmp_path / "model.onnx"
    p.write_bytes(data[: len(data) // 2])
    assert "not an ONNX model" in str(error_of(p))


@pytest.mark.parametrize("opset", [9, 29])
def test_opset_out_of_range(tmp_path, opset):
    assert f"opset {opset} is outside the supported range" in str(error_of(save(relu_model(opset), tmp_path)))


def test_unknown_domain(tmp_path):
    m = model([helper.make_node("Fancy", ["x"], ["y"], name="magic", domain="com.example")], [vi("x", [1, 4])],
              [vi("y", [1, 4])], domains=["com.example"])
    e = error_of(save(m, tmp_path))
    assert (e.node, e.op) == ("magic", "Fancy") and "unknown domain 'com.example'" in e.reason


def test_unsupported_op(tmp_path):
    m = model([helper.make_node("TopK", ["x", "k"], ["v", "i"], name="top")], [vi("x", [1, 4])],
              [vi("v", [1, 2]), vi("i", [1, 2], TensorProto.INT64)], [const("k", np.array([2], np.int64))])
    e = error_of(save(m, tmp_path))
    assert (e.node, e.op) == ("top", "TopK") and "does not support" in e.reason


def test_unsupported_attribute_value(tmp_path):
    node = helper.make_node("Pad", ["x", "pads"], ["y"], name="pad", mode="mirror")
    m = model([node], [vi("x", [1, 4])], [vi("y", [1, 6])], [const("pads", np.array([0, 1, 0, 1], np.int64))])
    e = error_of(save(m, tmp_path))
    assert e.op == "Pad" and "mode='mirror' is not supported" in e.reason


def test_shape_input_that_is_not_constant(tmp_path):
    node = helper.make_node("Tile", ["x", "r"], ["y"], name="tile")
    m = model([node], [vi("x", [1, 4]), vi("r", [2], TensorProto.INT64)], [vi("y", None)])
    e = error_of(save(m, tmp_path))
    assert e.op == "Tile"


def test_unsupported_element_type(tmp_path):
    m = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [1, 4], TensorProto.DOUBLE)],
              [vi("y", [1, 4], TensorProto.DOUBLE)])
    assert "double" in str(error_of(save(m, tmp_path)))


@pytest.mark.parametrize("location", ["../weights.bin", "sub/../../weights.bin", "/etc/passwd"])
def test_external_data_leaving_the_folder(tmp_path, location):
    folder = tmp_path / "m"
    folder.mkdir()
    (tmp_path / "weights.bin").write_bytes(np.ones(4, np.float32).tobytes())
    assert "leaves the model's folder" in str(error_of(external_data_model(folder, location)))


def test_external_data_inside_the_folder_loads(tmp_path):
    (tmp_path / "weights.bin").write_bytes(np.full(4, 2.0, np.float32).tobytes())
    g = load_onnx(external_data_model(tmp_path, "weights.bin"))
    assert g.constants[0].data.tolist() == [[2.0, 2.0, 2.0, 2.0]]


def test_external_data_file_missing(tmp_path):
    assert "missing" in str(error_of(external_data_model(tmp_path, "weights.bin")))


def test_model_local_functions_are_inlined(tmp_path):
    fn = helper.make_function("local", "Act", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])],
                              [helper.make_opsetid("", 17)])
    m = model([helper.make_node("Act", ["x"], ["y"], domain="local")], [vi("x", [1, 4])], [vi("y", [1, 4])],
              domains=["local"])
    m.functions.append(fn)
    g = load_onnx(save(m, tmp_path))
    assert [op.kind for op in g.ops] == ["relu"]
