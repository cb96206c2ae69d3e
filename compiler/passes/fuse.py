"""Operator fusion and quantize/dequantize cleanup, as declared rewrite patterns.

Dense ops into the forms the kernels take:
  * matmul(x, W) with W a constant [K, N] (any leading dims on x) -> fully_connected(x, W^T),
    the weights transposed to [N, K] once, here;
  * gemm(A, B, C) with B constant and C absent or a row -> fully_connected(A, B', C'), with alpha
    and beta folded into B and C (into the scale of quantized ones).
Chains into one op (each a small pattern; the driver applies them until none matches, so
conv + add + relu becomes conv{bias, relu} in two steps):
  * conv / fully_connected + add of a constant broadcast along the channel axis (conv: axis 1,
    or the last with channels_last; fully_connected: the last) -> the op with that bias;
  * conv / fully_connected + relu / clip / leaky_relu -> the op with the fused activation
    (ACT attributes of ir/ops.py; clip(0, 6) is relu6, clip(0, inf) is relu);
  * pad (constant mode) -> conv / average_pool / max_pool: the padding goes into the op's pads
    (conv and average_pool pad with 0, which average_pool must then count: count_include_pad = 1;
    max_pool pads with -inf, or for quantized tensors a value that saturates to the lowest code).
Quantization, read as the IR reads it (an op with quantized operands dequantizes them, computes
in real numbers and quantizes its result):
  * op -> quantize, where the op's float result feeds only the quantize -> the op with the
    quantized result;
  * dequantize -> op: the op reads the quantized value itself (unless the op is `quantize`);
    through pure data movement (reshape, transpose, slice, concat, pad, max_pool, ...) the
    dequantize moves down instead, so the movement stays on the integers with the same
    quantization and the dequantize meets the next op that takes it in;
  * quantize(dequantize(x)) with the same quantization -> x;
  * op -> float -> relu / clip with a quantized result (a residual add, say) -> the op with that
    quantized result, then the clamp on integers with the same quantization in and out (exact,
    as below), so no float tensor is left between them.
Fusing a chain is legal when the tensor between the two ops is float (the fused op computes the
same real numbers and rounds once). When that tensor is quantized, only a clamp (relu, clip) fuses,
and only when its operand and result quantization are identical: a clamp commutes with monotone
rounding, so it is exact; anything else would round twice before and once after.

Why: each fused op saves a pass over the tensor in memory, and integer kernels want quantized
operands and results, not quantize/dequantize ops around float ones.
"""
from __future__ import annotations

import math

import numpy as np

from edgecc.compiler.rewrite import ANY, Pattern, apply_patterns
from edgecc.ir.graph import Op, Value
from edgecc.ir.ops import infer_shapes
from edgecc.ir.types import Quant, TensorType

from . import register
from .fold_constants import FOLD, SIMPLIFY, same_storage

FUSED_OPS = ("conv", "fully_connected")
RAW = ("quantize", "dequantize", "partition")
# ops that only move or select stored elements (max_pool: max commutes with an increasing map)
MOVEMENT = ("reshape", "transpose", "identity", "slice", "concat", "expand", "tile", "depth_to_space",
            "space_to_depth", "pad", "max_pool", "global_max_pool", "gather")


# ---- quantize / dequantize -------------------------------------------------------------------
def _dequantized(v, rw):
    """The quantized value `v` is the dequantize of, or None."""
    d = rw.producer(v, "dequantize")
    return d.operands[0] if d is not None else None


def _match_requantize_noop(q, rw):
    src = _dequantized(q.operands[0], rw)
    if src is None or src.type.shape != q.result.type.shape or not same_storage(src, q.result):
        return None
    return src if rw.can_bypass(q.result, src) else None


def _match_hoist_quantize(q, rw):
    """quantize after data movement of float tensors: quantize the tensors moved instead."""
    x = q.operands[0]
    p = rw.producer(x, *MOVEMENT)
    if p is None or len(p.results) != 1 or rw.only_user(x) is not q or q.result.type.quant.per_axis:
        return None
    data = p.operands[:1] if p.kind == "gather" else p.operands
    return p if all(v.type.dtype == "f32" and not v.is_const for v in data) else None


def _hoist_quantize(q, p, rw):
    n = 1 if p.kind == "gather" else len(p.operands)
    t = q.result.type
    moved = [rw.op("quantize", [v], {}, [(f"{v.name}_q", v.type.with_(dtype=t.dtype, quant=t.quant))],
                   f"{p.name}_quantize" if p.name else "").result for v in p.operands[:n]]
    return rw.op(p.kind, moved + list(p.operands[n:]), p.attrs, [q.result], p.name).result


