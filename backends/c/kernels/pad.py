"""Pad: constant, reflect, edge and wrap modes; negative pads crop (first, then the rest is padded).

Python maps each output coordinate of a padded axis to its source coordinate (numpy's own pad
modes applied to an index range, so the modes mean what numpy and the ONNX reference say) and
bakes the map in as a small per-axis table. The C walks the output once: runs of unpadded axes
merge into one wide axis; a padded outer coordinate picks its source slice or, in constant mode,
fills its whole block; the innermost axis is a left border, one memcpy, a right border.
"""
from __future__ import annotations

import numpy as np

from . import CTYPES, Kernel, Unsupported, int_table, kernel, require_same_quant, stored_literal, strides

MODES = ("constant", "reflect", "edge", "wrap")
OUTSIDE = -1  # source coordinate of a constant-mode pad position


def source_map(length: int, begin: int, end: int, mode: str) -> np.ndarray:
    """Source coordinate of every output coordinate along one axis (OUTSIDE: the pad value)."""
    kept = np.arange(max(-begin, 0), length - max(-end, 0))
    widths = (max(begin, 0), max(end, 0))
    if mode == "constant":
        return np.pad(kept, widths, mode="constant", constant_values=OUTSIDE)
    if kept.size == 0 and widths != (0, 0):
        raise Unsupported(f"pad mode {mode} of an axis with nothing left to repeat")
    return np.pad(kept, widths, mode=mode)


def merged_axes(shape, pads):
    """Axes as dicts (in_len, out_len, begin, end); unpadded neighbours merge into one axis."""
    rank, axes = len(shape), []
    for k, d in enumerate(shape):
        b, e = pads[k], pads[rank + k]
        if b == 0 and e == 0 and axes and axes[-1]["begin"] == axes[-1]["end"] == 0:
            axes[-1]["in_len"] *= d
        else:
            axes.append(dict(in_len=d, begin=b, end=e))
    return axes or [dict(in_len=1, begin=0, end=0)]


@kernel("pad")
def pad(op):
    x, y = op.operands[0], op.result
    mode = op.attrs["mode"]
    if mode not in MODES:
        raise Unsupported(f"pad mode {mode}")
    if x.type.dtype != y.type.dtype:
        raise Unsupported(f"pad from {x.type.dtype} to {y.type.dtype}")
    require_same_quant(op, [x])
    axes = merged_axes(x.type.shape, op.attrs["pads"])
    maps = [source_map(a["in_len"], a["begin"], a["end"], mode) for a in axes]
    in_st, out_st = strides([a["in_len"] for a in axes]), strides([len(m) for m in maps])

    consts, levels = [], []
    dst, src = "y0", "x0"
    for k, (a, m) in enumerate(zip(axes[:-1], maps)):
        padded = bool(a["begin"] or a["end"])
        if padded:
            consts.append((f"src{k}", int_table(m)))
        levels.append(dict(k=k, out_len=len(m), in_stride=in_st[k], out_stride=out_st[k], table=padded,
                           fills=bool((m == OUTSIDE).any()), dst=f"dst{k}", src=f"src{k}", parent_dst=dst,
                           parent_src=src))
        dst, src = f"dst{k}", f"src{k}"

    # the innermost axis: [left border][run copied from the source][right border]
    a, m = axes[-1], maps[-1]
    left, right = max(a["begin"], 0), max(a["end"], 0)
    run = len(m) - left - right
    if mode == "constant" and not all((axis_map != OUTSIDE).any() for axis_map in maps):
        # some axis is cropped away entirely: nothing is read, the result is all pad value
        levels, consts, dst, left, run, right = [], [], "y0", y.type.size, 0, 0
    if mode != "constant" and (left or right):
        consts.append(("border", int_table(np.r_[m[:left], m[len(m) - right:]])))
    return Kernel("pad.c.j2", dict(
        levels=levels, ctype=CTYPES[x.type.dtype], value=stored_literal(op.attrs["value"], y.type),
        constant=mode == "constant", left=left, right=right, run=run, run_src=max(-a["begin"], 0),
        dst=dst, src=src), consts=consts)
