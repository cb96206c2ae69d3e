"""Compact int8 layers: one copy of a small, run-time parameterized kernel that every such layer calls
with its own shape (a const struct), instead of a kernel specialized to the layer.

The specialized kernels (qdsp.py, and the portable ones of qconv.py/qmatmul.py) fold the layer's shape
into the code: fast, but each costs about a kilobyte of flash on a Cortex-M. For a layer with a few
hundred weights and a few thousand MACs that code is most of the layer's flash while its speed hardly
matters; on a model made of such layers (a digits classifier) the int8 Cortex-M7 build was 0.58x the float
build's flash, 4.3 KB of it kernel code; with the compact kernels it is 0.32x. The choice, per layer:
  - optimize "speed": always the specialized kernel;
  - optimize "size": the compact kernel wherever one applies;
  - optimize "balanced" (the default): the compact kernel when the layer has fewer MACs than the target's
    [costs] compact_max_macs and fewer weight bytes than compact_max_weight_bytes: cheap to run whatever
    the kernel, and small enough that a specialized kernel's code would be a large share of its flash.
    A target without those numbers (the host, the M0+ whose portable kernels are already small) keeps
    the specialized kernels.

What the compact kernels cover: int8 activations and int8 or 4-bit weights (no weight zero point; 4-bit ones
through a kernel of their own, compact/conv4.c.j2, with an int16 bias), an int8 result
requantized per channel or per tensor with a fused relu/relu6/clip as clamp bounds; channels-last convs
of one group and batch 1 (a fully connected layer is a 1x1 conv over its rows; the result may also be the
float accumulator times its scale), int8 max pooling that keeps the quantization, and int8 average pooling
(codegen_templates/c/compact/). The requantization is onnxruntime's float32 formula (requant.py), so the
results are the same integers as the specialized kernels'.
"""
from __future__ import annotations

import contextvars

import numpy as np

from edgecc.backends.base import Backend
from edgecc.ir.analysis import macs, weight_bytes

from . import Kernel, c_float, current_target, int4
from .qdsp import PRELUDE
from .requant import check_int32

_MODE: contextvars.ContextVar = contextvars.ContextVar("edgecc_optimize", default="balanced")


def optimizing(mode: str):
    """Set the optimization mode (one of Backend.OPTIMIZE) of the select() in progress; returns the token
    to reset it with."""
    if mode not in Backend.OPTIMIZE:
        raise ValueError(f"unknown optimization mode '{mode}' (known: {', '.join(Backend.OPTIMIZE)})")
    return _MODE.set(mode)


def reset(token) -> None:
    _MODE.reset(token)


def wanted(op, work=None) -> bool:
    """Should `op` run through the compact kernel (when one applies)? See the module docstring. `work`:
    what stands for MACs in an op that has none (a pool's window taps)."""
    mode = _MODE.get()
    if mode != "balanced":
        return mode == "size"
    t = current_target()
    costs = t.costs if t is not None else {}
    max_macs, max_bytes = costs.get("compact_max_macs"), costs.get("compact_max_weight_bytes")
    if not max_macs or not max_bytes:
        return False
    return (macs(op) if work is None else work) < max_macs and weight_bytes(op) < max_bytes


def _applies(out: dict, x, w, zw) -> bool:
    """int8 x int8 (or 4-bit) with symmetric weights, to a scaled float result or a requantized int8 one whose
    scaled accumulator always fits an int32 (requant.rounds_in_int32: the kernel clamps after rounding)."""
    result = out.get("out_kind") == "float" or (out.get("out_kind") == "q" and out.get("out_ctype") == "int8_t"
                                                and out.get("int_clamp"))
    return result and x.type.dtype == "i8" and w.type.dtype in ("i8", "i4") and not np.any(np.asarray(zw) != 0)


def _fits(shape: dict) -> bool:
    """Every number fits its field (uint16 sizes, uint8 kernel numbers; zero points are int8 values)."""
    return all(0 <= shape[k] < 2**16 for k in ("ih", "iw", "c", "oh", "ow", "m", "kpad") if k in shape) and \
        all(0 <= shape[k] < 2**8 for k in ("kh", "kw", "sh", "sw", "dh", "dw", "pt", "pl"))