def _match_absorb_quantize(q, rw):
    x = q.operands[0]
    p = rw.producer(x)
    if p is None or p.kind in RAW + ("cast",) or len(p.results) != 1 or p.regions:
        return None
    if x.type.dtype != "f32" or rw.only_user(x) is not q:
        return None
    return p


def _absorb_quantize(q, p, rw):
    return rw.op(p.kind, p.operands, p.attrs, [q.result], p.name).result


def _match_push_dequantize(op, rw):
    """Data movement whose data operands are all dequantized from one per-tensor quantization."""
    data = op.operands[:1] if op.kind == "gather" else op.operands
    sources = [_dequantized(v, rw) for v in data]
    if len(op.results) != 1 or not sources or any(s is None for s in sources):
        return None
    quant, dtype = sources[0].type.quant, sources[0].type.dtype
    if quant.per_axis or any(s.type.quant != quant or s.type.dtype != dtype for s in sources):
        return None
    if op.kind == "pad" and op.attrs["mode"] == "constant" and op.attrs["value"] != 0.0:
        return None  # another value may not be representable exactly
    return sources


def _push_dequantize(op, sources, rw):
    operands = list(sources) + list(op.operands[len(sources):])
    t = op.result.type.with_(dtype=sources[0].type.dtype, quant=sources[0].type.quant)
    moved = rw.op(op.kind, operands, op.attrs, [(f"{op.result.name}_q", t)], op.name).result
    return rw.op("dequantize", [moved], {}, [op.result], f"{op.name}_dequantize" if op.name else "").result


def _match_drop_dequantize(op, rw):
    if op.kind in RAW:
        return None
    srcs = [_dequantized(v, rw) for v in op.operands]
    return srcs if any(s is not None for s in srcs) else None


def _drop_dequantize(op, srcs, rw):
    operands = [s if s is not None else v for v, s in zip(op.operands, srcs)]
    return rw.op(op.kind, operands, op.attrs, list(op.results), op.name).results


# ---- dense ops into fully_connected ----------------------------------------------------------
def transposed_2d(v, rw, base):
    """A constant holding v's 2-D data transposed, with a per-axis quant axis following it."""
    q = v.type.quant
    if q is not None and q.per_axis:
        q = Quant(q.scale, q.zero_point, 1 - q.axis)
    t = TensorType(v.type.shape[::-1], v.type.dtype, q)
    return rw.const(base, v.data.T, t)


def _scalable(v, factor) -> bool:
    """Whether factor * v can be stored in v's type: float data, or a positive factor on a scale."""
    return v is None or factor == 1.0 or v.type.is_float or (v.type.quant is not None and factor > 0)


def _scaled(v, factor, rw, base):
    """factor * v as a constant (float data scaled, quantized data by its scale); see _scalable."""
    if factor == 1.0:
        return v
    if v.type.is_float:
        return rw.const(base, (v.data.astype(np.float64) * factor).astype(np.float32), v.type)
    q = v.type.quant
    t = v.type.with_(quant=Quant(tuple(s * factor for s in q.scale), q.zero_point, q.axis))
    return rw.const(base, v.data, t)


def _match_matmul(op, rw):
    w = op.operands[1]
    return w.is_const and w.type.rank == 2


def _matmul_to_fc(op, found, rw):
    w = op.operands[1]
    w_nk = transposed_2d(w, rw, f"{w.name}_nk")
    return rw.op("fully_connected", [op.operands[0], w_nk], {}, [op.result], op.name).result


def _row(c, n) -> bool:
    """c broadcasts along the last axis only: shape (), (n,), (1, n), (1,), (1, 1)."""
    return c.type.rank <= 2 and all(d == 1 for d in c.type.shape[:-1]) and c.type.shape[-1:] in ((), (1,), (n,))


def _match_gemm(op, rw):
    a, b = op.attrs, op.operands[1]
    c = op.operands[2] if len(op.operands) > 2 and a["beta"] != 0.0 else None
    if a["trans_a"] or not b.is_const or not _scalable(b, a["alpha"]):
        return None
    if c is not None and not (c.is_const and _row(c, op.result.type.shape[1]) and _scalable(c, a["beta"])):
        return None
    return True


