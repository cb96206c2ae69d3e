"""Batch normalization folded away.

Inference-time batch normalization is a per-channel affine map, y = x * s + t with
s = gamma / sqrt(var + eps) and t = beta - mean * s, so:
  * conv -> batch_normalization (channels-first, channel axis 1) becomes one conv with
    w'[m] = w[m] * s[m] and bias' = bias * s + t;
  * conv_transpose -> batch_normalization the same, with each weight slice w[c_in, j] scaled by
    the output channel it feeds (groups taken into account);
  * gemm / fully_connected / matmul with constant weights, whose result is [M, N] (so BN's channel
    axis is N), become one gemm / fully_connected with scaled weights and a bias (a matmul becomes
    a fully_connected, the matmul with a bias);
  * any other batch_normalization with constant parameters becomes mul + add with per-channel
    constant tensors, which the elementwise kernels run and `fuse` may fold further.

Why: BN is a full pass over the tensor that costs a load, a multiply-add and a store per element;
folded into the producer's weights it costs nothing. Folding is done in float32 weights only
(float producer weights and parameters), and only when the producer's result feeds nothing but
the BN (else the unnormalized tensor is still needed) and has no fused activation yet.
"""
from __future__ import annotations

import numpy as np

from edgecc.compiler.rewrite import Pattern, apply_patterns
from edgecc.ir.types import TensorType

from . import register
from .fold_constants import SIMPLIFY


def _float_const(v) -> bool:
    return v is not None and v.is_const and v.type.is_float


def _affine(bn):
    """(s, t) in float64, one entry per channel, or None unless the parameters are float constants."""
    _, gamma, beta, mean, var = bn.operands
    if not all(_float_const(v) for v in (gamma, beta, mean, var)):
        return None
    s = gamma.data.astype(np.float64) / np.sqrt(var.data.astype(np.float64) + bn.attrs["epsilon"])
    return s, beta.data.astype(np.float64) - mean.data.astype(np.float64) * s


def _channels_last(t: TensorType) -> bool:
    """The interpreter's reading of a type's layout: 'n...c' keeps channels last."""
    lay = t.layout or ""
    return len(lay) >= 3 and lay[0] == "n" and lay[-1] == "c"


def _foldable_producer(bn, rw, *kinds):
    """The op defining BN's input, when BN may be folded into it."""
    x = bn.operands[0]
    p = rw.producer(x, *kinds)
    if p is None or not x.type.is_float or _channels_last(x.type) or rw.only_user(x) is not bn:
        return None
    if p.attrs.get("activation", "none") != "none" or p.attrs.get("channels_last", 0):
        return None
    return p


def _f32(a) -> np.ndarray:
    return np.asarray(a, np.float64).astype(np.float32)


def _bias_after(b, s, t) -> np.ndarray:
    """The bias once BN is applied to y = ... + b: b * s + t (b absent = 0)."""
    return (0.0 if b is None else b.data.astype(np.float64)) * s + t


def _match_weighted(bn, rw, kinds, fits=lambda p: True):
    """(producer, its bias or C operand, s, t) when BN folds into a producer of `kinds` whose
    weights and bias are float constants."""
    p = _foldable_producer(bn, rw, *kinds)
    if p is None or not _float_const(p.operands[1]) or not fits(p):
        return None
    extra = p.operands[2] if len(p.operands) > 2 else None
    if extra is not None and not _float_const(extra):
        return None
    st = _affine(bn)
    return (p, extra, *st) if st else None


# ---- conv and conv_transpose -----------------------------------------------------------------
def _match_conv(bn, rw):
    return _match_weighted(bn, rw, ("conv", "conv_transpose"))


