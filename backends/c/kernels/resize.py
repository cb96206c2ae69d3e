"""Resize: nearest, linear and cubic interpolation, every coordinate transformation ONNX defines,
any rank, exclude_outside, tf_crop_and_resize with its roi and extrapolation value.

Interpolation is separable, so Python does the geometry once per resized axis: for each output
coordinate, the source positions it reads (clamped to the edge, as ONNX pads by repetition) and
their weights, baked in as small per-axis tables (offsets already multiplied by the axis stride).
The C walks the output; axes that keep their size and coordinates cost nothing but a stride, the
trailing ones form a contiguous row handled by one inner loop (or a memcpy for nearest), and each
output sums the products of its per-axis taps. Nearest only moves values, so it takes every dtype
(and quantized tensors that keep their quantization); linear and cubic are float32.

Scales or roi given at run time (the op's roi / scales operands) make the axes they list build
the same tables at run time instead, in scratch, before the walk (resize_taps.c.j2): the output
shape is static, only the source positions and weights move. A constant operand is folded in
here and costs nothing at run time.
"""
from __future__ import annotations

import math
import re

import numpy as np

from edgecc.ir.ops import resize_geometry

from . import CTYPES, Kernel, Unsupported, int_table, kernel, require_same_quant, stored_literal, strides
from .movement import copy_kernel, move

TAPS = {"nearest": 2, "linear": 2, "cubic": 4}  # source positions considered around each coordinate
EXTRAPOLATED = -1  # offset marking an output coordinate outside the tf_crop_and_resize window


def source_coords(mode: str, out_len: int, in_len: int, scale: float, roi=(0.0, 1.0)):
    """Source coordinate of each output coordinate, and which ones fall outside the input
    (tf_crop_and_resize only). Formulas and their evaluation order follow the ONNX spec."""
    y = np.arange(out_len, dtype=np.float64)
    outside = np.zeros(out_len, dtype=bool)
    if mode == "half_pixel":
        x = (y + 0.5) / scale - 0.5
    elif mode == "half_pixel_symmetric":
        offset = in_len / 2 * (1 - out_len / (scale * in_len))
        x = offset + (y + 0.5) / scale - 0.5
    elif mode == "pytorch_half_pixel":
        x = (y + 0.5) / scale - 0.5 if out_len > 1 else np.zeros(out_len)
    elif mode == "align_corners":
        x = y * (in_len - 1) / (out_len - 1) if out_len > 1 else np.zeros(out_len)
    elif mode == "asymmetric":
        x = y / scale
    elif mode == "tf_crop_and_resize":
        start, end = roi
        if out_len > 1:
            x = y * (end - start) * (in_len - 1) / (out_len - 1) + start * (in_len - 1)
        else:
            x = np.full(out_len, 0.5 * (start + end) * (in_len - 1))
        outside = (x < 0) | (x > in_len - 1)
    else:
        raise Unsupported(f"resize coordinate_transformation_mode {mode}")
    return x, outside


