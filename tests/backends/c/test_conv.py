"""Float32 conv and conv_transpose C kernels: spatial rank 1-3, NCHW and NHWC (channels_last),
groups and depthwise (with multipliers), strides, dilations, asymmetric pads, optional bias, every
fused activation; border and interior pixels, register tiles with remainder columns and rows.
Expected values from onnx's reference implementation (conv) or a numpy scatter (conv_transpose)."""
from __future__ import annotations

import itertools
import os
import sys
import tempfile

import numpy as np
import pytest

from edgecc.backends.c.kernels import Unsupported, select
from edgecc.backends.c.kernels.float32 import activation_expr
from edgecc.backends.c.runner import STRICT_CFLAGS, build_and_run, have_cc
from edgecc.backends.registry import backend_for, get_target
from edgecc.compiler.pipeline import lower
from edgecc.ir import Op, TensorType, Value
from edgecc.ir.ops import fill_defaults
from edgecc.ir.types import Quant

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_cases import Case, build_graph, check, const, kernel_tests, onnx_ref  # noqa: E402

pytestmark = pytest.mark.skipif(not have_cc(), reason="needs a C compiler")
rng = np.random.default_rng(11)


def data(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def to_last(a):
    return np.moveaxis(a, 1, -1).copy()


ACTIVATIONS = {  # fused activation -> (act_params, numpy)
    "none": ([], lambda v: v),
    "relu": ([], lambda v: np.maximum(v, 0)),
    "relu6": ([], lambda v: np.clip(v, 0, 6)),
    "clip": ([-0.5, 1.5], lambda v: np.clip(v, -0.5, 1.5)),
    "leaky_relu": ([0.2], lambda v: np.where(v < 0, 0.2 * v, v)),
    "sigmoid": ([], lambda v: 1 / (1 + np.exp(-v))),
    "tanh": ([], np.tanh),
    "hard_swish": ([], lambda v: v * np.clip(v / 6 + 0.5, 0, 1)),
}


def conv_case(name, x_shape, w_shape, strides=None, pads=None, dilations=None, group=1, channels_last=0,
              bias=True, act="none", runtime_weights=False):
    nd = len(x_shape) - 2
    attrs = dict(strides=strides or [1] * nd, pads=pads or [0] * 2 * nd, dilations=dilations or [1] * nd,
                 group=group)
    x, w, b = data(*x_shape), data(*w_shape), data(w_shape[0])
    y = onnx_ref("Conv", [x, w] + ([b] if bias else []), attrs)[0]
    params, fn = ACTIVATIONS[act]
    y = fn(y.astype(np.float64)).astype(np.float32)
    if channels_last:
        x, w, y = to_last(x), to_last(w), to_last(y)
    ir_attrs = dict(attrs, channels_last=channels_last, activation=act, act_params=params)
    operands = [x, w, b] if runtime_weights else [x, const(w)] + ([const(b)] if bias else [])
    return Case(name, "conv", ir_attrs, operands[:3 if bias else 2], [y], atol=1e-4)


CASES = []
for cl in (0, 1):
    lay = "nhwc" if cl else "nchw"
    CASES += [
        conv_case(f"c3x3_{lay}", (1, 8, 13, 14), (16, 8, 3, 3), pads=[1, 1, 1, 1], channels_last=cl, act="relu"),
        conv_case(f"c1x1_{lay}", (1, 24, 5, 7), (40, 24, 1, 1), channels_last=cl),  # a GEMM over pixels
        conv_case(f"c1x1_s2_{lay}", (1, 6, 7, 7), (12, 6, 1, 1), strides=[2, 2], channels_last=cl),
        conv_case(f"stem_{lay}", (1, 3, 19, 17), (8, 3, 3, 3), strides=[2, 2], pads=[0, 0, 1, 1], channels_last=cl),
        conv_case(f"odd_cols_{lay}", (2, 5, 9, 10), (20, 5, 3, 2), pads=[1, 0, 1, 1], channels_last=cl,
                  bias=False),
        conv_case(f"dilated_{lay}", (1, 4, 12, 11), (12, 4, 3, 3), strides=[1, 2], pads=[2, 1, 2, 0],
                  dilations=[2, 3], channels_last=cl),
        conv_case(f"group_{lay}", (1, 6, 8, 9), (9, 2, 3, 3), pads=[1, 1, 1, 1], group=3, channels_last=cl),
        conv_case(f"tiny_{lay}", (1, 3, 2, 2), (5, 3, 3, 3), pads=[1, 1, 1, 1], channels_last=cl),  # no interior
        conv_case(f"conv1d_{lay}", (2, 4, 23), (6, 4, 5), strides=[2], pads=[2, 1], channels_last=cl),
        conv_case(f"conv3d_{lay}", (1, 3, 4, 5, 6), (4, 3, 2, 3, 3), pads=[1, 0, 1, 0, 1, 1], channels_last=cl),
        conv_case(f"dw_{lay}", (1, 24, 11, 13), (24, 1, 3, 3), pads=[1, 1, 1, 1], group=24, channels_last=cl,
                  act="relu6"),
        conv_case(f"dw_s2_{lay}", (2, 10, 9, 12), (10, 1, 3, 3), strides=[2, 2], pads=[0, 1, 1, 0], group=10,
                  channels_last=cl),
        conv_case(f"dw_dilated_{lay}", (1, 16, 9, 8), (16, 1, 3, 5), pads=[2, 2, 2, 2], dilations=[2, 1], group=16,
                  channels_last=cl, bias=False),
        conv_case(f"dw_mult_{lay}", (1, 4, 7, 8), (12, 1, 3, 3), pads=[1, 1, 1, 1], group=4, channels_last=cl),
        conv_case(f"dw1d_{lay}", (1, 8, 21), (8, 1, 3), pads=[1, 1], group=8, channels_last=cl),
        conv_case(f"dw3d_{lay}", (1, 4, 4, 5, 6), (4, 1, 3, 2, 3), strides=[1, 2, 2], pads=[1, 0, 1, 1, 1, 1],
                  group=4, channels_last=cl),
    ]
    # weights (and bias) computed at run time, read where they lie (OIHW or OHWI)
    CASES += [
        conv_case(f"runtime_w_{lay}", (1, 6, 7, 9), (10, 6, 3, 3), pads=[1, 1, 1, 1], channels_last=cl,
                  runtime_weights=True),
        conv_case(f"runtime_w_group_{lay}", (1, 6, 5, 6), (4, 3, 1, 3), strides=[1, 2], pads=[0, 1, 0, 1], group=2,
                  channels_last=cl, runtime_weights=True, bias=False),
        conv_case(f"runtime_w_dw_{lay}", (1, 5, 6, 7), (5, 1, 3, 3), pads=[1, 1, 1, 1], group=5, channels_last=cl,
                  runtime_weights=True),
    ]
for act in ACTIVATIONS:
    CASES.append(conv_case(f"act_{act}", (1, 4, 6, 6), (8, 4, 3, 3), pads=[1, 1, 1, 1], channels_last=1, act=act))
    CASES.append(conv_case(f"act_{act}_dw_nchw", (1, 4, 10, 3), (4, 1, 3, 3), pads=[1, 1, 1, 1], group=4, act=act))


def conv_transpose_ref(x, w, b, s, p, d, g, out_pad):
    """Each input pixel scatters x * w into the outputs its taps reach, then the pads crop."""
    nd = x.ndim - 2
    n, c = x.shape[:2]
    cg, mg = c // g, w.shape[1]
    full = [s[i] * (x.shape[2 + i] - 1) + (w.shape[2 + i] - 1) * d[i] + 1 + out_pad[i] for i in range(nd)]
    y = np.zeros((n, mg * g, *full))
    for gi, ip, kp in itertools.product(range(g), itertools.product(*map(range, x.shape[2:])),
                                        itertools.product(*map(range, w.shape[2:]))):
        o = tuple(ip[i] * s[i] + kp[i] * d[i] for i in range(nd))
        xv = x[(slice(None), slice(gi * cg, (gi + 1) * cg)) + ip].astype(np.float64)
        y[(slice(None), slice(gi * mg, (gi + 1) * mg)) + o] += xv @ w[(slice(gi * cg, (gi + 1) * cg), slice(None)) + kp]
    y = y[(slice(None), slice(None)) + tuple(slice(p[i], full[i] - p[nd + i]) for i in range(nd))]
    if b is not None:
        y += b.reshape((1, -1) + (1,) * nd)
    return y.astype(np.float32)


for i, (xs, ws, s, p, d, g, out_pad, bias) in enumerate([
        ((1, 3, 5, 5), (3, 4, 3, 3), [1, 1], [0, 0, 0, 0], [1, 1], 1, [0, 0], True),
        ((2, 4, 4, 5), (4, 3, 3, 3), [2, 2], [1, 1, 1, 1], [1, 1], 2, [1, 0], True),
        ((1, 2, 7), (2, 3, 4), [3], [1, 2], [2], 1, [2], False),
        ((1, 2, 3, 4, 3), (2, 2, 2, 3, 2), [2, 1, 2], [0, 1, 0, 0, 1, 1], [1, 1, 2], 1, [1, 0, 0], True),
        ((1, 8, 6, 6), (8, 1, 4, 4), [2, 2], [1, 1, 1, 1], [1, 1], 8, [0, 0], True)]):
    x, w, b = data(*xs), data(*ws), data(ws[1] * g)
    attrs = dict(strides=s, pads=p, dilations=d, group=g, output_padding=out_pad)
    expected = conv_transpose_ref(x, w, b if bias else None, s, p, d, g, out_pad)
    if g == 1:  # onnx's reference agrees where it supports the case
        np.testing.assert_allclose(expected, onnx_ref("ConvTranspose", [x, w] + ([b] if bias else []), attrs)[0],
                                   rtol=1e-4, atol=1e-4)
    operands = [x, const(w) if i % 2 else w] + ([const(b)] if bias else [])
    CASES.append(Case(f"convt{i}", "conv_transpose", attrs, operands, [expected], atol=1e-4))

results, test_conv, test_conv_sanitized = kernel_tests(CASES)


def test_scalar_tiles_of_a_cortex_m_target():
    """Targets without a vector unit get tiles of scalar accumulators (chunks one float wide):
    the same C99, built and run here with the host compiler."""
    cases = [c for c in CASES if c.name in ("c3x3_nhwc", "odd_cols_nchw", "dw_nhwc", "dw_s2_nchw", "group_nhwc")]
    g = lower(build_graph(cases), "cortex-m7", passes=["memory_plan"])
    with tempfile.TemporaryDirectory() as d:
        backend_for(get_target("cortex-m7")).emit(g, d)
        assert "acc0_0[" not in open(os.path.join(d, "model.c")).read()
        outs = build_and_run(d, g, [c.operands[0] for c in cases], cflags=STRICT_CFLAGS)
    for c, y in zip(cases, outs):
        check(c, [y])


def _conv_op(x_type, w, y_type):
    wv = Value("w", TensorType(w.shape, "f32"), w)
    return Op("conv", [Value("x", x_type), wv], [Value("y", y_type)],
              fill_defaults("conv", dict(strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1])), "c")