def _gemm_to_fc(op, found, rw):
    a, b = op.attrs, op.operands[1]
    c = op.operands[2] if len(op.operands) > 2 and a["beta"] != 0.0 else None
    w_nk = b if a["trans_b"] else transposed_2d(b, rw, f"{b.name}_nk")
    operands = [op.operands[0], _scaled(w_nk, a["alpha"], rw, f"{b.name}_alpha")]
    if c is not None:
        n = op.result.type.shape[1]
        row = rw.const(f"{c.name}_row", np.broadcast_to(c.data.reshape(-1), (n,)), c.type.with_(shape=(n,)))
        operands.append(_scaled(row, a["beta"], rw, f"{c.name}_beta"))
    return rw.op("fully_connected", operands, {}, [op.result], op.name).result


# ---- bias add --------------------------------------------------------------------------------
def channel_axis(op) -> int:
    """The axis of op's result that its bias and weights' output channels run along."""
    if op.kind == "conv" and not op.attrs.get("channels_last", 0):
        return 1
    return op.result.type.rank - 1


def _fusable_producer(v, rw, user):
    """The conv / fully_connected defining `v`, if `user` may be fused into it."""
    p = rw.producer(v, *FUSED_OPS)
    if p is None or p.attrs["activation"] != "none" or rw.only_user(v) is not user:
        return None
    return p


def _bias_along(c, axis, m, rank):
    """c's values as a [m] bias when c broadcasts along `axis` only; (data, type) or None."""
    shape = (1,) * (rank - c.type.rank) + tuple(c.type.shape)
    if c.type.rank > rank or any(d != 1 for i, d in enumerate(shape) if i != axis) or shape[axis] not in (1, m):
        return None
    q = c.type.quant
    if q is not None and q.per_axis:
        if q.axis + rank - c.type.rank != axis or shape[axis] != m:
            return None
        q = Quant(q.scale, q.zero_point, 0)
    elif q is None and not c.type.is_float:
        return None
    data = np.broadcast_to(c.data.reshape(-1), (m,))
    return data, TensorType((m,), c.type.dtype, q)


def _match_bias_add(add, rw):
    for i in (0, 1):
        x, c = add.operands[i], add.operands[1 - i]
        p = _fusable_producer(x, rw, add)
        if p is None or not c.is_const or not x.type.is_float or x.type.shape != add.result.type.shape:
            continue
        axis = channel_axis(p)
        found = _bias_along(c, axis, x.type.shape[axis], x.type.rank)
        if found is None:
            continue
        data, t = found
        old = p.operands[2] if len(p.operands) > 2 else None
        if old is not None:
            if old.type.is_float and t.is_float:
                data = old.data.astype(np.float64) + data
            elif old.type.quant == t.quant and old.type.dtype == t.dtype:
                data = old.data.astype(np.int64) + data
                info = np.iinfo(t.np_dtype)
                if data.min() < info.min or data.max() > info.max:
                    continue
            else:
                continue
        return p, data, t
    return None


def _fuse_bias(add, found, rw):
    p, data, t = found
    bias = rw.const(f"{p.name or p.result.name}_bias", data, t)
    return rw.op(p.kind, [p.operands[0], p.operands[1], bias], p.attrs, [add.result], p.name).result


# ---- activations -----------------------------------------------------------------------------
def activation_of(op):
    """(activation, act_params) for a relu / clip / leaky_relu op."""
    if op.kind == "relu":
        return "relu", []
    if op.kind == "leaky_relu":
        return "leaky_relu", [float(op.attrs["alpha"])]
    lo, hi = float(op.attrs["min"]), float(op.attrs["max"])
    if lo == 0.0 and hi == 6.0:
        return "relu6", []
    if lo == 0.0 and hi == math.inf:
        return "relu", []
    return "clip", [lo, hi]


def _match_activation(act, rw):
    x = act.operands[0]
    p = _fusable_producer(x, rw, act)
    if p is None:
        return None
    if x.type.is_float:
        return p
    clamp_in_quantized_domain = act.kind in ("relu", "clip") and x.type.quant is not None \
        and same_storage(x, act.result)
    return p if clamp_in_quantized_domain else None


def _fuse_activation(act, p, rw):
    name, params = activation_of(act)
    return rw.op(p.kind, p.operands, dict(p.attrs, activation=name, act_params=params), [act.result],
                 p.name).result


def _match_quantize_before_clamp(act, rw):
    """op -> float -> relu/clip -> quantized: the op can round to that quantization itself."""
    x, t = act.operands[0], act.result.type
    p = rw.producer(x)
    if act.kind not in ("relu", "clip") or t.quant is None or t.quant.per_axis or not x.type.is_float:
        return None
    if p is None or p.kind in RAW + ("cast",) or len(p.results) != 1 or p.regions or rw.only_user(x) is not act:
        return None
    return p


