"""QDQ lifting: QuantizeLinear / DequantizeLinear become quantized types wherever they can, and
explicit ops (or float arithmetic) where they cannot; numbers match onnxruntime."""
import os
import sys

import numpy as np
import pytest
from onnx import helper

from edgecc.compiler.frontend import load_onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_builders import I8, U8, assert_matches_ort, const, kinds, model, save, vi  # noqa: E402

RNG = np.random.default_rng(0)


def conv_weights():
    w = RNG.integers(-63, 64, (4, 3, 3, 3)).astype(np.int8)  # 7 bits: onnxruntime's x86 int8 kernels saturate beyond
    w_scale = (RNG.random(4) * 0.01 + 0.005).astype(np.float32)
    bias = RNG.integers(-500, 500, 4).astype(np.int32)
    return [const("w", w), const("w_scale", w_scale), const("w_zp", np.zeros(4, np.int8)),
            const("b", bias), const("b_scale", (w_scale * np.float32(0.02)).astype(np.float32)),
            const("b_zp", np.zeros(4, np.int32))]


def qdq_conv_nodes(x_dq_input):
    return [
        helper.make_node("DequantizeLinear", [x_dq_input, "x_scale", "x_zp"], ["x_dq"]),
        helper.make_node("DequantizeLinear", ["w", "w_scale", "w_zp"], ["w_dq"], axis=0),
        helper.make_node("DequantizeLinear", ["b", "b_scale", "b_zp"], ["b_dq"], axis=0),
        helper.make_node("Conv", ["x_dq", "w_dq", "b_dq"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("QuantizeLinear", ["relu", "y_scale", "y_zp"], ["y_q"]),
    ]


def params():
    return [const("x_scale", np.float32(0.02)), const("x_zp", np.int8(3)),
            const("y_scale", np.float32(0.05)), const("y_zp", np.int8(-128))]


def test_integer_interface_lifts_into_types(tmp_path):
    nodes = qdq_conv_nodes("x") + [helper.make_node("Identity", ["y_q"], ["y"])]
    m = model(nodes, [vi("x", [1, 3, 8, 8], I8)], [vi("y", [1, 4, 8, 8], I8)], conv_weights() + params())
    path = save(m, tmp_path)
    g = load_onnx(path)
    assert kinds(g) == ["conv", "relu", "identity"]
    x = g.inputs[0]
    assert x.type.quant.scale == (pytest.approx(0.02),) and x.type.quant.zero_point == (3,)
    conv, relu = g.ops[0], g.ops[1]
    assert conv.operands[0] is x
    assert conv.operands[1].type.quant.axis == 0 and conv.operands[2].type.dtype == "i32"
    assert relu.result.name == "y_q" and relu.result.type.quant.zero_point == (-128,)
    x_in = RNG.integers(-128, 128, (1, 3, 8, 8)).astype(np.int8)
    assert_matches_ort(path, g, [x_in], rtol=0, atol=1)


def test_float_interface_keeps_quantize_and_dequantize(tmp_path):
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["x_q"])] + qdq_conv_nodes("x_q") + [
        helper.make_node("DequantizeLinear", ["y_q", "y_scale", "y_zp"], ["y"])]
    m = model(nodes, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 4, 8, 8])], conv_weights() + params())
    path = save(m, tmp_path)
    g = load_onnx(path)
    assert kinds(g) == ["quantize", "conv", "relu", "dequantize"]
    assert g.inputs[0].type.is_float and g.outputs[0].type.is_float
    assert g.ops[1].operands[0] is g.ops[0].result and g.ops[0].result.type.dtype == "i8"
    x_in = RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)
    assert_matches_ort(path, g, [x_in], rtol=0, atol=0.05 + 1e-6)


def test_requantization_becomes_identity(tmp_path):
    """DequantizeLinear then QuantizeLinear with other parameters: an identity between two types."""
    nodes = [helper.make_node("DequantizeLinear", ["x", "x_scale", "x_zp"], ["x_dq"]),
             helper.make_node("QuantizeLinear", ["x_dq", "y_scale", "y_zp"], ["y"])]
    m = model(nodes, [vi("x", [2, 5], I8)], [vi("y", [2, 5], I8)], params())
    path = save(m, tmp_path)
    g = load_onnx(path)
    assert kinds(g) == ["identity"]
    assert g.ops[0].operands[0].type.quant.zero_point == (3,)
    assert g.ops[0].result.type.quant.zero_point == (-128,)
    assert_matches_ort(path, g, [RNG.integers(-128, 128, (2, 5)).astype(np.int8)], rtol=0, atol=1)


def test_integers_also_read_raw_are_dequantized_by_arithmetic(tmp_path):
    """x feeds DequantizeLinear and an integer Add: x keeps no quantization, DQ becomes arithmetic."""
    nodes = [helper.make_node("DequantizeLinear", ["x", "x_scale", "x_zp"], ["y"]),
             helper.make_node("Add", ["x", "x"], ["twice"])]
    m = model(nodes, [vi("x", [2, 5], I8)], [vi("y", [2, 5]), vi("twice", [2, 5], I8)], params())
    path = save(m, tmp_path)
    g = load_onnx(path)
    assert g.inputs[0].type.quant is None
    assert "dequantize" not in kinds(g) and "cast" in kinds(g)
    assert [v.name for v in g.outputs] == ["y", "twice"]
    assert_matches_ort(path, g, [RNG.integers(-128, 128, (2, 5)).astype(np.int8)])


