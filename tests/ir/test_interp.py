"""The numpy interpreter against ONNX's own reference implementation (and onnxruntime where the
reference leaves features out: LSTM/GRU activations, clip, sequence lengths).

Each case builds a one-op IR graph by hand and the equivalent one-node ONNX model, runs both on
the same random data and compares: floats to 1e-4 relative, integers exactly.
"""
import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from edgecc.ir import Graph, Op, Quant, TensorType, Value, verify
from edgecc.ir.verifier import VerifyError
from edgecc.ir.interp import KERNELS, run, run_op
from edgecc.ir.ops import OPS, fill_defaults, infer_shapes
from edgecc.ir.types import DTYPES, dtype_name

OPSET = 20
rng = np.random.default_rng(0)


def rand(*shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, shape).astype(np.float32)


def rint(*shape, lo=-100, hi=100, dtype=np.int32):
    return rng.integers(lo, hi, shape).astype(dtype)


# ---- building the two sides ------------------------------------------------------------------
def ir_graph(kind, arrays, attrs=None, out_dtypes=None, out_shapes=None, n_results=1, consts=()):
    """A graph holding one `kind` op; arrays[i] is a graph input, a constant (i in consts) or None."""
    operands, inputs, constants = [], [], []
    for i, a in enumerate(arrays):
        if a is None:
            operands.append(None)
            continue
        v = Value(f"in{i}", TensorType(tuple(a.shape), dtype_name(a.dtype)))
        if i in consts:
            v.data = a
            constants.append(v)
        else:
            inputs.append(v)
        operands.append(v)
    results = [Value(f"out{j}", TensorType((), "f32")) for j in range(n_results)]
    op = Op(kind, operands, results, fill_defaults(kind, attrs or {}), name="node")
    shapes = out_shapes or infer_shapes(op)
    out_dtypes = out_dtypes or [None] * n_results
    for j, r in enumerate(results):
        r.type = TensorType(tuple(shapes[j]), out_dtypes[j] or operands[0].type.dtype)
    g = Graph("g", inputs, results, [op], constants)
    verify(g)
    return g


def run_ir(kind, arrays, attrs=None, **kw):
    g = ir_graph(kind, arrays, attrs, **kw)
    consts = kw.get("consts", ())
    return run(g, [a for i, a in enumerate(arrays) if a is not None and i not in consts])


def onnx_model(op_type, arrays, attrs, n_out=1, opset=OPSET):
    names = ["" if a is None else f"i{k}" for k, a in enumerate(arrays)]
    node = helper.make_node(op_type, names, [f"o{j}" for j in range(n_out)], **attrs)
    ins = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
           for n, a in zip(names, arrays) if a is not None]
    outs = [helper.make_tensor_value_info(f"o{j}", TensorProto.UNDEFINED, None) for j in range(n_out)]
    model = helper.make_model(helper.make_graph([node], "t", ins, outs),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    feeds = {n: np.asarray(a) for n, a in zip(names, arrays) if a is not None}
    return model, feeds


def onnx_ref(op_type, arrays, attrs=None, n_out=1, opset=OPSET):
    model, feeds = onnx_model(op_type, arrays, attrs or {}, n_out, opset)
    return ReferenceEvaluator(model).run(None, feeds)


def onnx_ort(op_type, arrays, attrs=None, n_out=1, out_types=None):
    ort = pytest.importorskip("onnxruntime")
    model, feeds = onnx_model(op_type, arrays, attrs or {}, n_out)
    for o, t in zip(model.graph.output, out_types or [TensorProto.FLOAT] * n_out):
        o.type.tensor_type.elem_type = t
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def same(ours, ref):
    for o, r in zip(ours, ref):
        r = np.asarray(r)
        assert o.shape == r.shape, (o.shape, r.shape)
        if np.issubdtype(o.dtype, np.floating):
            np.testing.assert_allclose(o, r.astype(o.dtype), rtol=1e-4, atol=1e-5)
        else:
            assert o.dtype == r.dtype, (o.dtype, r.dtype)
            np.testing.assert_array_equal(o, r)


def check(kind, attrs, arrays, onnx_op, onnx_attrs=None, onnx_arrays=None, n_out=1, out_dtypes=None,
          out_shapes=None, engine=onnx_ref):
    ours = run_ir(kind, arrays, attrs, out_dtypes=out_dtypes, out_shapes=out_shapes, n_results=n_out)
    ref = engine(onnx_op, arrays if onnx_arrays is None else onnx_arrays, onnx_attrs, n_out)
    same(ours, ref)
    for o, dt in zip(ours, out_dtypes or [None] * n_out):
        assert o.dtype == (DTYPES[dt] if dt else arrays[0].dtype)
    return ours


def i64(*v):
    return np.array(v, np.int64)


# ---- elementwise -----------------------------------------------------------------------------
UNARY = [  # kind, onnx op, ir attrs, onnx attrs, input range
    ("relu", "Relu", {}, {}, None), ("sigmoid", "Sigmoid", {}, {}, None), ("tanh", "Tanh", {}, {}, None),
    ("exp", "Exp", {}, {}, None), ("log", "Log", {}, {}, (0.1, 3)), ("sqrt", "Sqrt", {}, {}, (0, 3)),
    ("reciprocal", "Reciprocal", {}, {}, (0.5, 3)), ("abs", "Abs", {}, {}, None), ("neg", "Neg", {}, {}, None),
    ("floor", "Floor", {}, {}, None), ("ceil", "Ceil", {}, {}, None), ("erf", "Erf", {}, {}, None),
    ("softplus", "Softplus", {}, {}, None), ("softsign", "Softsign", {}, {}, None), ("mish", "Mish", {}, {}, None),
    ("hard_swish", "HardSwish", {}, {}, (-5, 5)), ("identity", "Identity", {}, {}, None),
    ("leaky_relu", "LeakyRelu", {"alpha": 0.2}, {"alpha": 0.2}, None),
    ("elu", "Elu", {"alpha": 0.7}, {"alpha": 0.7}, None), ("selu", "Selu", {}, {}, None),
    ("hard_sigmoid", "HardSigmoid", {"alpha": 0.3, "beta": 0.4}, {"alpha": 0.3, "beta": 0.4}, (-4, 4)),
    ("gelu", "Gelu", {}, {}, None), ("gelu", "Gelu", {"approximate": "tanh"}, {"approximate": "tanh"}, None),
]


@pytest.mark.parametrize("kind,onnx_op,attrs,onnx_attrs,span", UNARY, ids=[f"{u[0]}{u[2]}" for u in UNARY])
def test_unary(kind, onnx_op, attrs, onnx_attrs, span):
    lo, hi = span or (-3, 3)
    check(kind, attrs, [rand(2, 3, 4, lo=lo, hi=hi)], onnx_op, onnx_attrs)


def test_round_half_to_even_and_not():
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.4, -0.6], np.float32)
    assert list(run_ir("round", [x])[0]) == [-2, -2, -0, 0, 2, 2, 0, -1]
    check("round", {}, [x], "Round")
    check("not", {}, [rng.random((3, 4)) > 0.5], "Not")