def _quantize_before_clamp(act, p, rw):
    t = act.result.type
    y = rw.op(p.kind, p.operands, p.attrs, [(f"{p.result.name}_q", p.result.type.with_(dtype=t.dtype, quant=t.quant))],
              p.name).result
    return rw.op(act.kind, [y], act.attrs, [act.result], act.name).result


# ---- pad into the op's pads ------------------------------------------------------------------
def spatial_axes(op, rank):
    return list(range(1, rank - 1)) if op.attrs.get("channels_last", 0) else list(range(2, rank))


def _pads_with(pad, v) -> bool:
    """Whether the pad's constant is `v` in effect (quantized: `v` stored as the same code)."""
    value = pad.attrs["value"]
    if value == v:
        return True
    t = pad.result.type
    if v == -math.inf and t.quant is not None and not t.quant.per_axis:
        code = np.rint(value / t.quant.scale[0]) + t.quant.zero_point[0]
        return code <= np.iinfo(t.np_dtype).min
    return False


def _match_pad(op, rw):
    pad = rw.producer(op.operands[0], "pad")
    if pad is None or len(op.results) != 1 or pad.attrs["mode"] != "constant":
        return None
    x = pad.operands[0]
    if not same_storage(x, pad.result):
        return None
    rank, p = x.type.rank, pad.attrs["pads"]
    spatial = spatial_axes(op, rank)
    if any(v < 0 for v in p) or any(p[i] or p[rank + i] for i in range(rank) if i not in spatial):
        return None
    a = op.attrs
    if op.kind != "conv" and a["ceil_mode"]:
        return None  # ceil_mode windows past the end would see the pad, then not see it
    if op.kind == "max_pool":
        ok = _pads_with(pad, -math.inf)
    else:
        ok = _pads_with(pad, 0.0)
    if op.kind == "average_pool" and not a["count_include_pad"] and any(a["pads"]):
        ok = False  # the op's own padding is not counted, the pad's would be
    if not ok:
        return None
    nd = len(spatial)
    pads = [a["pads"][i] + p[spatial[i]] for i in range(nd)] + [a["pads"][nd + i] + p[rank + spatial[i]]
                                                                for i in range(nd)]
    attrs = dict(a, pads=pads)
    if op.kind == "average_pool":
        attrs["count_include_pad"] = 1
    return x, attrs


def _fold_pad(op, found, rw):
    x, attrs = found
    new = rw.op(op.kind, [x] + list(op.operands[1:]), attrs, [op.result], op.name)
    return new.result


def _shape_kept(match):
    """Wrap a match so it also checks the rewritten op keeps its result shape."""
    def check(op, rw):
        found = match(op, rw)
        if not found:
            return None
        probe = Op(op.kind, [found[0]] + list(op.operands[1:]), [Value("probe", op.result.type)], found[1])
        shapes = infer_shapes(probe)
        return found if shapes is None or tuple(shapes[0]) == tuple(op.result.type.shape) else None
    return check


PATTERNS = [
    Pattern("requantize_noop", ("quantize",), _match_requantize_noop, lambda q, src, rw: src),
    Pattern("hoist_quantize", ("quantize",), _match_hoist_quantize, _hoist_quantize),
    Pattern("absorb_quantize", ("quantize",), _match_absorb_quantize, _absorb_quantize),
    Pattern("push_dequantize", MOVEMENT, _match_push_dequantize, _push_dequantize),
    Pattern("drop_dequantize", (ANY,), _match_drop_dequantize, _drop_dequantize),
    Pattern("matmul_to_fc", ("matmul",), _match_matmul, _matmul_to_fc),
    Pattern("gemm_to_fc", ("gemm",), _match_gemm, _gemm_to_fc),
    Pattern("bias_add", ("add",), _match_bias_add, _fuse_bias),
    Pattern("activation", ("relu", "clip", "leaky_relu"), _match_activation, _fuse_activation),
    Pattern("quantize_before_clamp", ("relu", "clip"), _match_quantize_before_clamp, _quantize_before_clamp),
    Pattern("pad_into_op", ("conv", "average_pool", "max_pool"), _shape_kept(_match_pad), _fold_pad),
    FOLD,
    *SIMPLIFY,
]


@register("fuse")
def run(graph, ctx):
    apply_patterns(graph, PATTERNS, ctx, record="fuse")
    return graph
