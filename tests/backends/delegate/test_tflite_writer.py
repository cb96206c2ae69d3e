"""The TFLite writer: models it writes run in LiteRT and give edgecc's numbers.

Whole MLPerf Tiny int8 models (lowered as the delegate backend lowers them) are written, run in
LiteRT on their golden input and compared with the golden output (onnxruntime's) and with edgecc's
interpreter, within one step. One-op graphs built by hand with random int8 data are compared with
the interpreter, under LiteRT's reference kernels (what the accelerators' CPU fallback runs) and its
default ones (XNNPACK): exactly where TFLite's integer arithmetic lands on the same codes as edgecc's
real-number reading, within one step where its fixed-point arithmetic rounds differently (each case
says why). The flatbuffer itself is read back with the `tflite` package: names, versions, quantization.
"""
import math

import numpy as np
import pytest
import tflite

from conftest import mlperf_path
from edgecc.backends.delegate.tflite_writer import NotExportable, tflite_model, tflite_op_name, why_not_tflite
from edgecc.compiler.driver import load
from edgecc.compiler.pipeline import lower
from edgecc.ir import Graph, Op, Quant, TensorType, Value, verify
from edgecc.ir.interp import run
from edgecc.ir.ops import fill_defaults, infer_shapes

litert_interpreter = pytest.importorskip("ai_edge_litert.interpreter")
Interpreter = litert_interpreter.Interpreter
# the reference kernels (what the accelerators' CPU fallback runs) and LiteRT's default ones (XNNPACK)
RESOLVERS = {"reference": litert_interpreter.OpResolverType.BUILTIN_REF,
             "default": litert_interpreter.OpResolverType.AUTO}
PASSES = ["fold_constants", "fold_batchnorm", "fuse", "layout", "float_fallback"]
rng = np.random.default_rng(0)


# ---- running -------------------------------------------------------------------------------------
def litert(model: bytes, graph, inputs, resolver="reference") -> list:
    """Run the model in LiteRT; inputs and outputs matched to the graph's by tensor name."""
    it = Interpreter(model_content=model, experimental_op_resolver_type=RESOLVERS[resolver])
    it.allocate_tensors()
    by_name = {d["name"]: d["index"] for d in it.get_input_details()}
    for v, a in zip(graph.inputs, inputs):
        it.set_tensor(by_name[v.name], a)
    it.invoke()
    out = {d["name"]: d["index"] for d in it.get_output_details()}
    return [it.get_tensor(out[v.name]) for v in graph.outputs]


def lsb(a, b) -> int:
    return int(np.abs(np.asarray(a, np.int64) - np.asarray(b, np.int64)).max(initial=0))


# ---- whole models ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lowered():
    cache = {}

    def get(stem):
        if stem not in cache:
            cache[stem] = lower(load(mlperf_path(stem)), "host", passes=PASSES)
        return cache[stem]
    return get


@pytest.mark.slow
@pytest.mark.parametrize("stem", ["kws_int8", "vww_int8", "ic_int8", "ad_int8"])
@pytest.mark.parametrize("resolver", sorted(RESOLVERS))
def test_mlperf_model(stem, resolver, lowered):
    g = lowered(stem)
    golden = np.load(mlperf_path(stem, "npz"))
    got = litert(tflite_model(g), g, [golden["input"]], resolver)[0]
    assert got.dtype == golden["output"].dtype and got.shape == golden["output"].shape
    assert lsb(got, golden["output"]) <= 1
    assert lsb(got, run(g, [golden["input"]])[0]) <= 1