def test_clip_float_and_int():
    x = rand(3, 4)
    same(run_ir("clip", [x], {"min": -0.5, "max": 1.0}), onnx_ref("Clip", [x, np.float32(-0.5), np.float32(1.0)]))
    xi = rint(20, dtype=np.int8)
    same(run_ir("clip", [xi], {"min": -10.0}), onnx_ref("Clip", [xi, np.int8(-10)]))


CASTS = [("f32", np.int8, TensorProto.INT8, (-100, 100)), ("f32", np.int32, TensorProto.INT32, (-1e5, 1e5)),
         ("f32", np.bool_, TensorProto.BOOL, (-1, 1)), ("i32", np.float32, TensorProto.FLOAT, (-1000, 1000)),
         ("i32", np.int8, TensorProto.INT8, (-1000, 1000)), ("i1", np.float32, TensorProto.FLOAT, None),
         ("u8", np.int32, TensorProto.INT32, (0, 255))]


@pytest.mark.parametrize("src,dst,onnx_to,span", CASTS, ids=[f"{c[0]}-{np.dtype(c[1]).name}" for c in CASTS])
def test_cast(src, dst, onnx_to, span):
    if src == "f32":
        x = rand(4, 5, lo=span[0], hi=span[1])
        x[0, 0] = 0.0
    elif src == "i1":
        x = rng.random((4, 5)) > 0.5
    else:
        x = rng.integers(span[0], span[1], (4, 5)).astype({"i32": np.int32, "u8": np.uint8}[src])
    to = dtype_name(dst)
    check("cast", {"to": to}, [x], "Cast", {"to": onnx_to}, out_dtypes=[to])


def test_cast_truncates_toward_zero():
    x = np.array([-2.7, -0.5, 0.5, 2.7, 127.9], np.float32)
    assert run_ir("cast", [x], {"to": "i8"}, out_dtypes=["i8"])[0].tolist() == [-2, 0, 0, 2, 127]


BINARY = [("add", "Add"), ("sub", "Sub"), ("mul", "Mul"), ("div", "Div"), ("pow", "Pow")]
COMPARE = [("equal", "Equal"), ("less", "Less"), ("greater", "Greater"), ("less_or_equal", "LessOrEqual"),
           ("greater_or_equal", "GreaterOrEqual")]


@pytest.mark.parametrize("kind,onnx_op", BINARY)
def test_binary_float_broadcast(kind, onnx_op):
    a, b = rand(2, 3, 4, lo=0.5, hi=2), rand(3, 1, lo=0.5, hi=2)
    check(kind, {}, [a, b], onnx_op)


@pytest.mark.parametrize("kind,onnx_op", BINARY[:4])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32])
def test_binary_integer_semantics(kind, onnx_op, dtype):
    lo = 0 if dtype == np.uint8 else -120
    a, b = rint(4, 6, lo=lo, hi=120, dtype=dtype), rint(6, lo=1 if dtype == np.uint8 else -9, hi=10, dtype=dtype)
    b[b == 0] = 3
    ours = check(kind, {}, [a, b], onnx_op)
    if kind == "div":  # truncation toward zero, not floor
        expect = np.trunc(a.astype(np.float64) / b).astype(dtype)
        np.testing.assert_array_equal(ours[0], expect)


def test_uint8_add_wraps_and_int_div_truncates():
    a, b = np.array([250, 3], np.uint8), np.array([10, 4], np.uint8)
    assert run_ir("add", [a, b])[0].tolist() == [4, 7]
    a, b = np.array([-7, 7, -7], np.int32), np.array([2, -2, -2], np.int32)
    assert run_ir("div", [a, b])[0].tolist() == [-3, -3, 3]


@pytest.mark.parametrize("fmod", [0, 1])
def test_mod(fmod):
    a, b = rint(3, 5, lo=-20, hi=20), rint(5, lo=1, hi=7) * np.array([1, -1, 1, -1, 1], np.int32)
    check("mod", {"fmod": fmod}, [a, b], "Mod", {"fmod": fmod})
    if fmod:
        check("mod", {"fmod": 1}, [rand(3, 5, lo=-5, hi=5), rand(5, lo=0.5, hi=2)], "Mod", {"fmod": 1})


@pytest.mark.parametrize("kind,onnx_op", COMPARE)
def test_compare(kind, onnx_op):
    a, b = rint(3, 4, lo=-3, hi=3), rint(4, lo=-3, hi=3)
    check(kind, {}, [a, b], onnx_op, out_dtypes=["i1"])
    check(kind, {}, [a.astype(np.float32), b.astype(np.float32)], onnx_op, out_dtypes=["i1"])


@pytest.mark.parametrize("kind,onnx_op", [("and", "And"), ("or", "Or")])
def test_logical(kind, onnx_op):
    check(kind, {}, [rng.random((3, 4)) > 0.5, rng.random((4,)) > 0.5], onnx_op)


@pytest.mark.parametrize("kind,onnx_op", [("max", "Max"), ("min", "Min"), ("sum", "Sum"), ("mean", "Mean")])
def test_variadic(kind, onnx_op):
    check(kind, {}, [rand(2, 3, 4), rand(3, 1), rand(4)], onnx_op)
    check(kind, {}, [rand(3)], onnx_op)


def test_where_and_prelu():
    check("where", {}, [rng.random((3, 1)) > 0.5, rand(3, 4), rand(4)], "Where", out_dtypes=["f32"])
    check("prelu", {}, [rand(2, 3, 4, 4), rand(3, 1, 1)], "PRelu")


