"""Integer (quantized) C kernels against onnxruntime: for each op a one-op IR graph with quantized
types, and the equivalent QDQ ONNX model (DequantizeLinear -> op -> QuantizeLinear) run in
onnxruntime for the expected stored integers. All cases build as one graph (strict flags), a few also
under the sanitizers; the same cases also as the Cortex-M7's C (DSP-extension kernels), on the host and on
the emulated M7. `python tests/backends/c/test_quantized.py` prints, per op, the exact fraction
and the largest difference in LSB."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from edgecc.backends.c.runner import SANITIZE_CFLAGS, STRICT_CFLAGS, have_cc
from edgecc.backends.registry import get_target
from edgecc.ir.types import Quant

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_cases import Arg, Case, const, run_cases  # noqa: E402
from qdq_ref import Q, lsb_report, qdq_run  # noqa: E402

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.skipif(not have_cc(), reason="needs a C compiler")
rng = np.random.default_rng(11)
CASES = []
# ops where onnxruntime's own arithmetic is not reproduced bit for bit (see the notes at each case)
ALLOWED_LSB = {}


def i8(dt):
    return np.dtype(np.int8 if dt == "i8" else np.uint8)


def stored(shape, dt):
    info = np.iinfo(i8(dt))
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(i8(dt))


def act_quant(dt, scale=None):
    lo, hi = (-128, 127) if dt == "i8" else (0, 255)
    return Quant((float(scale or rng.uniform(0.01, 0.1)),), (int(rng.integers(lo + 20, hi - 20)),))


def nhwc(a):
    return np.ascontiguousarray(np.moveaxis(a, 1, -1))


def add(name, kind, attrs, operands, expected, result_quant, lsb=0):
    CASES.append(Case(name, kind, attrs, operands, [expected], result_quant=result_quant))
    if lsb:
        ALLOWED_LSB[name] = lsb


# ---- conv -------------------------------------------------------------------------------------
def conv_case(name, c, m, hw, k, stride=1, pads=None, dil=1, group=1, cl=1, dt="i8", act=None, bias=True,
              per_channel=True, zx=None):
    h, w_ = hw
    cg = c // group
    x = stored((1, c, h, w_), dt)
    # uint8 x int8 on x86 (AVX2) saturates int16 pair sums inside onnxruntime: 7-bit weights avoid it
    wlim = 127 if dt == "i8" else 63
    w = rng.integers(-wlim, wlim, (m, cg, k, k), endpoint=True).astype(np.int8)
    qx = act_quant(dt)
    if zx is not None:
        qx = Quant(qx.scale, (zx,))
    sw = rng.uniform(0.002, 0.02, m if per_channel else 1).astype(np.float32)
    axis = 0 if per_channel else None
    qw = Quant(tuple(map(float, sw)), (0,) * len(sw), axis)
    qb = Quant(tuple(float(np.float32(qx.scale[0]) * s) for s in sw), (0,) * len(sw), axis)
    qy = act_quant(dt, qx.scale[0] * float(np.mean(sw)) * np.sqrt(cg * k * k) * 40)
    b = rng.integers(-5000, 5000, m).astype(np.int32)
    pads = pads if pads is not None else [k // 2] * 4
    onnx_attrs = dict(strides=[stride] * 2, pads=pads, dilations=[dil] * 2, group=group)
    post = {"relu": ["Relu"], "relu6": None, None: None}[act]
    ref = qdq_run("Conv", [Q(x, qx), Q(w, qw, True), Q(b, qb, True) if bias else None], onnx_attrs, qy,
                  i8(dt), post=post)
    attrs = dict(onnx_attrs, channels_last=cl, activation=act or "none")
    xi, wi, e = (nhwc(x), nhwc(w), nhwc(ref)) if cl else (x, w, ref)
    ops = [Arg(xi, quant=qx), const(wi, qw)] + ([const(b, qb)] if bias else [])
    add(name, "conv", attrs, ops, e, qy)


conv_case("conv_3x3", 8, 16, (9, 9), 3)
conv_case("conv_s2", 16, 8, (10, 7), 3, stride=2)
conv_case("conv_asym_pad", 3, 8, (12, 12), 3, stride=2, pads=[0, 0, 1, 1])
conv_case("conv_1x1", 64, 32, (5, 5), 1, pads=[0, 0, 0, 0])
conv_case("conv_nobias_pertensor", 8, 8, (6, 6), 3, bias=False, per_channel=False)
conv_case("conv_dw", 16, 16, (9, 9), 3, group=16)
conv_case("conv_dw_s2_relu", 8, 8, (10, 10), 3, group=8, stride=2, act="relu")
conv_case("conv_dw_zp0", 8, 8, (7, 7), 3, group=8, zx=0)
conv_case("conv_grouped", 8, 8, (7, 7), 3, group=2)
conv_case("conv_dilated", 8, 8, (9, 9), 3, dil=2, pads=[2, 2, 2, 2])
conv_case("conv_nchw", 8, 8, (9, 9), 3, cl=0)
conv_case("conv_nchw_dw", 8, 8, (9, 9), 3, cl=0, group=8)
conv_case("conv_u8", 8, 8, (9, 9), 3, dt="u8")
conv_case("conv_u8_dw", 8, 8, (9, 9), 3, dt="u8", group=8)
conv_case("conv_relu", 8, 8, (9, 9), 3, act="relu")
# shapes that take the other branches of the DSP and host kernels (kernels/qdsp.py, qdot.py): 3 channels
# (scalar gathers), one channel with 4-wide rows, an odd number of output channels, pixel counts that are
# not a multiple of the block, dilation, depthwise rows longer than the unrolled ones, 5x5 and 2x2 taps
conv_case("conv_c3_s2", 3, 8, (15, 15), 3, stride=2)
conv_case("conv_c1_4wide", 1, 5, (12, 9), 4, stride=2, pads=[1, 1, 2, 2])
conv_case("conv_1x1_odd_m", 16, 7, (5, 4), 1, pads=[0, 0, 0, 0])
conv_case("conv_dilated_s2", 8, 8, (11, 11), 3, stride=2, dil=2, pads=[2, 2, 2, 2])
conv_case("conv_dw_wide", 8, 8, (5, 40), 3, group=8)
conv_case("conv_dw_wide_s2", 16, 16, (6, 37), 3, group=16, stride=2, act="relu")
conv_case("conv_dw_5x5", 8, 8, (9, 9), 5, group=8)
conv_case("conv_dw_2x2", 8, 8, (8, 8), 2, group=8, pads=[0, 0, 1, 1])
conv_case("conv_dw_c12", 12, 12, (7, 7), 3, group=12)
conv_case("conv_dw_dilated", 8, 8, (9, 9), 3, group=8, dil=2, pads=[2, 2, 2, 2])


# ---- fully_connected / matmul / gemm -----------------------------------------------------------
def fc_case(name, rows, k, n, kind="fully_connected", per_channel=True, dt="i8", act=None, out="q", lsb=0):
    x = stored((rows, k), dt)
    wlim = 127 if dt == "i8" else 63
    w = rng.integers(-wlim, wlim, (n, k), endpoint=True).astype(np.int8)
    qx = act_quant(dt)
    sw = rng.uniform(0.002, 0.02, n if per_channel else 1).astype(np.float32)
    qy = act_quant(dt, qx.scale[0] * float(np.mean(sw)) * np.sqrt(k) * 40) if out == "q" else None
    b = rng.integers(-5000, 5000, n).astype(np.int32)
    qb = Quant(tuple(float(np.float32(qx.scale[0]) * s) for s in sw), (0,) * len(sw), 0 if per_channel else None)
    post = ["Relu"] if act == "relu" else None
    odt = i8(dt) if qy else None
    if kind == "matmul":
        qw = Quant(tuple(map(float, sw)), (0,) * len(sw), 1 if per_channel else None)
        ref = qdq_run("MatMul", [Q(x, qx), Q(np.ascontiguousarray(w.T), qw, True)], {}, qy, odt, post=post)
        ops, attrs = [Arg(x, quant=qx), const(np.ascontiguousarray(w.T), qw)], {}
    else:
        qw = Quant(tuple(map(float, sw)), (0,) * len(sw), 0 if per_channel else None)
        ref = qdq_run("Gemm", [Q(x, qx), Q(w, qw, True), Q(b, qb, True)], dict(transB=1), qy, odt, post=post)
        ops = [Arg(x, quant=qx), const(w, qw), const(b, qb)]
        attrs = dict(activation=act or "none") if kind == "fully_connected" else dict(trans_b=1)
    add(name, kind, attrs, ops, ref, qy, lsb)


fc_case("fc_12", 1, 64, 12)
fc_case("fc_relu_rows", 3, 100, 10, act="relu")
fc_case("fc_pertensor", 2, 256, 2, per_channel=False)
fc_case("fc_u8", 2, 64, 16, dt="u8")
fc_case("fc_float_out", 2, 64, 8, out="f")
fc_case("fc_k_odd", 1, 30, 9)
fc_case("fc_rows5", 5, 64, 6)
fc_case("fc_640", 1, 640, 20, act="relu")
fc_case("gemm_transb", 2, 48, 16, kind="gemm")
fc_case("matmul_const_b", 4, 32, 16, kind="matmul")
# onnxruntime keeps this pattern as a float MatMul (float32 accumulation): 1 LSB at near ties
fc_case("matmul_pertensor_640", 1, 640, 128, kind="matmul", per_channel=False, lsb=1)
fc_case("matmul_float_out", 2, 64, 8, kind="matmul", out="f")


def matmul2_case(name, shape_a, shape_b, dt="i8", lsb=1):
    a, b = stored(shape_a, dt), stored(shape_b, dt)
    qa, qb = act_quant(dt), act_quant(dt)
    qy = act_quant(dt, qa.scale[0] * qb.scale[0] * np.sqrt(shape_a[-1]) * 60)
    ref = qdq_run("MatMul", [Q(a, qa), Q(b, qb)], {}, qy, i8(dt))
    add(name, "matmul", {}, [Arg(a, quant=qa), Arg(b, quant=qb)], ref, qy, lsb)


# two run-time operands: onnxruntime's QLinearMatMul, same requantization as conv
matmul2_case("matmul_runtime", (2, 5, 24), (2, 24, 16))
matmul2_case("matmul_runtime_bcast", (3, 4, 16), (16, 8), dt="u8")


# ---- add / sub / mul ------------------------------------------------------------------------------
def binary_case(name, op, sa, sb, dt="i8", scales=None, lsb=0):
    a, b = stored(sa, dt), stored(sb, dt)
    qa, qb = act_quant(dt), act_quant(dt)
    if scales:
        qa, qb = Quant((scales[0],), qa.zero_point), Quant((scales[1],), qb.zero_point)
    qy = act_quant(dt, scales[2] if scales else (qa.scale[0] * qb.scale[0] * 8 if op == "Mul" else 0.12))
    ref = qdq_run(op, [Q(a, qa), Q(b, qb)], {}, qy, i8(dt))
    add(name, op.lower(), {}, [Arg(a, quant=qa), Arg(b, quant=qb)], ref, qy, lsb)


binary_case("add_same_shape", "Add", (2, 3, 8, 8), (2, 3, 8, 8))
binary_case("add_ties", "Add", (4, 64), (4, 64), scales=(0.1, 0.05, 0.1))
binary_case("add_bcast_channel_last", "Add", (1, 5, 5, 16), (16,))
binary_case("add_bcast_channel_first", "Add", (1, 16, 5, 5), (1, 16, 1, 1))
binary_case("add_u8", "Add", (3, 40), (3, 40), dt="u8")
binary_case("add_scalar", "Add", (2, 30), (1,))
binary_case("mul_same_shape", "Mul", (2, 3, 8, 8), (2, 3, 8, 8))
binary_case("mul_ties", "Mul", (4, 64), (4, 64), scales=(0.25, 0.125, 0.25))
binary_case("mul_bcast", "Mul", (1, 4, 4, 8), (8,), dt="u8")
# onnxruntime has no fused Sub: float32 dequantize, subtract, divide, round (reproduced as such)
binary_case("sub_same_shape", "Sub", (2, 3, 8, 8), (2, 3, 8, 8))
binary_case("sub_bcast", "Sub", (3, 16), (16,), dt="u8")


# ---- unary maps (tables) --------------------------------------------------------------------------
def unary_case(name, onnx_op, kind, attrs=None, onnx_attrs=None, dt="i8", same=False, lsb=0, extra=()):
    x = np.arange(-128, 128, dtype=np.int16).astype(i8(dt)).reshape(2, 128)  # every code once
    qx = act_quant(dt, 0.05)
    qy = qx if same else act_quant(dt, 0.02)
    ref = qdq_run(onnx_op, [Q(x, qx)] + [Q(np.float32(e), const=True) for e in extra], onnx_attrs or {}, qy, i8(dt))
    add(name, kind, attrs or {}, [Arg(x, quant=qx)], ref, qy, lsb)


unary_case("relu_same_quant", "Relu", "relu", same=True)
unary_case("relu_requant", "Relu", "relu")
unary_case("clip_same_quant", "Clip", "clip", dict(min=-1.0, max=2.0), same=True, extra=(-1.0, 2.0))
unary_case("clip_requant_u8", "Clip", "clip", dict(min=0.0, max=6.0), dt="u8", extra=(0.0, 6.0))
unary_case("leaky_relu", "LeakyRelu", "leaky_relu", dict(alpha=0.1), dict(alpha=0.1))
unary_case("leaky_relu_u8", "LeakyRelu", "leaky_relu", dict(alpha=0.2), dict(alpha=0.2), dt="u8")
# sigmoid and tanh: onnxruntime's float approximations may round a table entry the other way
unary_case("sigmoid", "Sigmoid", "sigmoid", lsb=1)
unary_case("sigmoid_u8", "Sigmoid", "sigmoid", dt="u8", lsb=1)
unary_case("tanh", "Tanh", "tanh", lsb=1)
unary_case("hard_swish", "HardSwish", "hard_swish", lsb=1)
unary_case("identity_requant", "Identity", "identity")


# ---- pools ---------------------------------------------------------------------------------------
def pool_case(name, onnx_op, kind, c, hw, attrs, cl=1, dt="i8", same=True, lsb=0):
    x = stored((1, c, *hw), dt)
    qx = act_quant(dt)
    qy = qx if same else act_quant(dt)
    full = dict(attrs)
    if onnx_op in ("AveragePool", "MaxPool"):
        full.setdefault("pads", [0, 0, 0, 0])
        full.setdefault("strides", [1, 1])
    ref = qdq_run(onnx_op, [Q(x, qx)], full, qy, i8(dt))
    ir = dict(full, channels_last=cl)
    if kind == "max_pool":
        ir.setdefault("dilations", [1, 1])
    add(name, kind, ir, [Arg(nhwc(x) if cl else x, quant=qx)], nhwc(ref) if cl else ref, qy, lsb)


pool_case("avgpool_3x3", "AveragePool", "average_pool", 8, (9, 9), dict(kernel_shape=[3, 3], strides=[3, 3]))
# Averages on exact halves: in a graph this small onnxruntime fuses DequantizeLinear, AveragePool and QuantizeLinear
# into its QLinearAveragePool, which adds the zero point before rounding; edgecc rounds and then adds it, as
# QuantizeLinear is defined and as onnxruntime computes in real models, where it keeps a float AveragePool
# (ic_int8, after its layout rewrites: a float32 average of 5.4999995 is 5 there, where rint(5.4999995 - 128)
# would be rint(-122.5) = -122; tests/backends/c/test_pool_ties.py). Where float32 lands on the half itself, the
# two orders round to different neighbours.
pool_case("avgpool_2x2_ties", "AveragePool", "average_pool", 16, (8, 8), dict(kernel_shape=[2, 2], strides=[2, 2]),
          lsb=1)
pool_case("avgpool_pad_nchw", "AveragePool", "average_pool", 4, (7, 7),
          dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]), cl=0)
pool_case("avgpool_pad_incl", "AveragePool", "average_pool", 8, (6, 6),
          dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1))
pool_case("avgpool_requant_u8", "AveragePool", "average_pool", 8, (8, 8),
          dict(kernel_shape=[4, 4], strides=[4, 4]), dt="u8", same=False)
pool_case("maxpool_3x3_s2", "MaxPool", "max_pool", 8, (9, 9), dict(kernel_shape=[3, 3], strides=[2, 2]))
pool_case("maxpool_pad_nchw", "MaxPool", "max_pool", 4, (7, 7),
          dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1]), cl=0)
pool_case("maxpool_requant", "MaxPool", "max_pool", 8, (6, 6), dict(kernel_shape=[2, 2], strides=[2, 2]), same=False)
pool_case("gap_nhwc", "GlobalAveragePool", "global_average_pool", 32, (5, 5), {})
pool_case("gap_nchw_requant", "GlobalAveragePool", "global_average_pool", 16, (8, 8), {}, cl=0, same=False)
pool_case("gap_u8", "GlobalAveragePool", "global_average_pool", 8, (4, 4), {}, dt="u8")
pool_case("gmp_nhwc", "GlobalMaxPool", "global_max_pool", 8, (5, 5), {})


# ---- softmax -----------------------------------------------------------------------------------------
def softmax_case(name, shape, dt="i8", axis=-1, scale=0.1, lsb=0):
    x = stored(shape, dt)
    qx = Quant((scale,), (0 if dt == "i8" else 128,))
    qy = Quant((1 / 256,), (-128 if dt == "i8" else 0,))
    ref = qdq_run("Softmax", [Q(x, qx)], dict(axis=axis), qy, i8(dt), opset=13)
    if dt == "i8":
        # onnxruntime's QLinearSoftmax wraps a probability of 1.0 (256 - 128 = 128) to -128; we saturate
        ref = np.where((ref == -128) & (x == x.max(axis=axis, keepdims=True)), 127, ref).astype(np.int8)
    add(name, "softmax", dict(axis=axis % len(shape)), [Arg(x, quant=qx)], ref, qy, lsb)


softmax_case("softmax_12", (1, 12))
softmax_case("softmax_rows", (4, 10), scale=0.05)
softmax_case("softmax_u8", (3, 7), dt="u8")
softmax_case("softmax_axis1", (2, 5, 3), axis=1, scale=0.03)


# ---- requantizing data movement -----------------------------------------------------------------------------
def move_case(name, onnx_op, kind, shape, attrs, ir_attrs, n_inputs=1, dt="i8"):
    xs = [stored(shape, dt) for _ in range(n_inputs)]
    qs = [act_quant(dt) for _ in range(n_inputs)]
    qy = act_quant(dt)
    ref = qdq_run(onnx_op, [Q(x, q) for x, q in zip(xs, qs)], attrs, qy, i8(dt))
    add(name, kind, ir_attrs, [Arg(x, quant=q) for x, q in zip(xs, qs)], ref, qy)


move_case("transpose_requant", "Transpose", "transpose", (2, 3, 4, 5), dict(perm=[0, 2, 3, 1]), dict(perm=[0, 2, 3, 1]))
move_case("concat_requant", "Concat", "concat", (2, 3, 4), dict(axis=1), dict(axis=1), n_inputs=2)
move_case("concat_requant_u8", "Concat", "concat", (2, 6), dict(axis=-1), dict(axis=1), n_inputs=3, dt="u8")


def _mixed_cases():
    """Cases whose operands share the result's quantization except one (concat copies and requantizes)."""
    x1, x2 = stored((2, 4), "i8"), stored((2, 3), "i8")
    q = act_quant("i8")
    q2 = act_quant("i8")
    ref = qdq_run("Concat", [Q(x1, q), Q(x2, q2)], dict(axis=1), q, np.int8)
    add("concat_one_requant", "concat", dict(axis=1), [Arg(x1, quant=q), Arg(x2, quant=q2)], ref, q)
    x = stored((3, 8), "i8")
    qa, qb = act_quant("i8"), act_quant("i8")
    ref = qdq_run("Reshape", [Q(x, qa), Q(np.array([4, 6], np.int64))], {}, qb, np.int8)
    add("reshape_requant", "reshape", dict(shape=[4, 6]), [Arg(x, quant=qa)], ref, qb)