def cubic_weight(d: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel with parameter a, at distances |d| < 2."""
    d = np.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def axis_taps(attrs: dict, x: np.ndarray, in_len: int):
    """(source indices [out, taps], weights [out, taps]) for the source coordinates x."""
    mode, n = attrs["mode"], TAPS[attrs["mode"]]
    lower = np.floor(x)
    exact = x == lower
    # the n source positions around x; on an exact position the window ends at it (ONNX's convention)
    first = np.where(exact, x - n // 2, lower - n // 2 + 1).astype(np.int64)
    idx = first[:, None] + np.arange(n)[None, :]
    ratio = np.where(exact, 1.0, x - lower)  # x's place between idx[:, n//2 - 1] and idx[:, n//2]
    if mode == "nearest":
        upper = {"round_prefer_floor": ratio > 0.5, "round_prefer_ceil": ratio >= 0.5,
                 "floor": exact, "ceil": np.ones_like(exact)}.get(attrs["nearest_mode"])
        if upper is None:
            raise Unsupported(f"resize nearest_mode {attrs['nearest_mode']}")
        w = np.stack([~upper, upper], axis=1).astype(np.float64)
    elif mode == "linear":
        w = np.stack([1 - ratio, ratio], axis=1)
    else:
        w = cubic_weight(x[:, None] - idx, attrs["cubic_coeff_a"])
        if attrs["exclude_outside"]:
            w = np.where((idx < 0) | (idx >= in_len), 0.0, w)
            total = w.sum(axis=1, keepdims=True)
            w = w / np.where(total == 0, 1.0, total)
    return np.clip(idx, 0, in_len - 1), w


def is_identity(scale: float, in_len: int, out_len: int, roi) -> bool:
    return math.isclose(scale, 1.0) and in_len == out_len and math.isclose(roi[0], 0.0) \
        and math.isclose(roi[1], 1.0)


def coordinate_expr(mode: str, n_in: int, n_out: int):
    """C expression (in double) of the source coordinate of output coordinate `y` along an axis, reading
    the run-time `scale` or `start` / `end` of the roi: source_coords' formulas in the same order of
    operations. None for the modes the run-time tables do not take."""
    half_pixel = "(y + 0.5) / scale - 0.5"
    return {
        "half_pixel": half_pixel,
        "half_pixel_symmetric": f"{n_in}.0 / 2.0 * (1.0 - {n_out}.0 / (scale * {n_in}.0)) + (y + 0.5) / scale - 0.5",
        "pytorch_half_pixel": half_pixel if n_out > 1 else "0.0",
        "align_corners": f"y * {n_in - 1}.0 / {n_out - 1}.0" if n_out > 1 else "0.0",
        "asymmetric": "y / scale",
        "tf_crop_and_resize": f"y * (end - start) * {n_in - 1}.0 / {n_out - 1}.0 + start * {n_in - 1}.0"
        if n_out > 1 else f"0.5 * (start + end) * {n_in - 1}.0",
    }.get(mode)


def _reads(expr: str, *names) -> bool:
    return any(re.search(rf"\b{n}\b", expr) for n in names)


def runtime_axes(op) -> dict:
    """{axis: its index j in the run-time operands} for the axes whose tables depend on run-time
    values: listed in `axes`, with a coordinate formula that reads a run-time operand (the scale,
    or the roi of tf_crop_and_resize). An axis of length 1 to 1 reads its only element whatever
    the geometry, so it stays untouched."""
    roi, scales = (list(op.operands[1:]) + [None, None])[:2]
    mode = op.attrs["coordinate_transformation_mode"]
    runtime_scale = scales is not None and not scales.is_const
    runtime_roi = roi is not None and not roi.is_const and mode == "tf_crop_and_resize"
    x, y = op.operands[0].type.shape, op.result.type.shape
    found = {}
    for j, k in enumerate(op.attrs.get("axes", [])):
        expr = coordinate_expr(mode, x[k], y[k]) or ""
        if (runtime_scale and _reads(expr, "scale") or runtime_roi and _reads(expr, "start", "end")) \
                and not x[k] == y[k] == 1:
            found[k] = j
    return found


def geometry(op):
    """Per-axis scales and roi known at compile time: the attributes, with constant operands folded in."""
    roi, scales = (list(op.operands[1:]) + [None, None])[:2]
    return resize_geometry(op.attrs, op.operands[0].type.rank,
                           roi.data if roi is not None and roi.is_const else None,
                           scales.data if scales is not None and scales.is_const else None)


@kernel("resize")
def resize(op):
    x, y = op.operands[0], op.result
    a = op.attrs
    mode = a["mode"]
    if mode not in TAPS:
        raise Unsupported(f"resize mode {mode}")
    if x.type.dtype != y.type.dtype:
        raise Unsupported(f"resize from {x.type.dtype} to {y.type.dtype}")
    if mode != "nearest" and x.type.dtype != "f32":
        raise Unsupported(f"{mode} resize on {x.type.dtype} (float32 only; quantized graphs resize through float)")
    require_same_quant(op, [x])
    shape, out, rank = x.type.shape, y.type.shape, x.type.rank
    if len(a["scales"]) != rank:
        raise Unsupported(f"resize with {len(a['scales'])} scales for rank {rank}")
    crop = a["coordinate_transformation_mode"] == "tf_crop_and_resize"
    scales, roi = geometry(op)
    rois = [(roi[k], roi[rank + k]) if crop else (0.0, 1.0) for k in range(rank)]
    in_st, out_st = strides(shape), strides(out)
    runtime = runtime_axes(op)
    taps = 1 if mode == "nearest" else TAPS[mode]  # table entries per output coordinate

    levels, consts, extrapolates, setups, scratch = [], [], [], [], 0
    for k in range(rank):
        if k not in runtime and is_identity(scales[k], shape[k], out[k], rois[k]):
            levels.append(dict(dim=out[k], in_stride=in_st[k], out_stride=out_st[k], axis=None))
            continue
        if shape[k] == 0:
            raise Unsupported("resize of an empty axis")
        levels.append(dict(dim=out[k], in_stride=in_st[k], out_stride=out_st[k], axis=k, runtime=k in runtime))
        if k in runtime:
            setups.append(runtime_setup(op, k, runtime[k], in_st[k], scratch))
            scratch += setups[-1]["bytes"]
            if crop:
                extrapolates.append(k)
            continue
        xs, outside = source_coords(a["coordinate_transformation_mode"], out[k], shape[k], scales[k], rois[k])
        idx, w = axis_taps(a, xs, shape[k])
        if mode == "nearest":  # one tap: the position whose weight is 1
            idx, w = idx[np.arange(len(idx)), np.argmax(w, axis=1)][:, None], None
        offsets = idx * in_st[k]
        offsets[outside] = EXTRAPOLATED
        consts.append((f"off{k}", int_table(offsets.reshape(-1))))
        if w is not None:
            consts.append((f"w{k}", w.reshape(-1).astype(np.float32)))
        if outside.any():
            extrapolates.append(k)
    folded = tuple(j for j, v in enumerate(op.operands) if j and v is not None and v.is_const)
    tapped = [lv for lv in levels if lv["axis"] is not None]
    if not tapped:  # every axis keeps its coordinates: a copy
        k = copy_kernel(op, [move("x0", "y0", [x.type.size], [1], [1])])
        k.replaced = folded
        return k

    # axes after the last resized one form a contiguous row; untouched neighbours merge
    last = max(k for k, lv in enumerate(levels) if lv["axis"] is not None)
    row = int(np.prod(out[last + 1:], dtype=np.int64))
    merged = []
    for lv in levels[:last + 1]:
        if lv["axis"] is None and lv["dim"] == 1:
            continue
        prev = merged[-1] if merged else None
        if prev is not None and prev["axis"] is None and lv["axis"] is None:
            prev["dim"] *= lv["dim"]
            prev["in_stride"], prev["out_stride"] = lv["in_stride"], lv["out_stride"]
        else:
            merged.append(dict(lv))
    reads, out_terms, src_terms = [], [], []
    for j, lv in enumerate(merged):
        out_terms.append(_term(f"i{j}", lv["out_stride"]))
        if lv["axis"] is None:
            src_terms.append(_term(f"i{j}", lv["in_stride"]))
        else:  # the taps of output coordinate i{j} start at i{j} * taps in the axis' tables
            k = lv["axis"]
            # tables baked in are named <fn>_off<k>, those built at run time offsets<k> (resize_taps.c.j2)
            reads.append(dict(off=f"offsets{k}" if lv["runtime"] else f"off{k}",
                              w=f"weights{k}" if lv["runtime"] else f"w{k}",
                              first=_term(f"i{j}", taps), outside=k in extrapolates, runtime=lv["runtime"]))
    return Kernel("resize.c.j2", dict(
        dims=[lv["dim"] for lv in merged], taps=taps, reads=reads, row=row, ctype=CTYPES[x.type.dtype],
        weighted=mode != "nearest", out_index=" + ".join(out_terms), setups=setups,
        src=" + ".join(["x0"] + src_terms), value=stored_literal(a["extrapolation_value"], y.type)),
        consts=consts, scratch=scratch, replaced=folded)


def runtime_setup(op, k: int, j: int, in_stride: int, at: int) -> dict:
    """How resize_taps.c.j2 builds the tables of axis k at run time (the same tables the compile-time
    path bakes in: offsets [out, taps] as int32, weights [out, taps] as float), from element j of the
    operands, at byte `at` of scratch. The coordinate formulas are source_coords' in the same order
    of operations, in double like the compile-time path."""
    a = op.attrs
    mode, ctm = a["mode"], a["coordinate_transformation_mode"]
    n_in, n_out = op.operands[0].type.shape[k], op.result.type.shape[k]
    coordinate = coordinate_expr(ctm, n_in, n_out)
    if coordinate is None:
        raise Unsupported(f"resize coordinate_transformation_mode {ctm} with run-time scales")
    # nearest: whether the upper of the two positions around x is taken (axis_taps' rule)
    upper = {"round_prefer_floor": "ratio > 0.5", "round_prefer_ceil": "ratio >= 0.5", "floor": "exact",
             "ceil": "1"}.get(a["nearest_mode"]) if mode == "nearest" else None
    if mode == "nearest" and upper is None:
        raise Unsupported(f"resize nearest_mode {a['nearest_mode']}")
    taps, window = (1 if mode == "nearest" else TAPS[mode]), TAPS[mode]
    table = n_out * taps * 4  # bytes of one table: int32 offsets or float weights
    return dict(axis=k, n_in=n_in, n_out=n_out, in_stride=in_stride, taps=taps, mode=mode, upper=upper,
                coordinate=coordinate, crop=ctm == "tf_crop_and_resize",
                # the window of taps around x ends at x when x is a whole position (axis_taps)
                back_exact=window // 2, back=window // 2 - 1,
                uses_ratio=mode == "linear" or "ratio" in (upper or ""),
                scale=f"x2[{j}]" if _reads(coordinate, "scale") else None, reads_y=_reads(coordinate, "y"),
                start=f"x1[{j}]", end=f"x1[{j + len(a['axes'])}]", exclude=bool(a["exclude_outside"]),
                a=f"({float(a['cubic_coeff_a'])!r})", off_at=at, w_at=at + table,
                bytes=table * (1 if mode == "nearest" else 2))


def _term(counter: str, stride: int) -> str:
    return counter if stride == 1 else f"{counter} * {stride}"
