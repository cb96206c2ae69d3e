"""Integer softmax of an 8-bit quantized tensor along one axis (onnxruntime's QLinearSoftmax).

exp is a 256-entry float table built here, indexed by (row max - x): table[d] = exp((shift - d) *
x_scale), where `shift` lifts the values so that the row sums stay below FLT_MAX without losing range.
Per row: the maximum, the float32 sum of table entries (in order), then
y = rint(table[d] * floor(1 / y_scale) / sum) + y_zero_point, saturated.
"""
from __future__ import annotations

import math

import numpy as np

from . import CTYPES, Kernel, Unsupported, c_float
from .quantized import quantized
from .requant import F32, per_tensor, qrange


def exp_table(x_scale: float, row: int) -> np.ndarray:
    """table[d] for d = max - x in 0..255, as onnxruntime computes it (double math, stored as float32)."""
    headroom = math.log(float(F32(np.finfo(F32).max) / F32(row)))
    shift = max(0.0, headroom - 5.0) / float(F32(x_scale))
    d = np.arange(256, dtype=np.float64)
    return np.exp((shift - d) * float(F32(x_scale))).astype(F32)


@quantized("softmax")
def qsoftmax(op):
    x, y = op.operands[0], op.result
    if x.type.quant is None and y.type.quant is None:
        return None
    for v in (x, y):
        if v.type.dtype not in ("i8", "u8") or v.type.quant is None:
            raise Unsupported(f"quantized softmax needs 8-bit quantized tensors, %{v.name} is {v.type.dtype}")
    shape, axis = x.type.shape, op.attrs["axis"] % x.type.rank
    row = shape[axis]
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    outer = x.type.size // (row * inner)
    sx, _ = per_tensor(x, "softmax")
    sy, zy = per_tensor(y, "softmax")
    lo, hi = qrange(y.type.dtype)
    v = dict(OUTER=outer, ROW=row, INNER=inner, in_ctype=CTYPES[x.type.dtype], out_ctype=CTYPES[y.type.dtype],
             YS=c_float(np.floor(F32(1.0) / F32(sy))), ZY=zy, qmin=lo, qmax=hi)
    return Kernel("q_softmax.c.j2", v, consts=[("exp", exp_table(sx, row))])
