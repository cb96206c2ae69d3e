"""Float32 pooling: average_pool and max_pool (spatial rank 1-3, NCHW or NHWC, ceil_mode,
count_include_pad, dilations, max_pool's optional int64 indices), global_average_pool and
global_max_pool. max_pool also runs on plain integer tensors (it only compares values).

On NHWC data the innermost loop runs over channels (contiguous in x and y, vectorized); on NCHW
data over the window, one output at a time. Windows are clipped to x at run time from constant
bounds; ceil_mode only shows in the result shape. max_pool's indices are what ONNX defines: the
flat index into the input as NCHW data (storage_order 1: the spatial axes column-major), whatever
the layout the tensors are stored in.
"""
from __future__ import annotations

import numpy as np

from edgecc.ir.ops import to_channels_first

from . import CTYPES, Kernel, Unsupported, c_float, c_int, kernel, strides
from .conv_geometry import logical_strides, spatial_dims
from .float32 import require_float32
from .register_tile import vector_floats


def channel_runs(c: int) -> list:
    """[begin, end) runs covering c channels: the longest multiple of the vector length first
    (a loop gcc vectorizes), then the rest."""
    main = c // vector_floats() * vector_floats()
    return [(b, e) for b, e in ((0, main), (main, c)) if e > b]


def _require_pool_types(op):
    """Float32 data; max_pool also takes plain (unquantized) integers, as it only compares; its
    second result (indices) is plain int64."""
    x, y = op.operands[0], op.results[0]
    for v in (x, y):
        if v.type.quant is not None:
            raise Unsupported(f"{op.kind}: %{v.name} is quantized (float32 kernel)")
    if x.type.dtype != y.type.dtype or (x.type.dtype != "f32" and (op.kind != "max_pool" or x.type.dtype == "i1")):
        raise Unsupported(f"{op.kind} on {x.type.dtype}")
    for r in op.results[1:]:
        if r.type.quant is not None or r.type.dtype != "i64":
            raise Unsupported(f"{op.kind}: indices %{r.name} must be plain int64")


def lowest(dtype: str) -> str:
    """C literal of the smallest value of a dtype: where a running maximum starts."""
    if dtype == "f32":
        return c_float(float("-inf"))
    return c_int(np.iinfo(np.dtype({"i8": "int8", "u8": "uint8", "i16": "int16", "i32": "int32",
                                    "i64": "int64"}[dtype])).min, dtype)


@kernel("average_pool", "max_pool")
def pool(op):
    _require_pool_types(op)
    x, y = op.operands[0], op.results[0]
    a = op.attrs
    cl = bool(a.get("channels_last"))
    x_cf = to_channels_first(x.type.shape) if cl else tuple(x.type.shape)
    y_cf = to_channels_first(y.type.shape) if cl else tuple(y.type.shape)
    nd = len(x_cf) - 2
    if not 1 <= nd <= 3:
        raise Unsupported(f"{op.kind} with {nd} spatial axes")
    xs, ys = logical_strides(x_cf, cl), logical_strides(y_cf, cl)
    dims = spatial_dims(x_cf, y_cf, a["kernel_shape"], a["strides"], a["pads"], a.get("dilations") or [1] * nd, cl)
    # ONNX indices: NCHW flat, spatial axes row-major (storage_order 0) or column-major (1)
    index = strides(x_cf[2:]) if not a.get("storage_order") else np.cumprod([1, *x_cf[2:-1]])
    for d, ix in zip(dims, index):
        d["index"] = int(ix)
    return Kernel("pool.c.j2", dict(
        kind="max" if op.kind == "max_pool" else "avg", channels_last=cl, n=x_cf[0], c=x_cf[1],
        xs_n=xs[0], xs_c=xs[1], ys_n=ys[0], ys_c=ys[1], dims=dims, runs=channel_runs(x_cf[1]),
        plane=int(np.prod(x_cf[2:])), indices=len(op.results) > 1,
        include_pad=bool(a.get("count_include_pad")), lowest=lowest(x.type.dtype), ctype=CTYPES[x.type.dtype]))


@kernel("global_average_pool", "global_max_pool")
def global_pool(op):
    require_float32(op)
    x = op.operands[0]
    cl = bool(op.attrs.get("channels_last"))
    x_cf = to_channels_first(x.type.shape) if cl else tuple(x.type.shape)
    n, c, plane = x_cf[0], x_cf[1], int(np.prod(x_cf[2:]))
    return Kernel("global_pool.c.j2", dict(
        kind="max" if op.kind == "global_max_pool" else "avg", channels_last=cl, n=n, c=c, plane=plane,
        runs=channel_runs(c), lanes=vector_floats(), plane_main=plane // vector_floats() * vector_floats(),
        inv_plane=c_float(1.0 / plane)))