def _out_channel_scale(p, s) -> np.ndarray:
    """Per weight element, the scale of the output channel it contributes to (broadcastable to w)."""
    w = p.operands[1].data
    nd = w.ndim - 2
    if p.kind == "conv":
        return s.reshape((-1,) + (1,) * (nd + 1))
    c_in, per_group = w.shape[0], w.shape[1]  # conv_transpose: w [C_in, M/group, *k]
    group = p.attrs["group"]
    ic = np.arange(c_in)[:, None]
    out_channel = (ic // (c_in // group)) * per_group + np.arange(per_group)[None, :]
    return s[out_channel].reshape(c_in, per_group, *(1,) * nd)


def _fold_into_conv(bn, found, rw):
    p, b, s, t = found
    w = p.operands[1]
    w2 = rw.const(f"{w.name}_bn", _f32(w.data * _out_channel_scale(p, s)), w.type)
    bias = _bias_after(b, s, t)
    b2 = rw.const(f"{p.name or w.name}_bias_bn", _f32(bias), TensorType((len(bias),), "f32"))
    return rw.op(p.kind, [p.operands[0], w2, b2], p.attrs, [bn.result], p.name).result


# ---- gemm, fully_connected, matmul -----------------------------------------------------------
def _match_dense(bn, rw):
    # BN's channel axis 1 is the dense op's N only for [M, N] results
    def fits(p):
        return p.result.type.rank == 2 and (p.kind != "matmul" or p.operands[1].type.rank == 2)
    return _match_weighted(bn, rw, ("gemm", "fully_connected", "matmul"), fits)


def _fold_into_dense(bn, found, rw):
    p, extra, s, t = found
    x, w = p.operands[0], p.operands[1]
    name = p.name or w.name
    if p.kind == "gemm":
        # y = alpha * A' B' + beta * C, scaled per column n of B'
        cols = s[:, None] if p.attrs["trans_b"] else s[None, :]
        w2 = rw.const(f"{w.name}_bn", _f32(w.data * cols), w.type)
        c = 0.0 if extra is None else p.attrs["beta"] * extra.data.astype(np.float64)
        c2 = np.asarray(c * s + t)
        c2v = rw.const(f"{name}_bias_bn", _f32(c2), TensorType(c2.shape, "f32"))
        attrs = dict(p.attrs, beta=1.0)
        return rw.op("gemm", [x, w2, c2v], attrs, [bn.result], p.name).result
    if p.kind == "fully_connected":  # w [N, K]
        w_nk = w.data * s[:, None]
        bias = _bias_after(extra, s, t)
    else:  # matmul, w [K, N]: a fully_connected holds the transposed weights and the bias
        w_nk = (w.data * s[None, :]).T
        bias = t
    w_type = TensorType(w_nk.shape, "f32")
    w2 = rw.const(f"{w.name}_bn", _f32(w_nk), w_type)
    b2 = rw.const(f"{name}_bias_bn", _f32(bias), TensorType((len(bias),), "f32"))
    attrs = dict(p.attrs) if p.kind == "fully_connected" else {}
    return rw.op("fully_connected", [x, w2, b2], attrs, [bn.result], p.name).result


# ---- what is left: a per-channel multiply-add ------------------------------------------------
def _match_standalone(bn, rw):
    return _affine(bn)


def _to_mul_add(bn, found, rw):
    s, t = found
    x = bn.operands[0]
    rank = x.type.rank
    shape = (len(s),) if _channels_last(x.type) else (len(s),) + (1,) * (rank - 2)
    sv = rw.const(f"{bn.name or x.name}_folded_scale", _f32(s).reshape(shape), TensorType(shape, "f32"))
    tv = rw.const(f"{bn.name or x.name}_folded_shift", _f32(t).reshape(shape), TensorType(shape, "f32"))
    scaled = rw.op("mul", [x, sv], {}, [(f"{bn.result.name}_scaled", TensorType(x.type.shape, "f32",
                                                                                 layout=x.type.layout))],
                   f"{bn.name}_scale" if bn.name else "").result
    return rw.op("add", [scaled, tv], {}, [bn.result], bn.name).result


PATTERNS = [
    Pattern("bn_into_conv", ("batch_normalization",), _match_conv, _fold_into_conv),
    Pattern("bn_into_dense", ("batch_normalization",), _match_dense, _fold_into_dense),
    Pattern("bn_to_mul_add", ("batch_normalization",), _match_standalone, _to_mul_add),
    *SIMPLIFY,
]


@register("fold_batchnorm")
def run(graph, ctx):
    apply_patterns(graph, PATTERNS, ctx, record="fold_batchnorm")
    return graph
