"""Float32 transposed convolution (NCHW, spatial rank 1-3, groups, strides, dilations, pads,
output_padding, optional bias).

Each input pixel scatters into the outputs its taps reach: y starts as the bias, then for every
(output channel, input channel, tap) an input row multiply-adds into an output row, the innermost
loop running along the row over the input pixels whose output falls inside y (ranges computed
here; unit stride makes it a vectorized axpy).
"""
from __future__ import annotations

import numpy as np

from . import Kernel, kernel
from .float32 import operand, require_float32


def _axis(i, x_cf, y_cf, w_cf, a):
    nd = len(x_cf) - 2
    return dict(name="dhw"[3 - nd + i], size=x_cf[2 + i], out=y_cf[2 + i], k=w_cf[2 + i], s=a["strides"][i],
                d=a["dilations"][i], p=a["pads"][i], xs=int(np.prod(x_cf[3 + i:])), ys=int(np.prod(y_cf[3 + i:])),
                taps_after=int(np.prod(w_cf[3 + i:])))


@kernel("conv_transpose")
def conv_transpose(op):
    require_float32(op)
    x, w = op.operands[0], op.operands[1]
    b = operand(op, 2)
    x_cf, y_cf, w_cf = x.type.shape, op.result.type.shape, w.type.shape
    group = op.attrs["group"]
    dims = [_axis(i, x_cf, y_cf, w_cf, op.attrs) for i in range(len(x_cf) - 2)]
    last = dims[-1]
    s, size, out = last["s"], last["size"], last["out"]
    taps = []  # along the last axis, tap k sends input pixels [lo, hi) to outputs i * s + off
    for k in range(last["k"]):
        off = k * last["d"] - last["p"]
        lo = max(0, -(off // s))
        taps.append(dict(k=k, off=off, lo=lo, hi=max(lo, min(size, (out - 1 - off) // s + 1))))
    return Kernel("conv_transpose.c.j2", dict(
        n=x_cf[0], c=x_cf[1], m=y_cf[1], group=group, cg=x_cf[1] // group, mg=w_cf[1],
        x_plane=int(np.prod(x_cf[2:])), y_plane=int(np.prod(y_cf[2:])), ktaps=int(np.prod(w_cf[2:])),
        outer=dims[:-1], last=last, taps=taps, has_bias=b is not None))