_mixed_cases()


# ---- quantize / dequantize ------------------------------------------------------------------------------------
def quant_cases():
    f = (rng.standard_normal((2, 3, 4)) * 3).astype(np.float32)
    f.flat[:4] = [0.25, -0.75, 1e9, -1e9]  # ties and saturation
    for dt in ("i8", "u8"):
        q = Quant((0.5,), (3 if dt == "i8" else 130,))
        zero = Q(i8(dt).type(q.zero_point[0]), const=True)
        ref = qdq_run("QuantizeLinear", [Q(f), Q(np.float32(0.5), const=True), zero], {}, None, i8(dt))
        add(f"quantize_{dt}", "quantize", {}, [f], ref, q)
    qa = Quant((0.5, 0.25, 0.125), (1, -2, 0), 1)
    ref = qdq_run("QuantizeLinear", [Q(f), Q(np.array(qa.scale, np.float32), const=True),
                                     Q(np.array(qa.zero_point, np.int8), const=True)], dict(axis=1), None, np.int8)
    add("quantize_per_axis", "quantize", {}, [f], ref, qa)
    f32 = (rng.standard_normal(16) * 1000).astype(np.float32)
    q32 = Quant((0.01,), (5,))
    # onnx has no int32 QuantizeLinear: the formula, in float32 like onnxruntime's
    ref = np.clip(np.rint(f32 / np.float32(0.01)).astype(np.int64) + 5, -2**31, 2**31 - 1).astype(np.int32)
    add("quantize_i32", "quantize", {}, [f32], ref, q32)
    x = stored((2, 3, 4), "i8")
    ref = qdq_run("DequantizeLinear", [Q(x), Q(np.array(qa.scale, np.float32), const=True),
                                       Q(np.array(qa.zero_point, np.int8), const=True)], dict(axis=1), None)
    CASES.append(Case("dequantize_per_axis", "dequantize", {}, [Arg(x, quant=qa)], [ref], atol=0, rtol=0))


