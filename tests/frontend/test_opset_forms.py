"""Opset differences normalize to one IR form: attributes versus inputs, opset-11 softmax,
auto_pad, negative axes and indices; numbers checked against onnxruntime."""
import os
import sys

import numpy as np
import pytest
from onnx import helper

from edgecc.compiler.frontend import load_onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_builders import F32, I64, assert_matches_ort, const, kinds, model, save, vi  # noqa: E402

X = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)


def lift_one(tmp_path, node, opset, out_shapes, inits=(), x=X, elem=F32):
    outs = [vi(o, s) for o, s in zip(node.output, out_shapes)]
    path = save(model([node], [vi("x", list(x.shape), elem)], outs, inits, opset=opset), tmp_path)
    g = load_onnx(path)
    assert_matches_ort(path, g, [x])
    return g


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_opset11_softmax_flattens_from_axis(tmp_path, op):
    g = lift_one(tmp_path, helper.make_node(op, ["x"], ["y"], axis=1), 11, [[2, 3, 4]])
    kind = "softmax" if op == "Softmax" else "log_softmax"
    assert kinds(g) == ["reshape", kind, "reshape"]
    assert g.ops[0].attrs["shape"] == [2, 12] and g.ops[1].attrs["axis"] == 1
    assert g.ops[1].name == "y" and g.outputs[0].name == "y"


def test_opset13_softmax_is_one_op_with_a_normalized_axis(tmp_path):
    g = lift_one(tmp_path, helper.make_node("Softmax", ["x"], ["y"], axis=-2), 13, [[2, 3, 4]])
    assert kinds(g) == ["softmax"] and g.ops[0].attrs["axis"] == 1


@pytest.mark.parametrize("opset,inputs,attrs", [
    (11, ["x"], {"split": [1, 2]}),
    (13, ["x", "sizes"], {}),
    (18, ["x", "sizes"], {}),
])
def test_split_sizes_attr_or_input(tmp_path, opset, inputs, attrs):
    node = helper.make_node("Split", inputs, ["a", "b"], axis=-2, **attrs)
    g = lift_one(tmp_path, node, opset, [[2, 1, 4], [2, 2, 4]], [const("sizes", np.array([1, 2], np.int64))])
    assert kinds(g) == ["split"] and g.ops[0].attrs == {"axis": 1, "split": [1, 2]}


def test_split_num_outputs(tmp_path):
    node = helper.make_node("Split", ["x"], ["a", "b"], axis=2, num_outputs=2)
    g = lift_one(tmp_path, node, 18, [[2, 3, 2], [2, 3, 2]])
    assert g.ops[0].attrs["split"] == [2, 2]


@pytest.mark.parametrize("op,opset,shape_out", [("Squeeze", 11, [2, 3, 4]), ("Squeeze", 13, [2, 3, 4]),
                                                ("Unsqueeze", 11, [2, 3, 1, 1, 4]),
                                                ("Unsqueeze", 13, [2, 3, 1, 1, 4])])
def test_squeeze_unsqueeze_axes_attr_or_input_become_reshape(tmp_path, op, opset, shape_out):
    x = X.reshape(2, 3, 1, 4) if op == "Squeeze" else X
    axes = [-2] if op == "Squeeze" else [2, -2]
    if opset < 13:
        node = helper.make_node(op, ["x"], ["y"], axes=axes)
    else:
        node = helper.make_node(op, ["x", "axes"], ["y"])
    g = lift_one(tmp_path, node, opset, [shape_out], [const("axes", np.array(axes, np.int64))], x=x)
    assert kinds(g) == ["reshape"] and g.ops[0].attrs["shape"] == shape_out


@pytest.mark.parametrize("op,opset", [("ReduceMean", 13), ("ReduceMean", 18), ("ReduceSum", 11),
                                      ("ReduceSum", 13), ("ReduceMax", 18)])
def test_reduce_axes_attr_or_input(tmp_path, op, opset):
    as_input = opset >= (13 if op == "ReduceSum" else 18)
    node = helper.make_node(op, ["x", "axes"] if as_input else ["x"], ["y"], keepdims=0,
                            **({} if as_input else {"axes": [-1, 0]}))
    g = lift_one(tmp_path, node, opset, [[3]], [const("axes", np.array([-1, 0], np.int64))])
    assert g.ops[0].attrs == {"axes": [0, 2], "keepdims": 0}


