"""Float32 normalizations: batch_normalization (inference form), instance_normalization,
layer_normalization (with its optional mean and inv_std_dev results) and lrn.

Per-channel affine maps (batch norm with constant statistics) fold into one scale and one shift
table at compile time. Means and variances are two-pass (mean first, then the squared
deviations), each sum kept in one partial sum per vector lane so that gcc vectorizes it.
"""
from __future__ import annotations

import numpy as np

from . import Kernel, Unsupported, c_float, kernel
from .float32 import operand, require_float32
from .pool import channel_runs
from .register_tile import vector_floats


def _lanes(length: int) -> dict:
    """Template variables for a sum over `length` contiguous values, one partial sum per vector lane."""
    lanes = vector_floats()
    return dict(lanes=lanes, main=length // lanes * lanes, length=length)


@kernel("batch_normalization")
def batch_normalization(op):
    require_float32(op)
    x, scale, bias, mean, var = op.operands
    shape = x.type.shape
    n, c = shape[0], shape[1] if len(shape) > 1 else 1
    plane = int(np.prod(shape[2:]))
    eps = float(op.attrs["epsilon"])
    folded = all(v.is_const for v in (scale, bias, mean, var))
    consts = []
    if folded:
        a = np.asarray(scale.data, np.float64) / np.sqrt(np.asarray(var.data, np.float64) + eps)
        b = np.asarray(bias.data, np.float64) - np.asarray(mean.data, np.float64) * a
        consts = [("scale", a.astype(np.float32).reshape(c)), ("shift", b.astype(np.float32).reshape(c))]
    return Kernel("batch_norm.c.j2", dict(n=n, c=c, plane=plane, folded=folded, eps=c_float(eps),
                                          runs=channel_runs(plane if plane > 1 else c)),
                  consts=consts, replaced=(1, 2, 3, 4) if folded else ())


@kernel("instance_normalization")
def instance_normalization(op):
    require_float32(op)
    shape = op.operands[0].type.shape
    plane = int(np.prod(shape[2:]))
    return Kernel("instance_norm.c.j2", dict(n=shape[0], c=shape[1], eps=c_float(op.attrs["epsilon"]),
                                             inv_len=c_float(1.0 / plane), **_lanes(plane)))


def _affine_operand(op, j: int, cols: int, suffix: str, consts: list) -> str:
    """Where layer_normalization reads operand j (scale or bias) as `cols` values: "" when absent,
    "operand" when it has them all, else "table" (broadcast at compile time into consts)."""
    v = operand(op, j)
    if v is None:
        return ""
    if v.type.size == cols:
        return "operand"
    if not v.is_const:
        raise Unsupported(f"layer_normalization: runtime {suffix} broadcast over the normalized axes")
    shape = op.operands[0].type.shape[op.attrs["axis"] % op.operands[0].type.rank:]
    consts.append((suffix, np.broadcast_to(np.asarray(v.data, np.float32), shape).reshape(-1).copy()))
    return "table"


@kernel("layer_normalization")
def layer_normalization(op):
    require_float32(op)
    x = op.operands[0]
    shape = x.type.shape
    axis = op.attrs["axis"] % len(shape)
    rows, cols = int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))
    consts = []
    scale = _affine_operand(op, 1, cols, "scale", consts)
    bias = _affine_operand(op, 2, cols, "bias", consts)
    replaced = tuple(j for j, where in ((1, scale), (2, bias)) if where == "table")
    return Kernel("layer_norm.c.j2", dict(rows=rows, eps=c_float(op.attrs["epsilon"]), inv_len=c_float(1.0 / cols),
                                          scale=scale, bias=bias, n_results=len(op.results), runs=channel_runs(cols),
                                          **_lanes(cols)),
                  consts=consts, replaced=replaced)


@kernel("lrn")
def lrn(op):
    require_float32(op)
    shape = op.operands[0].type.shape
    a = op.attrs
    size = a["size"]
    plane = int(np.prod(shape[2:]))
    return Kernel("lrn.c.j2", dict(n=shape[0], c=shape[1], plane=plane, before=(size - 1) // 2,
                                   after=size - 1 - (size - 1) // 2, alpha_over_size=c_float(a["alpha"] / size),
                                   beta=c_float(a["beta"]), bias=c_float(a["bias"]), runs=channel_runs(plane)))