# ---- convolution, dense ----------------------------------------------------------------------
CONVS = [  # x shape, w shape, strides, pads, dilations, group
    ((1, 3, 9, 9), (4, 3, 3, 3), [1, 1], [1, 1, 1, 1], [1, 1], 1),
    ((2, 4, 10, 9), (6, 2, 3, 2), [2, 1], [0, 1, 2, 0], [1, 2], 2),
    ((1, 6, 8, 8), (6, 1, 3, 3), [2, 2], [1, 1, 1, 1], [2, 2], 6),  # depthwise, dilated
    ((1, 3, 11), (5, 3, 4), [3], [2, 1], [1], 1),  # 1-d
    ((1, 2, 5, 6, 5), (3, 2, 2, 3, 2), [1, 2, 1], [1, 0, 0, 0, 1, 1], [1, 1, 2], 1),  # 3-d
]


@pytest.mark.parametrize("xs,ws,strides,pads,dil,group", CONVS)
@pytest.mark.parametrize("bias", [False, True])
def test_conv(xs, ws, strides, pads, dil, group, bias):
    arrays = [rand(*xs), rand(*ws)] + ([rand(ws[0])] if bias else [])
    ir = {"strides": strides, "pads": pads, "dilations": dil, "group": group}
    onnx_attrs = {"strides": strides, "pads": pads, "dilations": dil, "group": group, "kernel_shape": list(ws[2:])}
    check("conv", ir, arrays, "Conv", onnx_attrs)


ACTS = [("relu", [], lambda y: np.maximum(y, 0)), ("relu6", [], lambda y: np.clip(y, 0, 6)),
        ("clip", [-0.5, 0.7], lambda y: np.clip(y, -0.5, 0.7)),
        ("leaky_relu", [0.1], lambda y: np.where(y >= 0, y, 0.1 * y)),
        ("sigmoid", [], lambda y: 1 / (1 + np.exp(-y))), ("tanh", [], np.tanh),
        ("hard_swish", [], lambda y: y * np.clip(y / 6 + 0.5, 0, 1))]


@pytest.mark.parametrize("act,params,fn", ACTS, ids=[a[0] for a in ACTS])
def test_fused_activation_after_bias(act, params, fn):
    x, w, b = rand(1, 3, 6, 6), rand(4, 3, 3, 3), rand(4)
    attrs = {"strides": [1, 1], "pads": [1, 1, 1, 1], "dilations": [1, 1], "activation": act, "act_params": params}
    ours = run_ir("conv", [x, w, b], attrs)
    ref = onnx_ref("Conv", [x, w, b], {"pads": [1, 1, 1, 1]})[0]
    np.testing.assert_allclose(ours[0], fn(ref), rtol=1e-4, atol=1e-5)
    xf, wf, bf = rand(2, 5, 7), rand(3, 7), rand(3)
    ours = run_ir("fully_connected", [xf, wf, bf], {"activation": act, "act_params": params})
    np.testing.assert_allclose(ours[0], fn(xf @ wf.T + bf), rtol=1e-4, atol=1e-5)


def test_conv_channels_last_layout():
    x, w = rand(1, 3, 6, 5), rand(4, 3, 3, 3)
    attrs = fill_defaults("conv", {"strides": [1, 1], "pads": [1, 1, 1, 1], "dilations": [1, 1]})
    xv = Value("x", TensorType((1, 6, 5, 3), "f32", layout="nhwc"))
    wv = Value("w", TensorType((4, 3, 3, 3), "f32"), data=w)
    y = Value("y", TensorType((1, 6, 5, 4), "f32", layout="nhwc"))
    op = Op("conv", [xv, wv], [y], attrs)
    ours = run_op(op, [x.transpose(0, 2, 3, 1), w])[0]
    ref = onnx_ref("Conv", [x, w], {"pads": [1, 1, 1, 1]})[0]
    np.testing.assert_allclose(ours, ref.transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-5)


CONV_T = [  # x shape, w shape, strides, pads, dilations, group, output_padding
    ((1, 3, 4, 5), (3, 2, 3, 3), [2, 2], [1, 1, 1, 1], [1, 1], 1, [1, 0]),
    ((2, 4, 3, 3), (4, 3, 2, 3), [1, 2], [0, 1, 1, 0], [2, 1], 2, [0, 1]),
    ((1, 2, 5), (2, 3, 4), [3], [1, 2], [1], 1, [2]),
]


@pytest.mark.parametrize("xs,ws,strides,pads,dil,group,outpad", CONV_T)
def test_conv_transpose(xs, ws, strides, pads, dil, group, outpad):
    arrays = [rand(*xs), rand(*ws), rand(ws[1] * group)]
    ir = {"strides": strides, "pads": pads, "dilations": dil, "group": group, "output_padding": outpad}
    # the onnx reference implementation cannot do grouped transposed convolutions
    check("conv_transpose", ir, arrays, "ConvTranspose", {**ir, "kernel_shape": list(ws[2:])}, engine=onnx_ort)


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,))])
def test_matmul(sa, sb):
    check("matmul", {}, [rand(*sa), rand(*sb)], "MatMul")
    check("matmul", {}, [rint(*sa, lo=-50, hi=50), rint(*sb, lo=-50, hi=50)], "MatMul")


def test_gemm_integer():
    a, b, c = rint(3, 4, lo=-9, hi=9), rint(4, 5, lo=-9, hi=9), rint(5, lo=-9, hi=9)
    check("gemm", {}, [a, b, c], "Gemm")


@pytest.mark.parametrize("ta,tb,cshape", [(0, 0, (5,)), (1, 0, (3, 5)), (0, 1, (1, 5)), (1, 1, None)])
def test_gemm(ta, tb, cshape):
    a = rand(4, 3) if ta else rand(3, 4)
    b = rand(5, 4) if tb else rand(4, 5)
    arrays = [a, b] + ([rand(*cshape)] if cshape else [])
    attrs = {"alpha": 0.7, "beta": 1.3, "trans_a": ta, "trans_b": tb}
    check("gemm", attrs, arrays, "Gemm", {"alpha": 0.7, "beta": 1.3, "transA": ta, "transB": tb})


# ---- pooling ---------------------------------------------------------------------------------
POOLS = [  # x shape, kernel, strides, pads, ceil
    ((1, 2, 7, 7), [3, 3], [2, 2], [1, 1, 1, 1], 0),
    ((1, 2, 7, 8), [3, 2], [2, 3], [0, 1, 1, 0], 1),
    ((2, 3, 6, 6), [2, 2], [2, 2], [0, 0, 0, 0], 1),
    ((1, 2, 10), [4], [3], [2, 1], 1),
    ((1, 1, 5, 6, 4), [2, 3, 2], [2, 2, 1], [1, 0, 1, 0, 1, 0], 1),
]