def test_reduce_without_axes_reduces_all_or_nothing(tmp_path):
    g = lift_one(tmp_path, helper.make_node("ReduceSum", ["x"], ["y"]), 13, [[1, 1, 1]])
    assert g.ops[0].attrs["axes"] == [0, 1, 2]
    g = lift_one(tmp_path, helper.make_node("ReduceSum", ["x"], ["y"], noop_with_empty_axes=1), 13, [[2, 3, 4]])
    assert kinds(g) == ["identity"]


def test_clip_bounds_from_inputs(tmp_path):
    node = helper.make_node("Clip", ["x", "lo", ""], ["y"])
    g = lift_one(tmp_path, node, 11, [[2, 3, 4]], [const("lo", np.float32(-0.5))])
    assert g.ops[0].attrs["min"] == -0.5 and g.ops[0].attrs["max"] == float("inf")


@pytest.mark.parametrize("opset", [11, 18])
def test_pad_inputs_become_attributes(tmp_path, opset):
    if opset >= 18:
        node = helper.make_node("Pad", ["x", "pads", "value", "axes"], ["y"])
        inits = [const("pads", np.array([1, 2, 0, 1], np.int64)), const("axes", np.array([-1, 1], np.int64))]
    else:
        node = helper.make_node("Pad", ["x", "pads", "value"], ["y"])
        inits = [const("pads", np.array([0, 2, 1, 0, 1, 0], np.int64))]
    g = lift_one(tmp_path, node, opset, [[2, 4, 7]], inits + [const("value", np.float32(1.5))])
    assert g.ops[0].attrs == {"pads": [0, 2, 1, 0, 1, 0], "mode": "constant", "value": 1.5}


@pytest.mark.parametrize("opset,which", [(11, "scales"), (13, "sizes"), (18, "sizes")])
def test_resize_scales_or_sizes(tmp_path, opset, which):
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    names = ["x", "roi", "scales"] if which == "scales" else ["x", "", "", "sizes"]
    node = helper.make_node("Resize", names, ["y"], mode="nearest")
    inits = [const("roi", np.zeros(0, np.float32)), const("scales", np.array([1, 1, 2, 2], np.float32)),
             const("sizes", np.array([1, 1, 8, 8], np.int64))]
    g = lift_one(tmp_path, node, opset, [[1, 1, 8, 8]], inits, x=x)
    assert g.ops[0].attrs["scales"] == [1.0, 1.0, 2.0, 2.0]


def test_auto_pad_becomes_explicit_pads(tmp_path):
    x = np.random.default_rng(1).standard_normal((1, 2, 7, 7)).astype(np.float32)
    w = np.random.default_rng(2).standard_normal((3, 2, 3, 3)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])
    g = lift_one(tmp_path, node, 13, [[1, 3, 4, 4]], [const("w", w)], x=x)
    assert g.ops[0].attrs["pads"] == [1, 1, 1, 1] and g.ops[0].attrs["dilations"] == [1, 1]


def test_negative_axes_and_indices_are_normalized(tmp_path):
    node = helper.make_node("Gather", ["x", "idx"], ["y"], axis=-1)
    g = lift_one(tmp_path, node, 13, [[2, 3, 2]], [const("idx", np.array([-1, 0], np.int64))])
    assert g.ops[0].attrs["axis"] == 2 and list(g.ops[0].operands[1].data) == [3, 0]
    g = lift_one(tmp_path, helper.make_node("Concat", ["x", "x"], ["y"], axis=-3), 13, [[4, 3, 4]])
    assert g.ops[0].attrs["axis"] == 0


def test_gemm_with_constant_operands_stays_gemm(tmp_path):
    x = np.random.default_rng(3).standard_normal((2, 5)).astype(np.float32)
    node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1, alpha=0.5)
    inits = [const("w", np.ones((4, 5), np.float32)), const("b", np.arange(4, dtype=np.float32))]
    g = lift_one(tmp_path, node, 13, [[2, 4]], inits, x=x)
    assert kinds(g) == ["gemm"] and g.ops[0].attrs["trans_b"] == 1 and g.ops[0].attrs["alpha"] == 0.5