quant_cases()


# ---- the tests -------------------------------------------------------------------------------------------------
def report(got) -> dict:
    """{case: (exact fraction, max LSB difference)} for integer results; float results: max abs error."""
    out = {}
    for c in CASES:
        y, e = got[c.name][0], c.expected[0]
        if e.dtype == np.float32:
            out[c.name] = (float(np.mean(y == e)), float(np.max(np.abs(y - e), initial=0)))
        else:
            out[c.name] = lsb_report(c.name, y, e)
    return out


@pytest.fixture(scope="module")
def strict_run():
    return run_cases(CASES, cflags=STRICT_CFLAGS)


def check_case(case, y):
    e = case.expected[0]
    assert y.shape == e.shape and y.dtype == e.dtype
    if e.dtype == np.float32:
        np.testing.assert_allclose(y, e, rtol=case.rtol or 1e-5, atol=case.atol or 1e-5, err_msg=case.name)
        return
    _, worst = lsb_report(case.name, y, e)
    assert worst <= ALLOWED_LSB.get(case.name, 0), f"{case.name}: {worst} LSB off onnxruntime"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_against_onnxruntime(case, strict_run):
    check_case(case, strict_run[case.name][0])


# The Cortex-M7's C (the DSP-extension kernels, kernels/qdsp.py) built for the host: the prelude's plain C
# stand-ins for the intrinsics compute the same integers, so the same expectations hold; the emulated M7
# runs the intrinsics themselves. optimize="speed": every case its specialized kernel (these cases are small
# enough that "balanced" would give many of them the compact kernel, tested below).
DSP_TARGET = "cortex-m7"
DSP_CASES = [c for c in CASES if c.kind in ("conv", "fully_connected", "matmul", "gemm")]  # the others: same C