@pytest.mark.slow
def test_mlperf_layers_match_the_converter(lowered):
    """Read back: the builtins at the versions TFLite's own converter writes for kws (as in the
    kws_int8.tflite next to the onnx, not read here), the interface names, and the depthwise weights'
    per-channel quantization along axis 3 with the bias at input scale * weight scale."""
    g = lowered("kws_int8")
    m = tflite.Model.GetRootAs(tflite_model(g), 0)
    sg = m.Subgraphs(0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    codes = {names[m.OperatorCodes(i).BuiltinCode()]: m.OperatorCodes(i).Version()
             for i in range(m.OperatorCodesLength())}
    assert codes == {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "AVERAGE_POOL_2D": 2, "RESHAPE": 1,
                     "FULLY_CONNECTED": 4, "SOFTMAX": 2}
    assert [sg.Tensors(i).Name().decode() for i in sg.InputsAsNumpy()] == [v.name for v in g.inputs]
    assert [sg.Tensors(i).Name().decode() for i in sg.OutputsAsNumpy()] == [v.name for v in g.outputs]
    depthwise = next(sg.Operators(i) for i in range(sg.OperatorsLength())
                     if names[m.OperatorCodes(sg.Operators(i).OpcodeIndex()).BuiltinCode()] == "DEPTHWISE_CONV_2D")
    x, w, b = (sg.Tensors(int(i)) for i in depthwise.InputsAsNumpy())
    assert list(w.ShapeAsNumpy()) == [1, 3, 3, 64] and w.Quantization().QuantizedDimension() == 3
    np.testing.assert_allclose(b.Quantization().ScaleAsNumpy(),
                               np.float32(x.Quantization().ScaleAsNumpy()[0]) * w.Quantization().ScaleAsNumpy(),
                               rtol=1e-6)


# ---- one-op graphs ------------------------------------------------------------------------------------
def q(scale=None, zero=None) -> Quant:
    scale = float(rng.uniform(0.02, 0.08)) if scale is None else scale
    return Quant((scale,), (int(rng.integers(-20, 20)) if zero is None else zero,))


def act(shape, quant=None, layout=None, dtype="i8") -> Value:
    """A graph input: int8 quantized (float32 when dtype is f32)."""
    quant = None if dtype == "f32" else (quant or q())
    return Value(f"x{rng.integers(1 << 30)}", TensorType(tuple(shape), dtype, quant, layout))


def const(data, quant, layout=None) -> Value:
    data = np.asarray(data)
    dtype = {np.dtype("int8"): "i8", np.dtype("int32"): "i32", np.dtype("float32"): "f32"}[data.dtype]
    return Value(f"c{rng.integers(1 << 30)}", TensorType(data.shape, dtype, quant, layout), data)


def weights(shape, axis=0) -> Value:
    """int8 weights, per output channel (axis 0) or per tensor (axis None)."""
    n = shape[0] if axis is not None else 1
    quant = Quant(tuple(rng.uniform(0.002, 0.02, n).tolist()), (0,) * n, axis)
    return const(rng.integers(-127, 128, shape).astype(np.int8), quant, "ohwi" if len(shape) == 4 else None)


def bias(w: Value, x: Value) -> Value:
    n = w.type.shape[0]
    scales = np.broadcast_to(np.asarray(w.type.quant.scale) * x.type.quant.scale[0], (n,))
    return const(rng.integers(-3000, 3000, n).astype(np.int32), Quant(tuple(scales.tolist()), (0,) * n, 0))


def one_op(kind, operands, attrs=None, quant=None, dtype="i8", layout=None, shape=None) -> Graph:
    """A graph of one op named 'layer' with result %y (int8 with `quant`, random if not given)."""
    op = Op(kind, operands, [Value("y", TensorType((), "f32"))], fill_defaults(kind, attrs or {}), "layer")
    shape = shape or infer_shapes(op)[0]
    op.result.type = TensorType(tuple(shape), dtype, None if dtype == "f32" else (quant or q()), layout)
    g = Graph("case", [v for v in operands if v is not None and not v.is_const], [op.result], [op],
              [v for v in operands if v is not None and v.is_const])
    verify(g)
    return g


def feeds(g) -> list:
    out = []
    for v in g.inputs:
        if v.type.dtype == "f32":
            out.append(rng.uniform(-3, 3, v.type.shape).astype(np.float32))
        else:
            out.append(rng.integers(-128, 128, v.type.shape).astype(np.int8))
    return out


NHWC = dict(channels_last=1)


def conv(x_shape, w_shape, group=1, with_bias=True, w_axis=0, **attrs):
    nd = len(x_shape) - 2
    x = act(x_shape, layout={1: "nwc", 2: "nhwc"}[nd])
    w = weights(w_shape, w_axis)
    if nd == 1:
        w.type = w.type.with_(layout="owi")
    a = dict(strides=[1] * nd, dilations=[1] * nd, pads=[0] * 2 * nd, group=group, **NHWC)
    a.update(attrs)
    return one_op("conv", [x, w] + ([bias(w, x)] if with_bias else []), a, layout=x.type.layout)


def fc(x_shape, n, w_axis=None, **attrs):
    x = act(x_shape)
    w = weights((n, x_shape[-1]), w_axis)
    return one_op("fully_connected", [x, w, bias(w, x)], attrs)


def pool(kind, x_shape, same_quant=True, **attrs):
    x = act(x_shape, layout="nhwc")
    return one_op(kind, [x], dict(NHWC, **attrs), quant=x.type.quant if same_quant else None, layout="nhwc")


def unary(kind, x_shape=(1, 6, 6, 8), quant=None, same_quant=False, **attrs):
    x = act(x_shape)
    return one_op(kind, [x], attrs, quant=x.type.quant if same_quant else quant)


def binary(kind, a_shape, b_shape, b_const=False, quant=None, **attrs):
    """Two operands quantized as `quant` (and so the result), or each its own random way."""
    a = act(a_shape, quant)
    b = const(rng.integers(-128, 128, b_shape).astype(np.int8), quant or q()) if b_const else act(b_shape, quant)
    return one_op(kind, [a, b], attrs, quant=quant)


def resize(mode, ctm, nearest="round_prefer_floor", size=(8, 12)):
    x = act((1, 4, 6, 3), layout="nhwc")
    scales = [1.0, size[0] / 4, size[1] / 6, 1.0]
    return one_op("resize", [x], dict(mode=mode, coordinate_transformation_mode=ctm, nearest_mode=nearest,
                                      scales=scales), quant=x.type.quant, layout="nhwc", shape=(1, *size, 3))


def add_relu():
    """add -> relu with the same quantization: written as one ADD with a fused RELU."""
    g = binary("add", (1, 4, 4, 8), (1, 4, 4, 8))
    y = g.ops[0].result
    r = Value("r", y.type)
    g.ops.append(Op("relu", [y], [r], {}, "relu"))
    g.outputs = [r]
    verify(g)
    return g


def requantize():
    x = act((1, 16))
    return one_op("quantize", [x])


def sliced():
    x = act((1, 9, 10, 4))
    return one_op("slice", [x], dict(starts=[1, 8, 0], ends=[9, -1, 4], axes=[1, 2, 3], steps=[3, -2, 1]),
                  quant=x.type.quant)


# (id, graph builder, largest difference from the interpreter in steps: one for both kernel sets, or
# (default kernels, reference kernels), expected TFLite builtin)
CASES = [
    # convs, dense layers and elementwise arithmetic: an int32 accumulator requantized by a 31-bit
    # fixed-point multiplier, which lands on edgecc's rounding of the real product (the two could only
    # disagree within 2^-31 of a tie). LiteRT's reference kernels requantize more coarsely and round
    # values within about 2^-15 of a tie the other way (seen: -116.4969 written as -117): one step
    ("conv3x3_same_relu", lambda: conv((1, 8, 8, 3), (6, 3, 3, 3), pads=[1, 1, 1, 1], activation="relu"), (0, 1),
     "CONV_2D"),
    ("conv3x3_s2_same_relu6", lambda: conv((1, 9, 9, 4), (8, 3, 3, 4), strides=[2, 2], pads=[1, 1, 1, 1],
                                           activation="relu6"), (0, 1), "CONV_2D"),
    ("conv_s2_tf_same", lambda: conv((1, 8, 8, 4), (8, 3, 3, 4), strides=[2, 2], pads=[0, 0, 1, 1]), (0, 1), "CONV_2D"),
    ("conv_explicit_pads", lambda: conv((1, 8, 8, 4), (5, 5, 5, 4), strides=[2, 2], pads=[2, 1, 1, 2]), (0, 1),
     "CONV_2D"),
    ("conv_clip", lambda: conv((1, 6, 6, 4), (4, 1, 1, 4), activation="clip", act_params=[-0.5, 1.0]), (0, 1),
     "CONV_2D"),
    ("conv_dilated", lambda: conv((1, 10, 10, 3), (4, 3, 3, 3), dilations=[2, 2], pads=[2, 2, 2, 2]), (0, 1), "CONV_2D"),
    ("conv_no_bias_per_tensor", lambda: conv((1, 5, 5, 3), (4, 3, 3, 3), with_bias=False, w_axis=None), (0, 1),
     "CONV_2D"),
    ("conv1d", lambda: conv((1, 20, 6), (8, 5, 6), strides=[2], pads=[2, 2], activation="relu"), (0, 1),
     "CONV_2D"),
    ("depthwise", lambda: conv((1, 8, 8, 6), (6, 3, 3, 1), group=6, pads=[1, 1, 1, 1], activation="relu"), (0, 1),
     "DEPTHWISE_CONV_2D"),
    ("depthwise_multiplier2", lambda: conv((1, 7, 7, 3), (6, 3, 3, 1), group=3, strides=[2, 2],
                                           pads=[1, 1, 1, 1]), (0, 1), "DEPTHWISE_CONV_2D"),
    ("fc_relu", lambda: fc((1, 40), 10, activation="relu"), (0, 1), "FULLY_CONNECTED"),
    ("fc_per_channel", lambda: fc((2, 32), 8, w_axis=0), (0, 1), "FULLY_CONNECTED"),
    ("fc_rank3", lambda: fc((1, 3, 16), 5), (0, 1), "FULLY_CONNECTED"),
    # average pools: TFLite rounds the mean half away from zero, edgecc half to even: ties differ
    ("avgpool_valid", lambda: pool("average_pool", (1, 8, 8, 4), kernel_shape=[2, 2], strides=[2, 2],
                                   pads=[0, 0, 0, 0]), 1, "AVERAGE_POOL_2D"),
    ("avgpool_same_uncounted", lambda: pool("average_pool", (1, 7, 7, 4), kernel_shape=[3, 3], strides=[1, 1],
                                            pads=[1, 1, 1, 1]), 1, "AVERAGE_POOL_2D"),
    ("avgpool_counted_pads", lambda: pool("average_pool", (1, 6, 6, 4), kernel_shape=[3, 3], strides=[2, 2],
                                          pads=[1, 1, 1, 1], count_include_pad=1), 1, "AVERAGE_POOL_2D"),
    # max pools pick a stored code: exact
    ("maxpool_same", lambda: pool("max_pool", (1, 9, 9, 4), kernel_shape=[3, 3], strides=[2, 2],
                                  pads=[1, 1, 1, 1], dilations=[1, 1]), 0, "MAX_POOL_2D"),
    ("maxpool_explicit_pads", lambda: pool("max_pool", (1, 8, 8, 4), kernel_shape=[3, 3], strides=[2, 2],
                                           pads=[1, 1, 0, 0], dilations=[1, 1]), 0, "MAX_POOL_2D"),
    # means, sums and the elementwise arithmetic rescale in fixed point: one step
    ("global_average_pool", lambda: pool("global_average_pool", (1, 5, 5, 8), same_quant=False), (0, 1), "MEAN"),
    ("reduce_mean", lambda: unary("reduce_mean", axes=[1, 2], keepdims=0), (0, 1), "MEAN"),
    ("global_max_pool", lambda: pool("global_max_pool", (1, 5, 5, 8)), 0, "REDUCE_MAX"),
    ("add", lambda: binary("add", (1, 4, 4, 8), (1, 4, 4, 8)), (0, 1), "ADD"),
    ("add_broadcast_const", lambda: binary("add", (1, 4, 4, 8), (8,), b_const=True), (0, 1), "ADD"),
    ("add_relu", add_relu, (0, 1), "ADD"),
    ("sub", lambda: binary("sub", (1, 4, 4, 8), (1, 1, 1, 8)), (0, 1), "SUB"),
    ("mul", lambda: binary("mul", (1, 4, 4, 8), (1, 4, 4, 8)), (0, 1), "MUL"),
    ("max", lambda: binary("max", (2, 8), (2, 8), quant=Quant((0.05,), (3,))), 0, "MAXIMUM"),
    # data movement copies codes: exact
    ("reshape", lambda: unary("reshape", (1, 2, 3, 4), same_quant=True, shape=[1, 24]), 0, "RESHAPE"),
    ("transpose", lambda: unary("transpose", (1, 2, 3, 4), same_quant=True, perm=[0, 3, 1, 2]), 0, "TRANSPOSE"),
    ("concat", lambda: binary("concat", (1, 4, 4, 3), (1, 4, 4, 5), axis=3), 1, "CONCATENATION"),
    ("pad_zero", lambda: unary("pad", (1, 4, 4, 3), same_quant=True, pads=[0, 1, 2, 0, 0, 2, 1, 0]), 0, "PAD"),
    ("pad_value", lambda: unary("pad", (1, 4, 4, 3), same_quant=True, pads=[0, 1, 1, 0, 0, 1, 1, 0], value=0.5),
     0, "PADV2"),
    ("pad_reflect", lambda: unary("pad", (1, 4, 4, 3), same_quant=True, pads=[0, 1, 2, 0, 0, 2, 1, 0],
                                  mode="reflect"), 0, "MIRROR_PAD"),
    ("strided_slice", sliced, 0, "STRIDED_SLICE"),
    ("resize_nearest", lambda: resize("nearest", "asymmetric", "floor"), 0, "RESIZE_NEAREST_NEIGHBOR"),
    ("resize_nearest_half_pixel", lambda: resize("nearest", "half_pixel", "round_prefer_ceil", (6, 9)), 0,
     "RESIZE_NEAREST_NEIGHBOR"),
    ("resize_nearest_align_corners", lambda: resize("nearest", "align_corners", "round_prefer_ceil", (7, 11)), 0,
     "RESIZE_NEAREST_NEIGHBOR"),
    # bilinear int8 interpolates with 10-bit fixed-point weights: one step
    ("resize_bilinear_half_pixel", lambda: resize("linear", "half_pixel"), 1, "RESIZE_BILINEAR"),
    ("resize_bilinear_align_corners", lambda: resize("linear", "align_corners", size=(7, 11)), 1, "RESIZE_BILINEAR"),
    # activations: TFLite's are fixed-point or table-driven approximations of the real function
    ("softmax", lambda: unary("softmax", (2, 10), quant=Quant((1 / 256,), (-128,)), axis=1), 1, "SOFTMAX"),
    ("relu_requantized", lambda: unary("relu"), 1, "RELU"),
    ("relu6", lambda: unary("clip", min=0.0, max=6.0, quant=Quant((6 / 255,), (-128,))), 1, "RELU6"),
    ("clip", lambda: unary("clip", same_quant=True, min=-0.7, max=1.3), 0, "MAXIMUM/MINIMUM"),
    ("clip_unbounded", lambda: unary("clip", same_quant=True), 0, "RESHAPE"),
    ("sigmoid", lambda: unary("sigmoid", quant=Quant((1 / 256,), (-128,))), 1, "LOGISTIC"),
    ("tanh", lambda: unary("tanh", quant=Quant((1 / 128,), (0,))), 1, "TANH"),
    ("hard_swish", lambda: unary("hard_swish"), 1, "HARD_SWISH"),
    ("leaky_relu", lambda: unary("leaky_relu", alpha=0.2), 1, "LEAKY_RELU"),
    # the float interface: TFLite quantizes in float32 as ONNX does
    ("quantize_float", lambda: one_op("quantize", [act((1, 32), dtype="f32")]), 0, "QUANTIZE"),
    ("quantize_requantize", requantize, 1, "QUANTIZE"),
    ("dequantize", lambda: one_op("dequantize", [act((1, 32))], dtype="f32"), 0, "DEQUANTIZE"),
]


def _tolerance_check(g, got, want, steps):
    if g.outputs[0].type.dtype == "f32":  # dequantize: float32 products, edgecc's in float64
        np.testing.assert_allclose(got, want, rtol=1e-6)
    else:
        assert lsb(got, want) <= steps


@pytest.mark.parametrize("resolver", sorted(RESOLVERS))
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_one_op(case, resolver):
    name, build, steps, builtin = case
    if isinstance(steps, tuple):
        steps = steps[resolver == "reference"]
    g = build()
    assert tflite_op_name(g.ops[0]) == builtin
    for trial in range(3):
        inputs = feeds(g)
        got = litert(tflite_model(g), g, inputs, resolver)[0]
        want = run(g, inputs)[0]
        assert got.shape == want.shape and got.dtype == want.dtype
        _tolerance_check(g, got, want, steps)


def test_add_relu_is_one_operator():
    m = tflite.Model.GetRootAs(tflite_model(add_relu()), 0)
    op = m.Subgraphs(0).Operators(0)
    assert m.Subgraphs(0).OperatorsLength() == 1
    options = tflite.AddOptions()
    options.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
    assert options.FusedActivationFunction() == tflite.ActivationFunctionType.RELU


# ---- what is refused, and why ------------------------------------------------------------------------
def float_add():
    return one_op("add", [act((1, 4), dtype="f32"), act((1, 4), dtype="f32")], dtype="f32")


def channels_first_conv():
    x = act((1, 3, 6, 6))
    w = const(rng.integers(-5, 5, (4, 3, 3, 3)).astype(np.int8), Quant((0.01,), (0,)))
    return one_op("conv", [x, w], dict(strides=[1, 1], dilations=[1, 1], pads=[0, 0, 0, 0]))


REFUSED = [
    ("grouped_conv", lambda: conv((1, 6, 6, 4), (4, 3, 3, 2), group=2), "not depthwise"),
    ("float_op", float_add, "int8 only"),
    ("channels_first", channels_first_conv, "channels-first"),
    ("fused_leaky_relu", lambda: conv((1, 6, 6, 4), (4, 1, 1, 4), activation="leaky_relu", act_params=[0.1]),
     "fused leaky_relu"),
    ("dilated_maxpool", lambda: pool("max_pool", (1, 9, 9, 4), kernel_shape=[2, 2], strides=[1, 1],
                                     pads=[0, 0, 0, 0], dilations=[2, 2]), "dilation 2 not supported"),
    ("softmax_quant", lambda: unary("softmax", (2, 10), axis=1), "writes (0.00390625, -128)"),
    ("softmax_axis", lambda: unary("softmax", (2, 10, 4), quant=Quant((1 / 256,), (-128,)), axis=1), "the last"),
    ("requantizing_reshape", lambda: unary("reshape", (1, 2, 3, 4), shape=[1, 24]), "quantized differently"),
    ("resize_cubic", lambda: resize("cubic", "half_pixel"), "no TFLite form"),
    ("pad_edge", lambda: unary("pad", (1, 4, 4, 3), same_quant=True, pads=[0] * 8, mode="edge"), "edge padding"),
    ("uncounted_odd_pads", lambda: pool("average_pool", (1, 8, 8, 4), kernel_shape=[3, 3], strides=[2, 2],
                                        pads=[1, 1, 1, 1]), "not counted"),
    ("no_rule", lambda: unary("exp"), "exp is not written to TFLite"),
]


@pytest.mark.parametrize("case", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused(case):
    name, build, reason = case
    g = build()
    op = g.ops[0]
    assert reason in why_not_tflite(op)
    assert tflite_op_name(op) is None
    with pytest.raises(NotExportable, match=f"{op.kind} 'layer'"):
        tflite_model(g)


def test_per_axis_activation_refused():
    x = act((1, 4, 4, 2))
    x.type = x.type.with_(quant=Quant((0.1, 0.2), (0, 0), 3))
    g = one_op("relu", [x], quant=Quant((0.1,), (0,)))
    assert "per axis" in why_not_tflite(g.ops[0])


def test_interface_names_and_types():
    g = one_op("quantize", [act((1, 8), dtype="f32")])
    sg = tflite.Model.GetRootAs(tflite_model(g, "a partition"), 0).Subgraphs(0)
    x, y = sg.Tensors(int(sg.Inputs(0))), sg.Tensors(int(sg.Outputs(0)))
    assert (x.Name().decode(), x.Type()) == (g.inputs[0].name, tflite.TensorType.FLOAT32)
    assert (y.Name().decode(), y.Type()) == ("y", tflite.TensorType.INT8)
    assert math.isclose(y.Quantization().Scale(0), g.outputs[0].type.quant.scale[0], rel_tol=1e-7)
    assert y.Quantization().ZeroPoint(0) == g.outputs[0].type.quant.zero_point[0]