def conv(op, g: dict, wt, bias, out: dict, consts: list, zx: int, x, w, zw):
    """The compact kernel for a conv when it is wanted and applies, else None. g: qconv._geometry's
    numbers; wt: int64 weights [M, KH, KW, C] (of 4-bit weights, their int8 view: int4.py); bias: int64 [M]
    in accumulator units, not folded (the kernel subtracts the input zero point from each input, so padding
    contributes nothing)."""
    if g.get("N", 1) != 1 or g.get("group", 1) != 1 or not _applies(out, x, w, zw) or not wanted(op):
        return None
    scales = np.asarray(out["scales"], np.float32).reshape(-1)
    if w.type.dtype == "i4":
        return _conv4(g, wt, bias, out, consts, zx, scales)
    k = int(np.prod(wt.shape[1:]))
    kpad = -(-k // 4) * 4  # the receptive field in whole words of 4 weights
    shape = dict(ih=g["IH"], iw=g["IW"], c=g["C"], oh=g["OH"], ow=g["OW"], m=g["M"], kpad=kpad, kh=g["KH"],
                 kw=g["KW"], sh=g["SH"], sw=g["SW"], dh=g["DH"], dw=g["DW"], pt=g["PT"], pl=g["PL"], zx=zx,
                 zy=out["zp"], lo=out.get("ilo", 0), hi=out.get("ihi", 0), scale_step=1 if scales.size > 1 else 0,
                 to_float=int(out["out_kind"] == "float"))
    if not _fits(shape):
        return None
    w8 = np.zeros((g["M"], kpad), np.int8)
    w8[:, :k] = np.asarray(wt, np.int64).reshape(g["M"], k)
    w8 = w8.reshape(g["M"], kpad // 4, 4)[:, :, [0, 2, 1, 3]].reshape(g["M"], kpad)  # see the template
    consts = [c for c in consts if c[0] != "scale"] + [("w", w8), ("bias", check_int32(bias, "bias")),
                                                       ("scale", scales)]
    return Kernel("q_compact_conv.c.j2", dict(shape=shape), scratch=2 * kpad, consts=consts, replaced=(1,),
                  prelude=PRELUDE + ("compact/conv.c.j2",))


def _conv4(g: dict, wt, bias, out: dict, consts: list, zx: int, scales):
    """The compact kernel of a conv with 4-bit weights (compact/conv4.c.j2), or None when its bias does not fit
    the kernel's int16 (in the layer's own units: the int8 view's over 16)."""
    m = g["M"]
    k = int(np.prod(wt.shape[1:]))
    kpad = -(-k // 8) * 8  # whole words of 8 weights
    bias = np.asarray(bias, np.int64)
    if np.any(bias % int4.SCALE) or np.any(np.abs(bias // int4.SCALE) >= 2**15):
        return None
    shape = dict(ih=g["IH"], iw=g["IW"], c=g["C"], oh=g["OH"], ow=g["OW"], m=m, kpad=kpad, kh=g["KH"],
                 kw=g["KW"], sh=g["SH"], sw=g["SW"], dh=g["DH"], dw=g["DW"], pt=g["PT"], pl=g["PL"], zx=zx,
                 zy=out["zp"], lo=out.get("ilo", 0), hi=out.get("ihi", 0), to_float=int(out["out_kind"] == "float"))
    if not _fits(shape):
        return None
    rows = int4.padded(np.asarray(wt, np.int64).reshape(m, k), 8)
    table = int4.packed_rows(rows, (0, 4, 2, 6, 1, 5, 3, 7))  # see the template
    consts = [c for c in consts if c[0] != "scale"] + [
        ("w", table), ("bias", (bias // int4.SCALE).astype(np.int16)),
        ("scale", np.ascontiguousarray(np.broadcast_to(scales, (m,)), np.float32))]
    return Kernel("q_compact_conv4.c.j2", dict(shape=shape), scratch=2 * kpad, consts=consts, replaced=(1,),
                  prelude=PRELUDE + ("compact/conv4.c.j2",))


def fully_connected(op, rows: int, wnk, bias, out: dict, consts: list, zx: int, x, w, zw, fbias=None):
    """`rows` rows of K inputs times constant weights wnk [N, K], as a 1x1 conv over `rows` pixels."""
    if fbias is not None:  # a float bias added after scaling: the specialized kernels only
        return None
    n, k = wnk.shape
    g = dict(IH=1, IW=rows, C=k, OH=1, OW=rows, M=n, KH=1, KW=1, SH=1, SW=1, DH=1, DW=1, PT=0, PL=0)
    return conv(op, g, np.asarray(wnk).reshape(n, 1, 1, k), bias, out, consts, zx, x, w, zw)


def max_pool(op, g: dict, x, y):
    """The compact kernel for an int8 channels-last max pool that keeps its quantization, when wanted
    (a pool has no weights: by its MACs-like count of window taps); else None."""
    if not (g["CL"] and g["N"] == 1 and x.type.dtype == y.type.dtype == "i8" and x.type.quant == y.type.quant):
        return None
    shape = dict(ih=g["IH"], iw=g["IW"], c=g["C"], oh=g["OH"], ow=g["OW"], kh=g["KH"], kw=g["KW"], sh=g["SH"],
                 sw=g["SW"], dh=g["DH"], dw=g["DW"], pt=g["PT"], pl=g["PL"])
    if not _fits(shape) or not wanted(op, y.type.size * g["KH"] * g["KW"]):
        return None
    return Kernel("q_compact_pool.c.j2", dict(shape=shape), prelude=("compact/max_pool.c.j2",))


def average_pool(op, g: dict, x, y, quant: tuple, include_pad: bool):
    """The compact kernel for an int8 channels-last average pool, when wanted (by its window taps); else
    None. quant: qpool._avg_quant's (x scale, x zero point, y scale, y zero point, y min, y max)."""
    sx, zx, sy, zy, _, _ = quant
    if not (g["CL"] and g["N"] == 1 and x.type.dtype == y.type.dtype == "i8" and g["DH"] == g["DW"] == 1):
        return None
    shape = dict(ih=g["IH"], iw=g["IW"], c=g["C"], oh=g["OH"], ow=g["OW"], kh=g["KH"], kw=g["KW"], sh=g["SH"],
                 sw=g["SW"], dh=1, dw=1, pt=g["PT"], pl=g["PL"])
    if not _fits(shape) or not wanted(op, y.type.size * g["KH"] * g["KW"]):
        return None
    shape.update(include_pad=int(include_pad), zx=zx, sx=c_float(sx), sy=c_float(sy), zy=int(zy))
    return Kernel("q_compact_avg_pool.c.j2", dict(shape=shape), prelude=("compact/average_pool.c.j2",))
