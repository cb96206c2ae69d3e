"""Float32 convolution: any spatial rank (1-3), groups (depthwise included), strides, dilations,
pads, optional bias and a fused activation, on NCHW or NHWC (channels_last) data.

Python reorders the weights at compile time into a kernel-private table laid out for the loop
order of the C: [group][column tile][taps][input channel][tile columns], so the innermost loop
multiply-adds one broadcast input value into contiguous output-channel accumulators (see
register_tile.py). Output pixels along the innermost spatial axis are split into border pixels
(taps checked against the input bounds, one at a time) and interior pixels (no checks, several
at a time). A 1x1 convolution without stride or pad is a plain GEMM over the flattened pixels.
Depthwise convolutions have their own kernels (depthwise.py).
"""
from __future__ import annotations

import numpy as np

from edgecc.ir.ops import to_channels_first

from . import Kernel, Unsupported, kernel
from .conv_geometry import interior, logical_strides, spatial_dims
from .depthwise import depthwise_nchw, depthwise_nhwc
from .float32 import activation_expr, bias_source, operand, require_float32
from .register_tile import column_tiles

def _flatten_pixels(dims) -> list:
    """A 1x1 convolution without stride or pad reads pixel i at i times the innermost x stride:
    one spatial axis over all pixels makes it a GEMM with long register-tiled runs."""
    if any(d["k"] != 1 or d["s"] != 1 or d["p"] != 0 or d["check"] for d in dims) or len(dims) == 1:
        return dims
    total = int(np.prod([d["size"] for d in dims]))
    inner = dims[-1]
    return [dict(inner, name="w", size=total, out=total)]


def pack_weights(w_cf: np.ndarray, group: int, tiles) -> np.ndarray:
    """[M, C/g, *k] -> per group, per column tile: [taps][C/g][tile width] (output channels innermost)."""
    m, cg = w_cf.shape[:2]
    mg = m // group
    blocks = []
    for g in range(group):
        wg = np.moveaxis(w_cf[g * mg:(g + 1) * mg].reshape(mg, cg, -1), 0, -1)  # [C/g, taps, Mg]
        wg = np.swapaxes(wg, 0, 1)  # [taps, C/g, Mg]
        for t in tiles:
            for i in range(t.count):
                m0 = t.start + i * t.width
                blocks.append(wg[..., m0:m0 + t.width].reshape(-1))
    return np.concatenate(blocks).astype(np.float32)


def weight_steps(t: dict, cg: int, taps: int, packed: bool, channels_last: bool) -> dict:
    """Element steps through the weights a tile of kind t reads: to the next output column, input
    channel and (flattened) tap. Packed: its own [taps][C/g][width] block; runtime weights are read
    where they lie, OIHW or (channels_last) OHWI."""
    if packed:
        return dict(w_col=1, w_chan=t["width"], w_tap=cg * t["width"])
    if channels_last:
        return dict(w_col=taps * cg, w_chan=1, w_tap=cg)
    return dict(w_col=cg * taps, w_chan=taps, w_tap=1)


@kernel("conv")
def conv(op):
    require_float32(op)
    x, w = op.operands[0], op.operands[1]
    b = operand(op, 2)
    a = op.attrs
    cl = bool(a.get("channels_last"))
    x_cf = to_channels_first(x.type.shape) if cl else tuple(x.type.shape)
    y_cf = to_channels_first(op.result.type.shape) if cl else tuple(op.result.type.shape)
    w_shape = to_channels_first(w.type.shape) if cl else tuple(w.type.shape)  # OHWI -> OIHW
    if not 1 <= len(x_cf) - 2 <= 3:
        raise Unsupported(f"conv with {len(x_cf) - 2} spatial axes")
    group = a["group"]
    m, cg = w_shape[:2]
    mg = m // group
    act = activation_expr(op)
    dims = spatial_dims(x_cf, y_cf, w_shape[2:], a["strides"], a["pads"], a["dilations"], cl)
    w_cf = None  # constant weights as OIHW, to be reordered
    if w.is_const:
        w_cf = np.asarray(w.data, np.float32)
        w_cf = np.moveaxis(w_cf, -1, 1) if cl else w_cf
    if cg == 1 and not cl:
        return depthwise_nchw(x_cf, y_cf, w_shape, b, act, dims)
    if cg == 1 and mg == 1 and w_cf is not None:
        return depthwise_nhwc(x_cf, y_cf, w_cf, b, act, dims)

    dims = _flatten_pixels(dims)
    last = dims[-1]
    lo, hi = interior(last)
    taps = int(np.prod(w_shape[2:]))
    tiles = column_tiles(mg, max(hi - lo, 1), depth=taps * cg)
    tile_vars = [t.as_vars(hi - lo) for t in tiles]
    for t in tile_vars:
        t.update(weight_steps(t, cg, taps, w_cf is not None, cl))
    xs, ys = logical_strides(x_cf, cl), logical_strides(y_cf, cl)
    bias, bias_data = bias_source(b, m)
    consts, replaced = [], []
    if w_cf is not None:
        consts.append(("weights", pack_weights(w_cf, group, tiles)))
        replaced.append(1)
    if bias_data is not None:
        consts.append(("bias", bias_data))
        replaced.append(2)
    # the kw and input-channel loops walk x (and the weights) contiguously: one loop
    flat = xs[1] == 1 and last["d"] * last["xs"] == cg and (w_cf is not None or cl)
    return Kernel("conv.c.j2", dict(
        n=x_cf[0], group=group, cg=cg, mg=mg, xs_n=xs[0], xs_c=xs[1], ys_n=ys[0], ys_m=ys[1],
        outer=dims[:-1], last=last, lo=lo, hi=hi, tiles=tile_vars, ksize=taps * cg, flat=flat,
        packed=w_cf is not None, bias=bias, act=act, layout="NHWC" if cl else "NCHW"),
        consts=consts, replaced=tuple(replaced))