def test_quantized_or_integer_operands_are_not_float_kernels():
    from edgecc.backends.c.kernels.conv import conv
    q = Quant((0.1,), (0,))
    op = _conv_op(TensorType((1, 2, 3, 3), "i8", q), np.ones((1, 2, 1, 1), np.float32),
                  TensorType((1, 1, 3, 3), "i8", q))
    with pytest.raises(Unsupported, match="quantized"):
        conv(op)
    op = _conv_op(TensorType((1, 2, 3, 3), "i32"), np.ones((1, 2, 1, 1), np.float32), TensorType((1, 1, 3, 3), "i32"))
    with pytest.raises(Unsupported, match="i32"):
        conv(op)


def test_unknown_activation_is_unsupported():
    op = _conv_op(TensorType((1, 2, 3, 3), "f32"), np.ones((1, 2, 1, 1), np.float32), TensorType((1, 1, 3, 3), "f32"))
    op.attrs["activation"] = "gelu"
    with pytest.raises(Unsupported, match="gelu"):
        activation_expr(op)


def test_weights_are_carried_reordered_not_twice():
    """The kernel's own [tap][c][m] table replaces the OIHW constant in the C file."""
    op = _conv_op(TensorType((1, 2, 3, 3), "f32"), np.arange(8, dtype=np.float32).reshape(4, 2, 1, 1),
                  TensorType((1, 4, 3, 3), "f32"))
    k = select(op)
    assert k.replaced == (1,)
    weights = dict(k.consts)["weights"]
    np.testing.assert_array_equal(weights, np.arange(8, dtype=np.float32).reshape(4, 2).T.reshape(-1))