@pytest.fixture(scope="module")
def dsp_run():
    return run_cases(DSP_CASES, cflags=STRICT_CFLAGS, target=DSP_TARGET, optimize="speed")


@pytest.mark.parametrize("case", DSP_CASES, ids=lambda c: c.name)
def test_dsp_kernels_on_the_host(case, dsp_run):
    check_case(case, dsp_run[case.name][0])


def have_arm() -> bool:
    from edgecc.backends.c import emulator
    return emulator.missing(DSP_TARGET) is None


needs_arm = pytest.mark.skipif(not have_arm(),
                               reason="needs arm-none-eabi-gcc, libnewlib-arm-none-eabi and qemu-system-arm")


def check_emulated_m7(cases, optimize, host_run):
    """The cases' M7 C run on the emulated M7: onnxruntime's numbers, and for integers bit for bit what the
    host build of the same C gave (`host_run`)."""
    got = run_cases(cases, cflags=["-Wall", "-Wextra", "-Werror"], target=DSP_TARGET, emulated=True,
                    optimize=optimize)
    for c in cases:
        check_case(c, got[c.name][0])
        if c.expected[0].dtype != np.float32:
            np.testing.assert_array_equal(got[c.name][0], host_run[c.name][0], err_msg=c.name)


@pytest.mark.slow
@needs_arm
def test_dsp_kernels_on_the_emulated_m7(dsp_run):
    check_emulated_m7(DSP_CASES, "speed", dsp_run)


