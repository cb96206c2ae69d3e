"""Reductions (reduce_mean/max/min/sum/prod/l2/sum_square over any axes) and argmax/argmin.

A reduction walks its input once, in memory order, folding each element into its output slot:
every output starts at the fold's identity, adjacent reduced (or kept) axes merge into one loop,
and the innermost loop either folds a contiguous run of outputs (a kept innermost axis: the loop
vectorizes) or keeps the running value in a local (a reduced innermost axis). mean and l2 finish
with one pass over the outputs. Sums and products are float32 only; max and min only compare
stored values, so they work for every dtype and for quantized tensors that keep their quantization.
"""
from __future__ import annotations

import numpy as np

from . import CTYPES, INT_LIMITS, Kernel, Unsupported, c_float, collapse, kernel, require_same_quant, strides

# fold of the running value `a` with the element `v`, and the identity it starts from
FLOAT_FOLDS = {
    "reduce_sum": ("a + v", "0.0f"), "reduce_mean": ("a + v", "0.0f"), "reduce_prod": ("a * v", "1.0f"),
    "reduce_sum_square": ("a + v * v", "0.0f"), "reduce_l2": ("a + v * v", "0.0f"),
    # a NaN wins, as in numpy (once `a` is NaN no comparison replaces it)
    "reduce_max": ("(v > a || v != v) ? v : a", "(-INFINITY)"),
    "reduce_min": ("(v < a || v != v) ? v : a", "INFINITY"),
}


def _fold(op):
    dtype = op.operands[0].type.dtype
    if dtype == "f32":
        return FLOAT_FOLDS[op.kind]
    if op.kind == "reduce_max":
        return "v > a ? v : a", INT_LIMITS[dtype][0]
    if op.kind == "reduce_min":
        return "v < a ? v : a", INT_LIMITS[dtype][1]
    raise Unsupported(f"{op.kind} on {dtype} (float32 only; quantized graphs reduce through float)")


@kernel(*FLOAT_FOLDS)
def reduce(op):
    x, y = op.operands[0], op.result
    fold, identity = _fold(op)
    if x.type.dtype != y.type.dtype:
        raise Unsupported(f"{op.kind} from {x.type.dtype} to {y.type.dtype}")
    require_same_quant(op, [x])
    if x.type.quant is not None and x.type.quant.per_axis and x.type.quant.axis in op.attrs["axes"]:
        raise Unsupported(f"{op.kind} across the axis of per-axis quantization")
    shape, axes = x.type.shape, set(op.attrs["axes"])
    kept_st = iter(strides([d for k, d in enumerate(shape) if k not in axes]))
    out_st = [0 if k in axes else next(kept_st) for k in range(len(shape))]
    keep = [k for k, d in enumerate(shape) if d != 1]
    dims, (in_st, o_st) = collapse([shape[k] for k in keep], [[strides(shape)[k] for k in keep],
                                                               [out_st[k] for k in keep]])
    n = len(dims) - 1  # the innermost loop's counter
    count = int(np.prod([shape[k] for k in axes], dtype=np.int64))
    finish = {"reduce_mean": f"a / {c_float(count)}", "reduce_l2": "sqrtf(a)"}.get(op.kind)
    return Kernel("reduce.c.j2", dict(
        ctype=CTYPES[x.type.dtype], fold=fold, identity=identity, finish=finish, out_size=y.type.size,
        loops=dims[:-1], inner=dims[-1], inner_kept=o_st[-1] != 0,
        counter=f"i{n}", in_index=_index(in_st), out_index=_index(o_st)))


def _index(st) -> str:
    """Index over the loop counters i0, i1, ... (the last one innermost)."""
    terms = [(f"i{k}" if s == 1 else f"i{k} * {s}") for k, s in enumerate(st) if s]
    return " + ".join(terms) or "0"


@kernel("argmax", "argmin")
def arg_reduce(op):
    x = op.operands[0]
    if op.result.type.dtype != "i64":
        raise Unsupported(f"{op.kind} to {op.result.type.dtype} (ONNX gives int64)")
    axis = op.attrs["axis"]
    q = x.type.quant
    if q is not None and q.per_axis and q.axis == axis:
        raise Unsupported(f"{op.kind} across the axis of per-axis quantization")
    shape = x.type.shape
    better = ">" if op.kind == "argmax" else "<"
    if op.attrs["select_last_index"]:
        better += "="  # a tie moves to the later index
    return Kernel("arg_reduce.c.j2", dict(
        ctype=CTYPES[x.type.dtype], better=better, length=shape[axis],
        outer=int(np.prod(shape[:axis], dtype=np.int64)), inner=int(np.prod(shape[axis + 1:], dtype=np.int64))))