def test_runtime_scale_is_arithmetic(tmp_path):
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["y"], axis=1)]
    m = model(nodes, [vi("x", [2, 3, 4]), vi("s", [3])], [vi("y", [2, 3, 4], U8)],
              [const("zp", np.array([0, 10, 128], np.uint8))], opset=13)
    path = save(m, tmp_path)
    g = load_onnx(path)
    assert "quantize" not in kinds(g)
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    assert_matches_ort(path, g, [x, np.array([0.01, 0.02, 0.05], np.float32)], rtol=0, atol=0)


def test_qlinear_conv_lifts_to_quantized_conv(tmp_path):
    w = RNG.integers(0, 256, (4, 3, 3, 3)).astype(np.uint8)
    inits = [const("xs", np.float32(0.02)), const("xz", np.uint8(128)), const("w", w),
             const("ws", np.float32(0.01)), const("wz", np.uint8(120)), const("ys", np.float32(0.1)),
             const("yz", np.uint8(100)), const("b", RNG.integers(-100, 100, 4).astype(np.int32))]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"])
    m = model([node], [vi("x", [1, 3, 6, 6], U8)], [vi("y", [1, 4, 4, 4], U8)], inits, opset=13)
    path = save(m, tmp_path)
    g = load_onnx(path)
    assert kinds(g) == ["conv"]
    conv = g.ops[0]
    assert conv.operands[0] is g.inputs[0] and g.inputs[0].type.quant.zero_point == (128,)
    assert conv.operands[2].type.quant.scale == (pytest.approx(0.0002),)
    assert conv.result.type.dtype == "u8" and conv.result.type.quant.zero_point == (100,)
    assert_matches_ort(path, g, [RNG.integers(0, 256, (1, 3, 6, 6)).astype(np.uint8)], rtol=0, atol=1)


def test_conv_integer_reads_unit_scales_and_gives_int32(tmp_path):
    w = RNG.integers(0, 256, (2, 1, 2, 2)).astype(np.uint8)
    node = helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"])
    m = model([node], [vi("x", [1, 1, 4, 4], U8)], [vi("y", [1, 2, 3, 3], 6)],
              [const("w", w), const("xz", np.uint8(7)), const("wz", np.uint8(3))], opset=13)
    path = save(m, tmp_path)
    g = load_onnx(path)
    conv = g.ops[0]
    assert kinds(g) == ["conv"]
    assert conv.operands[0].type.quant.scale == (1.0,) and conv.operands[0].type.quant.zero_point == (7,)
    assert conv.result.type.dtype == "i32" and conv.result.type.quant.zero_point == (0,)
    assert_matches_ort(path, g, [RNG.integers(0, 256, (1, 1, 4, 4)).astype(np.uint8)], rtol=0, atol=0)


def test_matmul_integer_per_column_zero_points(tmp_path):
    b = RNG.integers(-128, 128, (5, 3)).astype(np.int8)
    node = helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["y"])
    m = model([node], [vi("a", [2, 5], I8)], [vi("y", [2, 3], 6)],
              [const("b", b), const("az", np.int8(-2)), const("bz", np.array([1, 0, -1], np.int8))], opset=13)
    path = save(m, tmp_path)
    g = load_onnx(path)
    assert g.ops[0].operands[1].type.quant.axis == 1
    assert_matches_ort(path, g, [RNG.integers(-128, 128, (2, 5)).astype(np.int8)], rtol=0, atol=0)


def test_quantized_input_through_transpose_takes_the_parameters(tmp_path):
    """As vww_int8: int8 input -> Transpose -> DequantizeLinear: input and transpose are quantized."""
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2]),
             helper.make_node("DequantizeLinear", ["xt", "x_scale", "x_zp"], ["x_dq"]),
             helper.make_node("Relu", ["x_dq"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "y_scale", "y_zp"], ["y"])]
    m = model(nodes, [vi("x", [1, 4, 4, 3], I8)], [vi("y", [1, 3, 4, 4], I8)], params())
    path = save(m, tmp_path)
    g = load_onnx(path)
    assert kinds(g) == ["transpose", "relu"]
    assert g.inputs[0].type.quant == g.ops[0].result.type.quant
    assert_matches_ort(path, g, [RNG.integers(-128, 128, (1, 4, 4, 3)).astype(np.int8)], rtol=0, atol=1)


def test_quantized_integers_read_as_plain_integers_and_with_other_parameters(tmp_path):
    """QuantizeLinear's integers feed an integer Add and a DequantizeLinear with other parameters:
    both read the integers themselves, as in ONNX (no requantization)."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "y_scale", "y_zp"], ["q"]),
             helper.make_node("Add", ["q", "q"], ["twice"]),
             helper.make_node("DequantizeLinear", ["q", "x_scale", "x_zp"], ["reread"])]
    m = model(nodes, [vi("x", [2, 6])], [vi("twice", [2, 6], I8), vi("reread", [2, 6])], params())
    path = save(m, tmp_path)
    g = load_onnx(path)
    assert "quantize" in kinds(g) or any(op.result.type.is_quantized for op in g.ops)
    x = (RNG.standard_normal((2, 6)) * 4).astype(np.float32)
    assert_matches_ort(path, g, [x], rtol=0, atol=1e-6)


def test_dequantized_constant_as_graph_output_stays_float(tmp_path):
    nodes = [helper.make_node("DequantizeLinear", ["w", "x_scale", "x_zp"], ["y"]),
             helper.make_node("Relu", ["x"], ["r"])]
    m = model(nodes, [vi("x", [2])], [vi("y", [3]), vi("r", [2])],
              [const("w", np.array([1, 2, 3], np.int8))] + params())
    path = save(m, tmp_path)
    g = load_onnx(path)
    assert [v.name for v in g.outputs] == ["y", "r"] and g.outputs[0].type.dtype == "f32"
    assert_matches_ort(path, g, [np.ones(2, np.float32)])