@pytest.mark.parametrize("xs,k,s,p,ceil", POOLS)
@pytest.mark.parametrize("include_pad", [0, 1])
def test_average_pool(xs, k, s, p, ceil, include_pad):
    attrs = {"kernel_shape": k, "strides": s, "pads": p, "ceil_mode": ceil, "count_include_pad": include_pad}
    check("average_pool", attrs, [rand(*xs)], "AveragePool", attrs)


@pytest.mark.parametrize("xs,k,s,p,ceil", POOLS)
@pytest.mark.parametrize("dilated", [False, True])
def test_max_pool(xs, k, s, p, ceil, dilated):
    nd = len(k)
    dil = [2] * nd if dilated else [1] * nd
    attrs = {"kernel_shape": k, "strides": s, "pads": p, "ceil_mode": ceil, "dilations": dil}
    check("max_pool", attrs, [rand(*xs)], "MaxPool", attrs)


@pytest.mark.parametrize("order", [0, 1])
def test_max_pool_indices(order):
    x = rand(2, 3, 6, 7)
    x[0, 0, :2, :2] = 1.5  # ties: the first maximum in scan order wins
    attrs = {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 1], "dilations": [1, 1],
             "storage_order": order}
    # the onnx reference implementation gets 2-d indices with padding wrong; onnxruntime is the oracle
    ort = lambda *a: onnx_ort(*a, out_types=[TensorProto.FLOAT, TensorProto.INT64])  # noqa: E731
    check("max_pool", attrs, [x], "MaxPool", attrs, n_out=2, out_dtypes=["f32", "i64"], engine=ort)
    attrs = {"kernel_shape": [2, 3, 2], "strides": [2, 2, 3], "pads": [1, 0, 1, 0, 1, 1], "ceil_mode": 1,
             "dilations": [2, 1, 2], "storage_order": order}
    check("max_pool", attrs, [rand(1, 2, 5, 6, 7)], "MaxPool", attrs, n_out=2, out_dtypes=["f32", "i64"], engine=ort)