def test_max_pool_with_indices_has_two_results(tmp_path):
    x = np.random.default_rng(4).standard_normal((1, 1, 4, 4)).astype(np.float32)
    node = helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2, 2], strides=[2, 2])
    path = save(model([node], [vi("x", [1, 1, 4, 4])], [vi("y", [1, 1, 2, 2]), vi("i", [1, 1, 2, 2], I64)]),
                tmp_path)
    g = load_onnx(path)
    assert kinds(g) == ["max_pool"] and len(g.ops[0].results) == 2
    assert_matches_ort(path, g, [x])


def test_lstm_missing_inputs_are_none_operands(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 1, 2)).astype(np.float32)
    inits = [const("W", rng.standard_normal((1, 8, 2)).astype(np.float32)),
             const("R", rng.standard_normal((1, 8, 2)).astype(np.float32))]
    node = helper.make_node("LSTM", ["x", "W", "R", "", "", "h0"], ["", "y_h"], hidden_size=2)
    path = save(model([node], [vi("x", [3, 1, 2]), vi("h0", [1, 1, 2])], [vi("y_h", [1, 1, 2])], inits, opset=14),
                tmp_path)
    g = load_onnx(path)
    lstm = g.ops[0]
    assert lstm.kind == "lstm" and lstm.operands[3] is None and lstm.operands[4] is None
    assert lstm.attrs["activations"] == ["Sigmoid", "Tanh", "Tanh"] and len(lstm.results) == 2
    assert_matches_ort(path, g, [x, np.zeros((1, 1, 2), np.float32)])


def test_deprecated_upsample_is_a_nearest_resize(tmp_path):
    node = helper.make_node("Upsample", ["x", "s"], ["y"], mode="nearest")
    path = save(model([node], [vi("x", [1, 1, 2, 2])], [vi("y", [1, 1, 4, 4])],
                      [const("s", np.array([1, 1, 2, 2], np.float32))], opset=11), tmp_path)
    g = load_onnx(path)
    assert kinds(g) == ["resize"] and g.ops[0].attrs["coordinate_transformation_mode"] == "asymmetric"
    interp = pytest.importorskip("edgecc.ir.interp")
    y = interp.run(g, [np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)])[0]
    assert y[0, 0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]


@pytest.mark.parametrize("mode,scales", [("nearest", [1, 1, 2, 3]), ("nearest", [1, 1, 0.5, 0.5]),
                                         ("linear", [1, 1, 2, 2])])
def test_opset10_resize_reads_scales_as_upsample(tmp_path, mode, scales):
    x = np.arange(36, dtype=np.float32).reshape(1, 1, 6, 6)
    out = [1, 1] + [int(6 * s) for s in scales[2:]]
    node = helper.make_node("Resize", ["x", "scales"], ["y"], mode=mode)
    g = lift_one(tmp_path, node, 10, [out], [const("scales", np.array(scales, np.float32))], x=x)
    assert g.ops[0].attrs["coordinate_transformation_mode"] == "asymmetric"


def test_opset10_pad_attributes(tmp_path):
    node = helper.make_node("Pad", ["x"], ["y"], pads=[0, 1, 0, 0, 2, 1], value=0.5)
    g = lift_one(tmp_path, node, 10, [[2, 6, 5]])
    assert g.ops[0].attrs == {"pads": [0, 1, 0, 0, 2, 1], "mode": "constant", "value": 0.5}


@pytest.mark.parametrize("mode,which", [("linear", "scales"), ("cubic", "sizes")])
def test_antialiased_resize_becomes_matrix_products(tmp_path, mode, which):
    x = np.random.default_rng(6).standard_normal((1, 2, 7, 9)).astype(np.float32)
    names = ["x", "", "scales"] if which == "scales" else ["x", "", "", "sizes"]
    node = helper.make_node("Resize", names, ["y"], mode=mode, antialias=1)
    inits = [const("scales", np.array([1, 1, 0.6, 0.5], np.float32)), const("sizes", np.array([1, 2, 4, 4], np.int64))]
    out = [1, 2, 4, 4]
    g = lift_one(tmp_path, node, 18, [out], inits, x=x)
    assert "resize" not in kinds(g) and kinds(g).count("matmul") == 2
