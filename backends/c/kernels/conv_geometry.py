"""Geometry of sliding windows (conv, depthwise conv, pooling): where each spatial axis's taps
land in the input, which outputs need bounds checks, and element strides in either layout."""
from __future__ import annotations

import numpy as np

from edgecc.ir.ops import to_channels_last

from . import strides

SPATIAL_NAMES = {1: "w", 2: "hw", 3: "dhw"}


def logical_strides(shape_cf, channels_last: bool) -> list:
    """Element strides of a tensor, listed in logical [N, C, *spatial] order, as it lies in memory."""
    if not channels_last:
        return strides(shape_cf)
    st = strides(to_channels_last(shape_cf))  # [n, *spatial, c]
    return [st[0], st[-1], *st[1:-1]]


def spatial_dims(x_cf, y_cf, kshape, strides_, pads, dilations, channels_last: bool) -> list:
    """One dict per spatial axis: name (d, h, w), input size, output size, kernel size k, stride
    s, dilation d, begin pad p, end pad, element strides xs and ys of x and y, whether a tap can
    fall outside the input (so the C must check it), and the taps of the axes after it (its step
    through a [taps] weight table)."""
    nd = len(kshape)
    xs, ys = logical_strides(x_cf, channels_last), logical_strides(y_cf, channels_last)
    dims = []
    for i in range(nd):
        size, out, k = x_cf[2 + i], y_cf[2 + i], kshape[i]
        s, d, p = strides_[i], dilations[i], pads[i]
        dims.append(dict(name=SPATIAL_NAMES[nd][i], size=size, out=out, k=k, s=s, d=d, p=p, pad_end=pads[nd + i],
                         xs=xs[2 + i], ys=ys[2 + i], check=p > 0 or (out - 1) * s + (k - 1) * d - p >= size,
                         taps_after=int(np.prod(kshape[i + 1:]))))
    return dims


def interior(dim) -> tuple:
    """[lo, hi): the outputs along `dim` whose taps all fall inside the input."""
    s, p, span = dim["s"], dim["p"], (dim["k"] - 1) * dim["d"]
    lo = min(-(-p // s), dim["out"])
    hi = max(min((dim["size"] - 1 - span + p) // s + 1, dim["out"]), lo)
    return lo, hi