def test_pool_channels_last_layout():
    x = rand(1, 3, 7, 6)
    attrs = fill_defaults("max_pool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                       "dilations": [1, 1]})
    xv = Value("x", TensorType((1, 7, 6, 3), "f32", layout="nhwc"))
    y = Value("y", TensorType((1, 4, 3, 3), "f32", layout="nhwc"))
    ours = run_op(Op("max_pool", [xv], [y], attrs), [x.transpose(0, 2, 3, 1)])[0]
    ref = onnx_ref("MaxPool", [x], {k: attrs[k] for k in ("kernel_shape", "strides", "pads")})[0]
    np.testing.assert_array_equal(ours, ref.transpose(0, 2, 3, 1))


def test_global_pools_and_int_max_pool():
    check("global_average_pool", {}, [rand(2, 3, 4, 5)], "GlobalAveragePool")
    check("global_max_pool", {}, [rand(2, 3, 4, 5)], "GlobalMaxPool")
    check("global_max_pool", {}, [rand(2, 3, 4, 5, 2)], "GlobalMaxPool", engine=onnx_ort)  # reference: 5-d bug
    xi = rint(1, 2, 5, 5, dtype=np.int8)
    attrs = {"kernel_shape": [2, 2], "strides": [1, 1], "pads": [1, 1, 0, 0], "dilations": [1, 1]}
    check("max_pool", attrs, [xi], "MaxPool", attrs,
          engine=lambda *a: onnx_ort(*a, out_types=[TensorProto.INT8]))  # reference: pads ints with NaN


# ---- normalization ---------------------------------------------------------------------------
def test_batch_and_instance_normalization():
    x = rand(2, 3, 4, 5)
    stats = [rand(3), rand(3), rand(3), rand(3, lo=0.5, hi=2)]
    check("batch_normalization", {"epsilon": 1e-3}, [x] + stats, "BatchNormalization", {"epsilon": 1e-3})
    check("instance_normalization", {"epsilon": 1e-4}, [x, rand(3), rand(3)], "InstanceNormalization",
          {"epsilon": 1e-4})


@pytest.mark.parametrize("axis,bias", [(1, True), (2, False), (2, True)])
def test_layer_normalization(axis, bias):
    x = rand(2, 3, 5)
    arrays = [x, rand(*x.shape[axis:])] + ([rand(*x.shape[axis:])] if bias else [])
    check("layer_normalization", {"axis": axis, "epsilon": 1e-3}, arrays, "LayerNormalization",
          {"axis": axis, "epsilon": 1e-3}, n_out=3)


@pytest.mark.parametrize("size", [1, 3, 5])
def test_lrn(size):
    attrs = {"alpha": 1e-2, "beta": 0.6, "bias": 1.5, "size": size}
    # the onnx reference implementation sums the wrong channel window; onnxruntime is the oracle
    check("lrn", attrs, [rand(2, 5, 3, 3)], "LRN", attrs, engine=onnx_ort)


def test_lrn_even_size():  # onnxruntime takes odd sizes only: the ONNX formula, written out
    x = rand(1, 6, 2, 2)
    ours = run_ir("lrn", [x], {"alpha": 0.1, "beta": 0.75, "bias": 1.0, "size": 4})[0]
    sq = np.zeros_like(x)
    for c in range(6):  # channels c - floor(3/2) .. c + ceil(3/2)
        sq[:, c] = (x[:, max(0, c - 1):min(6, c + 3)] ** 2).sum(axis=1)
    np.testing.assert_allclose(ours, x / (1.0 + 0.1 / 4 * sq) ** 0.75, rtol=1e-5)


@pytest.mark.parametrize("kind,onnx_op", [("softmax", "Softmax"), ("log_softmax", "LogSoftmax")])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_softmax(kind, onnx_op, axis):
    check(kind, {"axis": axis}, [rand(2, 3, 4, lo=-5, hi=5)], onnx_op, {"axis": axis})


# ---- data movement ---------------------------------------------------------------------------
def test_reshape_transpose_concat_split():
    x = rand(2, 3, 4)
    check("reshape", {"shape": [4, 6]}, [x], "Reshape", onnx_arrays=[x, i64(4, 6)])
    check("transpose", {"perm": [2, 0, 1]}, [x], "Transpose", {"perm": [2, 0, 1]})
    check("concat", {"axis": 1}, [x, rand(2, 1, 4), rand(2, 2, 4)], "Concat", {"axis": 1})
    check("split", {"axis": 2, "split": [1, 3]}, [x], "Split", {"axis": 2}, onnx_arrays=[x, i64(1, 3)], n_out=2)


SLICES = [([1, 0], [3, 4], [0, 2], [1, 2]), ([3, 2], [-1, 0], [0, 1], [-1, -1]), ([4], [-1], [2], [-2]),
          ([0], [5], [1], [3])]


@pytest.mark.parametrize("starts,ends,axes,steps", SLICES)
def test_slice(starts, ends, axes, steps):
    x = rand(4, 5, 6)
    onnx_ends = [e if e >= 0 else -(2 ** 31) for e in ends]  # -1 in the IR means 'through index 0'
    check("slice", {"starts": starts, "ends": ends, "axes": axes, "steps": steps}, [x], "Slice",
          onnx_arrays=[x, i64(*starts), i64(*onnx_ends), i64(*axes), i64(*steps)])


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("pads", [[1, 0, 2, 2, 1, 0], [0, -1, 2, 1, 1, -2]])
def test_pad(mode, pads):
    x = rand(3, 4, 5)
    check("pad", {"pads": pads, "mode": mode, "value": 0.5}, [x], "Pad", {"mode": mode},
          onnx_arrays=[x, i64(*pads), np.float32(0.5)],
          engine=onnx_ort if min(pads) < 0 else onnx_ref)  # the reference cannot crop


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_gather_negative_indices(axis):
    x = rand(3, 4, 5)
    idx = np.array([[0, -1], [2, -3]], np.int64)
    check("gather", {"axis": axis}, [x, idx], "Gather", {"axis": axis}, out_dtypes=["f32"])


def test_tile_expand_depth_space():
    x = rand(2, 1, 3)
    check("tile", {"repeats": [2, 3, 1]}, [x], "Tile", onnx_arrays=[x, i64(2, 3, 1)])
    check("expand", {}, [x], "Expand", onnx_arrays=[x, i64(4, 2, 5, 3)], out_shapes=[(4, 2, 5, 3)])
    y = rand(2, 8, 3, 2)
    for mode in ("DCR", "CRD"):
        check("depth_to_space", {"blocksize": 2, "mode": mode}, [y], "DepthToSpace", {"blocksize": 2, "mode": mode})
    check("space_to_depth", {"blocksize": 2}, [rand(1, 3, 4, 6)], "SpaceToDepth", {"blocksize": 2})


# ---- resize ----------------------------------------------------------------------------------
CTMS = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric"]
SIZES = [(1, 2, 4, 5), (1, 2, 7, 3), (1, 2, 1, 10)]  # up, mixed, down/up to a length of 1


def _resize(x, out_shape, ir_attrs, onnx_attrs, engine=onnx_ref):
    scales = [o / i for o, i in zip(out_shape, x.shape)]
    attrs = {**ir_attrs, "scales": scales}
    ours = run_ir("resize", [x], attrs, out_shapes=[out_shape])
    ref = engine("Resize", [x, None, None, i64(*out_shape)], onnx_attrs)
    same(ours, ref)


@pytest.mark.parametrize("ctm", CTMS)
@pytest.mark.parametrize("nearest_mode", ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"])
def test_resize_nearest(ctm, nearest_mode):
    x = rand(1, 2, 3, 4)
    for out in SIZES:
        a = {"mode": "nearest", "coordinate_transformation_mode": ctm, "nearest_mode": nearest_mode}
        _resize(x, out, a, a)


@pytest.mark.parametrize("ctm", CTMS)
@pytest.mark.parametrize("mode", ["linear", "cubic"])
def test_resize_linear_cubic(ctm, mode):
    x = rand(1, 2, 3, 4)
    for out in SIZES:
        a = {"mode": mode, "coordinate_transformation_mode": ctm}
        # pytorch_half_pixel to a length of 1 samples at 0 (spec, onnxruntime); the reference takes -0.5
        odd = ctm == "pytorch_half_pixel" and mode == "cubic" and 1 in out
        _resize(x, out, a, a, engine=onnx_ort if odd else onnx_ref)


@pytest.mark.parametrize("exclude", [0, 1])
def test_resize_cubic_options(exclude):
    x = rand(1, 1, 5, 6)
    a = {"mode": "cubic", "cubic_coeff_a": -0.5, "exclude_outside": exclude}
    _resize(x, (1, 1, 9, 4), a, a)
    _resize(x, (1, 1, 9, 4), a, a, engine=onnx_ort)


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_resize_tf_crop_and_resize(mode):
    x = rand(1, 2, 5, 6)
    roi = [0, 0, 0.2, -0.3, 1, 1, 0.9, 1.2]
    out = (1, 2, 4, 7)
    scales = [o * 1.0 / i for o, i in zip(out, x.shape)]
    a = {"mode": mode, "coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": 9.0}
    ours = run_ir("resize", [x], {**a, "scales": scales, "roi": roi}, out_shapes=[out])
    same(ours, onnx_ref("Resize", [x, np.array(roi, np.float32), None, i64(*out)], a))


@pytest.mark.parametrize("ctm", CTMS)
def test_resize_integer_truncates_like_onnxruntime(ctm):
    """Integer bilinear in onnxruntime's float32 arithmetic, on many images: a float64 sum truncates
    to one more than onnxruntime on about a third of them."""
    a = {"mode": "linear", "coordinate_transformation_mode": ctm}
    for _ in range(40):
        x = rint(1, 2, 3, 4, lo=0, hi=256, dtype=np.uint8)
        _resize(x, (1, 2, 5, 7), a, a, engine=lambda *args: onnx_ort(*args, out_types=[TensorProto.UINT8]))
    x = rint(1, 1, 3, 4, lo=0, hi=256, dtype=np.uint8)
    a = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    _resize(x, (1, 1, 6, 8), a, a)


def test_resize_against_onnxruntime():
    x = rand(1, 2, 3, 4)
    for ctm in CTMS:
        for mode in ("nearest", "linear"):
            a = {"mode": mode, "coordinate_transformation_mode": ctm}
            _resize(x, (1, 2, 6, 7), a, a, engine=onnx_ort)


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("ctm", ["half_pixel", "half_pixel_symmetric", "asymmetric"])
def test_resize_runtime_scales(mode, ctm):
    """Scales as an operand listing axes 3, 2 replace the attribute's (which only record the size ratios)."""
    x = rand(1, 2, 4, 5)
    scales = np.array([0.6, 1.7], np.float32)  # 5 -> 3, 4 -> 6: not the size ratios 0.6 and 1.5
    a = {"mode": mode, "coordinate_transformation_mode": ctm}
    ours = run_ir("resize", [x, None, scales], {**a, "scales": [1.0, 1.0, 1.5, 0.6], "axes": [3, 2]},
                  out_shapes=[(1, 2, 6, 3)])
    same(ours, onnx_ref("Resize", [x, None, scales], {**a, "axes": [3, 2]}))


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_resize_runtime_roi(mode):
    x = rand(1, 2, 5, 6)
    roi = np.array([0.2, -0.3, 0.9, 1.1], np.float32)  # begins then ends of axes 2, 3
    out = (1, 2, 4, 7)
    a = {"mode": mode, "coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": 9.0}
    ir_attrs = {**a, "scales": [o / i for o, i in zip(out, x.shape)], "roi": [0.0] * 4 + [1.0] * 4, "axes": [2, 3]}
    ours = run_ir("resize", [x, roi], ir_attrs, out_shapes=[out])
    same(ours, onnx_ref("Resize", [x, roi, None, i64(4, 7)], {**a, "axes": [2, 3]}))


def test_resize_runtime_operands_must_fit_axes():
    x = rand(1, 1, 2, 2)
    with pytest.raises(VerifyError, match="scales"):
        ir_graph("resize", [x, None, np.ones(4, np.float32)], {"scales": [1.0, 1.0, 2.0, 2.0], "axes": [2, 3]},
                 out_shapes=[(1, 1, 4, 4)])


# ---- reductions ------------------------------------------------------------------------------
REDUCE = [("reduce_mean", "ReduceMean"), ("reduce_max", "ReduceMax"), ("reduce_min", "ReduceMin"),
          ("reduce_sum", "ReduceSum"), ("reduce_prod", "ReduceProd"), ("reduce_l2", "ReduceL2"),
          ("reduce_sum_square", "ReduceSumSquare")]


@pytest.mark.parametrize("kind,onnx_op", REDUCE)
@pytest.mark.parametrize("axes,keep", [([1], 1), ([0, 2], 0), ([0, 1, 2], 0)])
def test_reduce(kind, onnx_op, axes, keep):
    x = rand(2, 3, 4, lo=0.5, hi=1.5)
    check(kind, {"axes": axes, "keepdims": keep}, [x], onnx_op, {"keepdims": keep}, onnx_arrays=[x, i64(*axes)])


def test_reduce_int_and_empty_axes():
    x = rint(3, 4, lo=-50, hi=50)
    for kind, onnx_op in (("reduce_sum", "ReduceSum"), ("reduce_max", "ReduceMax"), ("reduce_min", "ReduceMin"),
                          ("reduce_l2", "ReduceL2"), ("reduce_prod", "ReduceProd"), ("reduce_mean", "ReduceMean")):
        check(kind, {"axes": [1], "keepdims": 0}, [x], onnx_op, {"keepdims": 0}, onnx_arrays=[x, i64(1)])
    y = rand(2, 3)
    np.testing.assert_array_equal(run_ir("reduce_sum", [y], {"axes": [], "keepdims": 1})[0], y)


@pytest.mark.parametrize("kind,onnx_op", [("argmax", "ArgMax"), ("argmin", "ArgMin")])
@pytest.mark.parametrize("axis,keep,last", [(0, 1, 0), (1, 0, 1), (2, 1, 1)])
def test_arg(kind, onnx_op, axis, keep, last):
    x = rint(3, 4, 5, lo=-3, hi=3).astype(np.float32)  # many ties
    attrs = {"axis": axis, "keepdims": keep, "select_last_index": last}
    check(kind, attrs, [x], onnx_op, attrs, out_dtypes=["i64"])


# ---- recurrent -------------------------------------------------------------------------------
def ort_rnn(op_type, arrays, attrs, n_out):
    """onnxruntime, which runs layout 0 only: batch-major cases are transposed around it."""
    if not attrs.get("layout"):
        return onnx_ort(op_type, arrays, attrs, n_out)
    arrays = list(arrays)
    states = {"LSTM": (0, 5, 6), "GRU": (0, 5)}[op_type]
    for i in states:
        if i < len(arrays) and arrays[i] is not None:
            arrays[i] = np.ascontiguousarray(np.swapaxes(arrays[i], 0, 1))
    outs = onnx_ort(op_type, arrays, {**attrs, "layout": 0}, n_out)
    return [outs[0].transpose(2, 0, 1, 3)] + [np.swapaxes(o, 0, 1) for o in outs[1:]]


def _rnn_arrays(gates, seq, batch, inp, hid, dirs, layout, bias, init, lens, n_states, peep=False):
    x = rand(*((seq, batch, inp) if layout == 0 else (batch, seq, inp)), lo=-1, hi=1)
    w, r = rand(dirs, gates * hid, inp, lo=-1, hi=1), rand(dirs, gates * hid, hid, lo=-1, hi=1)
    b = rand(dirs, 2 * gates * hid, lo=-1, hi=1) if bias else None
    sl = np.array(lens, np.int32) if lens else None
    state = (dirs, batch, hid) if layout == 0 else (batch, dirs, hid)
    states = [rand(*state, lo=-1, hi=1) if init else None for _ in range(n_states)]
    arrays = [x, w, r, b, sl, *states]
    if peep:
        arrays.append(rand(dirs, 3 * hid, lo=-1, hi=1))
    while arrays[-1] is None:
        arrays.pop()
    return arrays


LSTMS = [  # direction, layout, bias, init, seq lens, peepholes, clip, activations, alpha, beta, input_forget
    ("forward", 0, True, True, None, False, 0.0, None, [], [], 0),
    ("reverse", 0, True, False, [4, 2, 3], False, 0.0, None, [], [], 0),
    ("bidirectional", 1, True, True, [1, 4, 3], True, 0.0, None, [], [], 0),
    ("forward", 0, False, True, None, True, 0.4, None, [], [], 1),
    ("bidirectional", 0, True, False, None, False, 0.0,
     ["HardSigmoid", "Affine", "ScaledTanh", "LeakyRelu", "Elu", "Softsign"], [0.3, 0.8, 1.1, 0.2, 0.9, 0.05],
     [0.4, -0.1, 0.7], 0),
    ("forward", 1, True, True, [3, 0, 4], False, 0.0, ["Sigmoid", "Softplus", "ThresholdedRelu"], [0.1], [], 0),
]


@pytest.mark.parametrize("direction,layout,bias,init,lens,peep,clip,acts,alpha,beta,couple", LSTMS)
def test_lstm(direction, layout, bias, init, lens, peep, clip, acts, alpha, beta, couple):
    dirs, hid = 2 if direction == "bidirectional" else 1, 5
    arrays = _rnn_arrays(4, 4, 3, 6, hid, dirs, layout, bias, init, lens, 2, peep)
    acts = acts or ["Sigmoid", "Tanh", "Tanh"] * dirs
    common = {"direction": direction, "hidden_size": hid, "activations": acts, "layout": layout}
    extra = {k: v for k, v in (("activation_alpha", alpha), ("activation_beta", beta)) if v}
    if clip:
        extra["clip"] = clip
    ir = {**common, **extra, "input_forget": couple}
    check("lstm", ir, arrays, "LSTM", {**common, **extra, "input_forget": couple}, n_out=3, engine=ort_rnn)


def test_lstm_default_against_onnx_reference():
    arrays = _rnn_arrays(4, 3, 2, 4, 3, 1, 0, True, True, None, 2, True)
    attrs = {"hidden_size": 3, "activations": ["Sigmoid", "Tanh", "Tanh"]}
    check("lstm", attrs, arrays, "LSTM", {"hidden_size": 3}, n_out=3)


GRUS = [  # direction, layout, bias, init, seq lens, linear_before_reset, clip, activations, alpha, beta
    ("forward", 0, True, True, None, 0, 0.0, None, [], []),
    ("reverse", 0, True, False, [2, 4, 1], 1, 0.0, None, [], []),
    ("bidirectional", 1, False, True, [3, 4, 0], 0, 0.5, None, [], []),
    ("bidirectional", 0, True, True, None, 1, 0.0, ["HardSigmoid", "LeakyRelu", "Sigmoid", "Affine"],
     [0.25, 0.3, 0.6], [0.45, 0.1]),
]


@pytest.mark.parametrize("direction,layout,bias,init,lens,lbr,clip,acts,alpha,beta", GRUS)
def test_gru(direction, layout, bias, init, lens, lbr, clip, acts, alpha, beta):
    dirs, hid = 2 if direction == "bidirectional" else 1, 4
    arrays = _rnn_arrays(3, 4, 3, 5, hid, dirs, layout, bias, init, lens, 1)
    acts = acts or ["Sigmoid", "Tanh"] * dirs
    common = {"direction": direction, "hidden_size": hid, "activations": acts, "layout": layout,
              "linear_before_reset": lbr}
    extra = {k: v for k, v in (("activation_alpha", alpha), ("activation_beta", beta), ("clip", clip)) if v}
    check("gru", {**common, **extra}, arrays, "GRU", {**common, **extra}, n_out=2, engine=ort_rnn)


# ---- quantization ----------------------------------------------------------------------------
def qtype(shape, dtype, scale, zp, axis=None):
    scale = tuple(float(np.float32(s)) for s in np.atleast_1d(scale))
    zp = tuple(int(z) for z in np.atleast_1d(zp))
    return TensorType(tuple(shape), dtype, Quant(scale, zp, axis))


def dequant(q, t):
    s, z = t.quant.broadcast(t.rank)
    return (q.astype(np.int64) - z) * s


def quant(x, t):
    s, z = t.quant.broadcast(t.rank)
    info = np.iinfo(t.np_dtype)
    return np.clip(np.rint(x / s) + z, info.min, info.max).astype(t.np_dtype)


@pytest.mark.parametrize("act_dtype", ["i8", "u8"])
def test_quantized_conv_matches_explicit_qdq(act_dtype):
    lo, hi, zp = (-128, 127, -3) if act_dtype == "i8" else (0, 255, 120)
    np_act = np.int8 if act_dtype == "i8" else np.uint8
    xq = rng.integers(lo, hi + 1, (1, 3, 7, 7)).astype(np_act)
    wq = rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)
    xt = qtype(xq.shape, act_dtype, 0.02, zp)
    w_scales = rng.uniform(0.002, 0.01, 4)
    wt = qtype(wq.shape, "i8", w_scales, [0] * 4, axis=0)
    bt = qtype((4,), "i32", [xt.quant.scale[0] * s for s in wt.quant.scale], [0] * 4, axis=0)
    bq = rng.integers(-2000, 2000, 4).astype(np.int32)
    yt = qtype((1, 4, 4, 4), act_dtype, 0.05, zp // 2)
    attrs = fill_defaults("conv", {"strides": [2, 2], "pads": [1, 1, 1, 1], "dilations": [1, 1],
                                   "activation": "relu"})
    xv, wv, bv = Value("x", xt), Value("w", wt, wq), Value("b", bt, bq)
    y = Value("y", yt)
    g = Graph("q", [xv], [y], [Op("conv", [xv, wv, bv], [y], attrs, "conv0")], [wv, bv])
    verify(g)
    ours = run(g, {"x": xq})[0]
    # explicit: dequantize -> float conv (onnx reference) -> relu -> quantize
    real = onnx_ref("Conv", [dequant(xq, xt), dequant(wq, wt), dequant(bq, bt)], {"strides": [2, 2],
                                                                                   "pads": [1, 1, 1, 1]})[0]
    expect = quant(np.maximum(real, 0), yt)
    assert ours.dtype == np.dtype(np_act)
    assert np.abs(ours.astype(np.int32) - expect).max() <= 1
    assert (ours == expect).mean() > 0.97


def test_conv_integer_int32_result_is_exact():
    xq = rng.integers(0, 256, (1, 2, 6, 6)).astype(np.uint8)
    wq = rng.integers(-128, 128, (3, 2, 3, 3)).astype(np.int8)
    sx, sw = 0.0173, 0.0041
    xt, wt = qtype(xq.shape, "u8", sx, 128), qtype(wq.shape, "i8", sw, 0)
    yt = qtype((1, 3, 4, 4), "i32", float(np.float32(sx)) * float(np.float32(sw)), 0)
    attrs = fill_defaults("conv", {"strides": [1, 1], "pads": [0, 0, 0, 0], "dilations": [1, 1]})
    xv, wv, y = Value("x", xt), Value("w", wt, wq), Value("y", yt)
    ours = run(Graph("ci", [xv], [y], [Op("conv", [xv, wv], [y], attrs)], [wv]), [xq])[0]
    ref = onnx_ref("ConvInteger", [xq, wq, np.uint8(128)])[0]
    assert ours.dtype == np.int32
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("dtype,axis", [("i8", None), ("u8", None), ("i8", 1), ("i16", None)])
def test_quantize_dequantize_ops(dtype, axis):
    x = rand(2, 3, 4, lo=-3, hi=3)
    x[0, 0, :3] = [0.5, 1.5, -2.5]  # exact ties at scale 1 / 2
    n = 3 if axis is not None else 1
    scales = np.array([0.5, 0.03, 0.011][:n], np.float32) if axis is not None else np.array([0.5], np.float32)
    zps = np.array({"i8": [0, -5, 7], "u8": [128, 100, 3], "i16": [-300, 0, 0]}[dtype][:n],
                   {"i8": np.int8, "u8": np.uint8, "i16": np.int16}[dtype])
    t = qtype(x.shape, dtype, scales, zps, axis)
    xv, qv = Value("x", TensorType(x.shape, "f32")), Value("q", t)
    dv = Value("d", TensorType(x.shape, "f32"))
    g = Graph("qd", [xv], [qv, dv], [Op("quantize", [xv], [qv]), Op("dequantize", [qv], [dv])])
    verify(g)
    q, d = run(g, [x])
    s_arr, z_arr = (scales, zps) if axis is not None else (scales[0], zps[0])
    onnx_axis = {"axis": axis} if axis is not None else {}
    ref_q = onnx_ref("QuantizeLinear", [x, s_arr, z_arr], onnx_axis, opset=21)[0]
    ref_d = onnx_ref("DequantizeLinear", [ref_q, s_arr, z_arr], onnx_axis, opset=21)[0]
    same([q, d], [ref_q, ref_d])
    assert d.dtype == np.float32


def test_quantized_data_movement_keeps_integers():
    t = qtype((1, 2, 4, 4), "i8", 0.1, 3)
    xq = rng.integers(-128, 128, t.shape).astype(np.int8)
    pool = fill_defaults("max_pool", {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0, 0, 0, 0],
                                      "dilations": [1, 1]})
    xv = Value("x", t)
    y = Value("y", qtype((1, 2, 2, 2), "i8", 0.1, 3))
    got = run_op(Op("max_pool", [xv], [y], pool), [xq])[0]
    np.testing.assert_array_equal(got, xq.reshape(1, 2, 2, 2, 2, 2).max(axis=(3, 5)))
    tr = Value("t", qtype((1, 4, 4, 2), "i8", 0.1, 3))
    got = run_op(Op("transpose", [xv], [tr], {"perm": [0, 2, 3, 1]}), [xq])[0]
    np.testing.assert_array_equal(got, xq.transpose(0, 2, 3, 1))
    # the pad value is a real number, quantized with the result's parameters
    pv = Value("p", qtype((1, 2, 4, 6), "i8", 0.1, 3))
    got = run_op(Op("pad", [xv], [pv], fill_defaults("pad", {"pads": [0, 0, 0, 1, 0, 0, 0, 1], "value": 1.0})),
                 [xq])[0]
    assert (got[..., 0] == 13).all() and (got[..., 1:5] == xq).all()


def test_quantized_add_saturates_and_rounds_half_even():
    ta, tb = qtype((4,), "i8", 0.5, 0), qtype((4,), "i8", 0.5, 0)
    ty = qtype((4,), "i8", 1.0, 0)
    a, b = np.array([1, 3, 120, -128], np.int8), np.array([0, 0, 120, -128], np.int8)
    av, bv, y = Value("a", ta), Value("b", tb), Value("y", ty)
    got = run_op(Op("add", [av, bv], [y]), [a, b])[0]
    assert got.tolist() == [0, 2, 120, -128]  # 0.5 -> 0, 1.5 -> 2, 120 stays, -128 saturates


# ---- graphs, partitions, errors --------------------------------------------------------------
def test_graph_chain_and_partition():
    x = Value("x", TensorType((2, 3), "f32"))
    c = Value("c", TensorType((3,), "f32"), np.array([1, 2, 3], np.float32))
    h = Value("h", TensorType((2, 3), "f32"))
    # region: y = relu(a) * 2
    a = Value("a", TensorType((2, 3), "f32"))
    two = Value("two", TensorType((), "f32"), np.array(2, np.float32))
    r, m = Value("r", TensorType((2, 3), "f32")), Value("m", TensorType((2, 3), "f32"))
    body = Graph("body", [a], [m], [Op("relu", [a], [r]), Op("mul", [r, two], [m])], [two])
    out = Value("out", TensorType((2, 3), "f32"))
    part = Op("partition", [h], [out], {"target": "npu"}, regions=[body])
    g = Graph("g", [x], [out, h], [Op("add", [x, c], [h]), part], [c])
    verify(g)
    xa = rand(2, 3)
    o, hh = run(g, {"x": xa})
    np.testing.assert_allclose(hh, xa + [1, 2, 3], rtol=1e-6)
    np.testing.assert_allclose(o, np.maximum(xa + [1, 2, 3], 0) * 2, rtol=1e-6)
    with pytest.raises(ValueError):
        run(g, {"y": xa})
    with pytest.raises(ValueError):
        run(g, [xa[:1]])
    o2, _ = run(g, [xa.astype(np.float64)])  # same-kind inputs are converted
    np.testing.assert_array_equal(o, o2)
    c_out = Graph("k", [], [c], [], [c])
    run(c_out, [])[0][0] = 99.0  # results never alias the graph's constants
    assert c.data[0] == 1.0


def test_every_op_kind_has_a_kernel():
    assert sorted(set(OPS) - set(KERNELS)) == []


def test_unknown_kind_and_bad_result_type():
    x = Value("x", TensorType((2,), "f32"))
    with pytest.raises(KeyError, match="frobnicate"):
        run_op(Op("frobnicate", [x], [Value("y", TensorType((2,), "f32"))]), [np.zeros(2, np.float32)])
    with pytest.raises(AssertionError, match="its type says"):
        run_op(Op("relu", [x], [Value("y", TensorType((3,), "f32"))]), [np.zeros(2, np.float32)])
    with pytest.raises(AssertionError, match="typed i32"):  # a float op typed as an integer result
        run_op(Op("relu", [x], [Value("y", TensorType((2,), "i32"))]), [np.zeros(2, np.float32)])