def test_sanitizers():
    picked = [c for c in CASES if c.name in ("conv_asym_pad", "conv_dw_s2_relu", "conv_nchw", "fc_u8",
                                             "matmul_runtime_bcast", "add_bcast_channel_first", "avgpool_pad_incl",
                                             "maxpool_pad_nchw", "softmax_axis1", "concat_requant", "quantize_i32")]
    got = run_cases(picked, cflags=STRICT_CFLAGS + SANITIZE_CFLAGS)
    for c in picked:
        y, e = got[c.name][0], c.expected[0]
        if e.dtype != np.float32:
            assert lsb_report(c.name, y, e)[1] <= ALLOWED_LSB.get(c.name, 0), c.name


def test_sanitizers_dsp_kernels():
    picked = [c for c in CASES if c.name in ("conv_asym_pad", "conv_c1_4wide", "conv_1x1_odd_m", "conv_dw_wide_s2",
                                             "conv_dw_5x5", "conv_dw_2x2", "fc_k_odd", "fc_640", "fc_float_out")]
    got = run_cases(picked, cflags=STRICT_CFLAGS + SANITIZE_CFLAGS + ["-O0"], target=DSP_TARGET, optimize="speed")
    for c in picked:
        check_case(c, got[c.name][0])


# The compact kernels (kernels/compact.py: one shared conv/fully-connected, max-pool and average-pool function) with
# optimize="size", which gives them every case they apply to; the others keep their specialized kernels.
COMPACT_CASES = DSP_CASES + [c for c in CASES if c.kind in ("max_pool", "average_pool")]


