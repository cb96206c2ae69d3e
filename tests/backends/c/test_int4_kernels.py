"""Kernels with 4-bit weights (i4) and int8 activations: conv, depthwise, fully connected, matmul and gemm, on
every family of kernels (the host's dot products, the DSP kernels and the compact ones of the Cortex-M cores,
the portable loop nest of the M0+), against onnxruntime.

The expected integers are onnxruntime's on the same layer with its 4-bit codes held as int8 weights: it fuses
that QDQ model into its integer kernels (QLinearConv & co.: exact accumulator, float32 requantization), which
compute what the 4-bit layer means to the last bit, so every kernel here must give exactly those integers, on
the host, in the DSP kernels' C built for the host, and on the emulated M7 (bit for bit the same). The 4-bit QDQ
model itself, which onnxruntime runs in float (its com.microsoft DequantizeLinear, then a float Conv), and the
IR interpreter (float64) may round a near tie the other way: within 1 LSB."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from edgecc.backends.c.runner import STRICT_CFLAGS, have_cc
from edgecc.ir.types import Quant

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_cases import SANITIZED_CFLAGS, Arg, Case, build_graph, run_cases  # noqa: E402
from qdq_ref import Q, lsb_report, qdq_run  # noqa: E402

pytest.importorskip("onnxruntime")
pytest.importorskip("ml_dtypes")
pytestmark = pytest.mark.skipif(not have_cc(), reason="needs a C compiler")
rng = np.random.default_rng(44)
CASES, INT4_REFS = [], {}


def stored(shape):
    return rng.integers(-128, 128, shape).astype(np.int8)


def act_quant(scale=None):
    return Quant((float(scale or rng.uniform(0.01, 0.1)),), (int(rng.integers(-100, 100)),))


def nhwc(a):
    return np.ascontiguousarray(np.moveaxis(a, 1, -1))


def codes4(shape):
    return rng.integers(-8, 8, shape).astype(np.int8)


def weight_quant(n, axis=0):
    s = rng.uniform(0.02, 0.3, n).astype(np.float32)
    return Quant(tuple(map(float, s)), (0,) * n, axis), s


def add(name, kind, attrs, operands, qdq, out_quant):
    """A case whose expected integers are onnxruntime's on the int8-held codes; `qdq`: (op type, Q operands with
    the weights at index 1, attrs, post ops, layout of the result) for onnxruntime."""
    op_type, qs, onnx_attrs, post, to_layout = qdq
    exact = qdq_run(op_type, qs, onnx_attrs, out_quant, np.int8, post=post)
    as_int4 = [Q(q.data, q.quant, q.const, int4=q.const and q.data.dtype == np.int8 and j == 1)
               for j, q in enumerate(qs)]
    INT4_REFS[name] = to_layout(qdq_run(op_type, as_int4, onnx_attrs, out_quant, np.int8, post=post))
    CASES.append(Case(name, kind, attrs, operands, [to_layout(exact)], result_quant=out_quant))


def conv_case(name, c, m, hw, k, stride=1, pads=None, group=1, cl=1, act=None, dil=1):
    h, w_ = hw
    cg = c // group
    x, w = stored((1, c, h, w_)), codes4((m, cg, k, k))
    qx = act_quant()
    qw, sw = weight_quant(m)
    qb = Quant(tuple(float(np.float32(qx.scale[0]) * s) for s in sw), (0,) * m, 0)
    qy = act_quant(qx.scale[0] * float(np.mean(sw)) * np.sqrt(cg * k * k) * 20)
    b = rng.integers(-3000, 3000, m).astype(np.int32)
    pads = pads if pads is not None else [k // 2 * dil] * 4
    onnx_attrs = dict(strides=[stride] * 2, pads=pads, dilations=[dil] * 2, group=group)
    attrs = dict(onnx_attrs, channels_last=cl, activation=act or "none")
    xi, wi = (nhwc(x), nhwc(w)) if cl else (x, w)
    ops = [Arg(xi, quant=qx), Arg(wi, True, qw, "i4"), Arg(b, True, Quant(qb.scale, qb.zero_point, 0))]
    add(name, "conv", attrs, ops, ("Conv", [Q(x, qx), Q(w, qw, True), Q(b, qb, True)], onnx_attrs,
                                   ["Relu"] if act == "relu" else None, nhwc if cl else (lambda a: a)), qy)


def fc_case(name, rows, k, n, kind="fully_connected", act=None):
    x, w = stored((rows, k)), codes4((n, k))
    qx = act_quant()
    qy = act_quant(qx.scale[0] * 0.15 * np.sqrt(k) * 20)
    post = ["Relu"] if act == "relu" else None
    if kind == "matmul":  # B [K, N], per column
        qw, _ = weight_quant(n, axis=1)
        wt = np.ascontiguousarray(w.T)
        add(name, "matmul", {}, [Arg(x, quant=qx), Arg(wt, True, qw, "i4")],
            ("MatMul", [Q(x, qx), Q(wt, qw, True)], {}, post, lambda a: a), qy)
        return
    qw, sw = weight_quant(n)
    qb = Quant(tuple(float(np.float32(qx.scale[0]) * s) for s in sw), (0,) * n, 0)
    b = rng.integers(-3000, 3000, n).astype(np.int32)
    attrs = dict(activation=act or "none") if kind == "fully_connected" else dict(trans_b=1)
    add(name, kind, attrs, [Arg(x, quant=qx), Arg(w, True, qw, "i4"), Arg(b, True, qb)],
        ("Gemm", [Q(x, qx), Q(w, qw, True), Q(b, qb, True)], dict(transB=1), post, lambda a: a), qy)


# the branches of every family: 3x3 and 1x1 (receptive fields in whole words of 8 and not), strides, asymmetric
# padding, 3 input channels (scalar gathers), pixel counts the blocks do not divide, an odd number of output
# channels, depthwise 3x3 (pairs of outputs) and 5x5, a grouped conv and a channels-first one (the plain loop
# nest), dilation, a fused relu; fully connected layers of one and several rows, K odd, matmul and gemm
conv_case("conv4_3x3", 8, 16, (9, 9), 3)
conv_case("conv4_s2_relu", 16, 8, (10, 7), 3, stride=2, act="relu")
conv_case("conv4_asym_pad", 3, 8, (12, 12), 3, stride=2, pads=[0, 0, 1, 1])
conv_case("conv4_1x1", 64, 32, (5, 5), 1, pads=[0, 0, 0, 0])
conv_case("conv4_1x1_k12_odd_m", 12, 7, (5, 4), 1, pads=[0, 0, 0, 0])
conv_case("conv4_dilated", 8, 8, (9, 9), 3, dil=2)
conv_case("conv4_dw", 16, 16, (9, 9), 3, group=16)
conv_case("conv4_dw_s2_relu", 8, 8, (10, 10), 3, group=8, stride=2, act="relu")
conv_case("conv4_dw_5x5", 8, 8, (9, 9), 5, group=8)
conv_case("conv4_grouped", 8, 8, (7, 7), 3, group=2)
conv_case("conv4_nchw", 8, 8, (9, 9), 3, cl=0)
fc_case("fc4_64", 1, 64, 12)
fc_case("fc4_rows_relu", 3, 100, 10, act="relu")
fc_case("fc4_k_odd", 1, 30, 9)
fc_case("fc4_640", 1, 640, 20)
fc_case("gemm4_transb", 2, 48, 16, kind="gemm")
fc_case("matmul4_const_b", 4, 32, 16, kind="matmul")

# the targets and modes that choose different kernels for the same layers
BUILDS = {"host": dict(target="host"), "dsp": dict(target="cortex-m7", optimize="speed"),
          "compact": dict(target="cortex-m7", optimize="size"), "portable": dict(target="cortex-m0plus")}


@pytest.fixture(scope="module", params=sorted(BUILDS))
def build(request):
    return request.param, run_cases(CASES, cflags=STRICT_CFLAGS, **BUILDS[request.param])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_onnxruntimes_integers(case, build):
    name, got = build
    y = got[case.name][0]
    np.testing.assert_array_equal(y, case.expected[0], err_msg=f"{case.name} ({name})")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_int4_qdq_model_and_the_interpreter_within_one_lsb(case):
    from edgecc.ir.interp import run

    assert lsb_report(case.name, INT4_REFS[case.name], case.expected[0])[1] <= 1
    g = build_graph([case])
    feeds = [a.data for a in case.operands if isinstance(a, Arg) and not a.const]
    (y,) = run(g, feeds)
    assert lsb_report(case.name, y, case.expected[0])[1] <= 1


def test_each_family_takes_its_kernel():
    """The builds above do run the kernels they are meant to test (the branches are the test's point)."""
    from edgecc.backends.c.kernels import select
    from edgecc.backends.registry import get_target

    g = build_graph(CASES)
    picked = {}
    for name, b in BUILDS.items():
        t = None if b["target"] == "host" else get_target(b["target"])
        picked[name] = {op.name: select(op, t, b.get("optimize", "balanced")).template for op in g.ops}
    assert picked["dsp"]["conv4_3x3"] == "q_conv_dsp.c.j2" and picked["dsp"]["conv4_dw"] == "q_dwconv_dsp.c.j2"
    assert picked["dsp"]["fc4_64"] == "q_conv_dsp.c.j2"
    assert picked["compact"]["conv4_3x3"] == "q_compact_conv4.c.j2"
    assert picked["compact"]["fc4_64"] == "q_compact_conv4.c.j2"
    assert picked["host"]["conv4_3x3"] == "q_conv_dot.c.j2"
    assert picked["portable"]["conv4_3x3"] == "q_conv_generic.c.j2" and picked["portable"]["fc4_64"] == "q_fc.c.j2"


@pytest.mark.parametrize("kind", ["host", "dsp"])
def test_sanitizers(kind):
    got = run_cases(CASES, cflags=SANITIZED_CFLAGS, **BUILDS[kind])
    for c in CASES:
        np.testing.assert_array_equal(got[c.name][0], c.expected[0], err_msg=c.name)


def have_arm(target) -> bool:
    from edgecc.backends.c import emulator
    return emulator.missing(target) is None


@pytest.mark.slow
@pytest.mark.parametrize("target, optimize", [("cortex-m7", "speed"), ("cortex-m7", "size"),
                                              ("cortex-m0plus", "balanced")])
def test_on_emulated_cores(target, optimize):
    """The intrinsics themselves on the M7 (its DSP and compact kernels); the portable kernels on the M0+, whose
    board faults on an unaligned access."""
    if not have_arm(target):
        pytest.skip("needs arm-none-eabi-gcc, libnewlib-arm-none-eabi and qemu-system-arm")
    got = run_cases(CASES, cflags=["-Wall", "-Wextra", "-Werror"], target=target, emulated=True, optimize=optimize)
    for c in CASES:
        np.testing.assert_array_equal(got[c.name][0], c.expected[0], err_msg=c.name)
