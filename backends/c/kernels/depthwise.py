"""Float32 depthwise convolution (one input channel per group), called from conv.py, which owns
the op kind and hands over the window geometry (conv_geometry.spatial_dims).

On NHWC data channels are contiguous in both x and y, so the innermost loop runs over channels:
each tap multiply-adds a vector of inputs into a vector of accumulators, several output pixels at
once in the interior; the weights are reordered at compile time to [tap][channel]. On NCHW data
the innermost loop runs along an output row instead.
"""
from __future__ import annotations

import numpy as np

from . import Kernel
from .conv_geometry import interior, logical_strides
from .float32 import bias_source
from .register_tile import column_tiles, vector_floats


def _bias(b, n: int, consts: list, replaced: list) -> str:
    """bias_source, with a constant bias added to the kernel's tables."""
    where, data = bias_source(b, n)
    if data is not None:
        consts.append(("bias", data))
        replaced.append(2)
    return where


def depthwise_nhwc(x_cf, y_cf, w_cf, b, act, dims) -> Kernel:
    c = x_cf[1]
    last = dims[-1]
    lo, hi = interior(last)
    tiles = column_tiles(c, max(hi - lo, 1))
    consts, replaced = [("weights", w_cf.reshape(c, -1).T.astype(np.float32))], [1]  # [taps, C]
    bias = _bias(b, c, consts, replaced)
    xs, ys = logical_strides(x_cf, True), logical_strides(y_cf, True)
    return Kernel("depthwise.c.j2", dict(n=x_cf[0], c=c, xs_n=xs[0], ys_n=ys[0], outer=dims[:-1], last=last,
                                         lo=lo, hi=hi, tiles=[t.as_vars(hi - lo) for t in tiles], act=act, bias=bias),
                  consts=consts, replaced=tuple(replaced))


def depthwise_nchw(x_cf, y_cf, w_shape, b, act, dims) -> Kernel:
    """NCHW (one input channel per group, any multiplier): the innermost loop runs along an output
    row. Where every tap of a pixel falls inside x (all rows of the window valid, columns in the
    interior range), a pixel is one sum over all taps, vectorized along the row; the border
    pixels sum the taps that fall inside, one at a time. The weights, [M][1][taps], are read where
    they lie (constant or not)."""
    m, mult = y_cf[1], w_shape[0] // x_cf[1]
    last = dims[-1]
    lo, hi = interior(last)
    vec_end = lo + (hi - lo) // vector_floats() * vector_floats()
    for d in dims[:-1]:
        # output rows whose window lies inside x, and the rest: separate loops, not a test in one
        # loop (gcc's branch heuristics would call the inside path cold and not vectorize it)
        r_lo, r_hi = interior(d)
        d["ranges"] = [(begin, end, (begin, end) == (r_lo, r_hi))
                       for begin, end in ((0, r_lo), (r_lo, r_hi), (r_hi, d["out"])) if end > begin]
    # every tap: its index in the weights, per outer axis the input offset k * dilation - pad,
    # and the column offset along the row
    taps = [dict(index=0, rows=[], off=0)]
    for d in dims:
        inner = d is last
        taps = [dict(index=t["index"] * d["k"] + k, rows=t["rows"] + ([] if inner else [k * d["d"] - d["p"]]),
                     off=k * d["d"] - d["p"] if inner else 0) for t in taps for k in range(d["k"])]
    consts, replaced = [], []
    bias = _bias(b, m, consts, replaced)
    return Kernel("depthwise_nchw.c.j2", dict(
        n=x_cf[0], m=m, mult=mult, x_plane=int(np.prod(x_cf[2:])), y_plane=int(np.prod(y_cf[2:])),
        outer=dims[:-1], last=last, lo=lo, hi=hi, vec_end=vec_end, taps=taps,
        ktaps=int(np.prod(w_shape[2:])), act=act, bias=bias), consts=consts, replaced=tuple(replaced))