def compact_layers(cases, target=DSP_TARGET) -> set:
    """The names of the cases whose layer the compact kernels run, with optimize="size"."""
    from edgecc.backends.c.kernels import select
    from kernel_cases import build_graph
    g = build_graph(cases)
    return {op.name for op in g.ops if select(op, get_target(target), "size").template.startswith("q_compact")}


@pytest.fixture(scope="module")
def compact_run():
    return run_cases(COMPACT_CASES, cflags=STRICT_CFLAGS, target=DSP_TARGET, optimize="size")


def test_compact_kernels_take_the_int8_layers_they_cover():
    took = compact_layers(COMPACT_CASES)
    # int8 x int8 channels-last convs of one group, fully connected layers, int8 max pools that keep their
    # quantization; not depthwise, uint8, channels first, or a max pool that requantizes
    for name in ("conv_asym_pad", "conv_c3_s2", "conv_c1_4wide", "conv_1x1_odd_m", "conv_dilated_s2", "fc_640",
                 "fc_k_odd", "fc_float_out", "maxpool_3x3_s2", "avgpool_3x3", "avgpool_2x2_ties",
                 "avgpool_pad_incl"):
        assert name in took, name
    for name in ("conv_dw_wide", "conv_nchw", "fc_u8", "maxpool_pad_nchw", "maxpool_requant", "avgpool_pad_nchw",
                 "avgpool_requant_u8"):
        assert name not in took, name


@pytest.mark.parametrize("case", COMPACT_CASES, ids=lambda c: c.name)
def test_compact_kernels_on_the_host(case, compact_run):
    check_case(case, compact_run[case.name][0])


@pytest.mark.slow
@needs_arm
def test_compact_kernels_on_the_emulated_m7(compact_run):
    check_emulated_m7(COMPACT_CASES, "size", compact_run)


def test_sanitizers_compact_kernels():
    picked = [c for c in COMPACT_CASES if c.name in compact_layers(COMPACT_CASES)]
    got = run_cases(picked, cflags=STRICT_CFLAGS + SANITIZE_CFLAGS + ["-O0"], target=DSP_TARGET, optimize="size")
    for c in picked:
        check_case(c, got[c.name][0])


if __name__ == "__main__":
    for name, (exact, worst) in report(run_cases(CASES)).items():
        print(f"{name:28s} exact {exact:7.2%}  max diff {worst}")
