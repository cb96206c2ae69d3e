"""Integer conv, depthwise conv and fully connected layers for the host, shaped for gcc -O2's vectorizer
(loops with known trip counts that are multiples of the vector width, contiguous operands).

Conv and fully connected (q_conv_dot.c.j2): per output pixel the receptive field is gathered once into
scratch as int16 (x - zx; zero where the window lies in the padding), and each output channel is a dot
product of that vector with its row of int16 weights (w - zw), both of one length padded to a multiple
of 16 with zeros: gcc turns it into multiply-adds of int16 pairs (pmaddwd on x86), and the zero points
cost nothing inside it. A receptive field of a few values would leave each dot product mostly its final
horizontal sum, so there the output channels are the vector instead. The int32 accumulators are then
requantized together, a loop that vectorizes too. A fully connected layer is the same with one "pixel"
per row of its input.

Depthwise (q_dwconv_rows.c.j2): a whole output row per loop, over pixels and channels at once.

4-bit weights (int4.py) keep their rows packed, two a byte, and the dot product unpacks each byte into the
pair of int16 products it is part of (the plain loop nest of qconv.py takes their depthwise convs).
"""
from __future__ import annotations

import numpy as np

from . import CTYPES, Kernel, int4
from .requant import check_int32

LANES = 16  # int16 elements per vector the dot products are padded to (AVX2: 16, SSE/NEON: 8)
OUTER_MAX_K = 8  # up to this receptive field, vectorize over output channels (vww: 3x faster at 8, slower at 16)


def _padded_length(k: int) -> int:
    return -(-k // LANES) * LANES


def dot_kernel(g: dict, weights, bias, out: dict, consts: list, x, w, fbias=None, w4=False) -> Kernel:
    """g: conv geometry (N, IH, IW, OH, OW, KH, KW, SH, SW, DH, DW, PT, PL, group, CG, MG) plus element
    strides of x (XN, XC, XH, XW) and y (YN, YC, YH, YW), ZX and `padded`; weights: int64 [M][K] with the
    weight zero points already subtracted, K ordered (kh, kw, c); bias: int64 [M] in accumulator units.
    w4: 4-bit weights, `weights` their int8 view (int4.py), kept packed [M][KPAD / 2] and unpacked in the loop."""
    m, k = weights.shape
    # a short receptive field: each dot product would be mostly its final horizontal sum, so the output
    # channels are the vector instead (acc[m] += x[k] * w[k][m], int32 weights [group][K][MG])
    outer = k <= OUTER_MAX_K and g["MG"] % 8 == 0 and not w4
    if w4:
        kpad = _padded_length(k)
        wtab = int4.packed_rows(int4.padded(weights, kpad))
    elif outer:
        kpad = k
        wk = np.asarray(weights, np.int64).reshape(g["group"], g["MG"], k).transpose(0, 2, 1)
        wtab = np.ascontiguousarray(wk).astype(np.int32)
    else:
        kpad = _padded_length(k)
        wtab = np.zeros((m, kpad), np.int16)
        wtab[:, :k] = weights
    consts = list(consts) + [("w", wtab), ("bias", check_int32(bias, "bias"))]
    if fbias is not None:
        consts.append(("fbias", np.ascontiguousarray(np.broadcast_to(np.asarray(fbias, np.float32).reshape(-1),
                                                                     (m,)))))
    v = dict(g, **out, K=k, KPAD=kpad, x_ctype=CTYPES[x.type.dtype], fbias=fbias is not None, outer=outer, w4=w4,
             # a whole kernel row is one contiguous run of the input (channels last, undilated, one group)
             row_run=g["XC"] == 1 and g["XW"] == g["CG"] and g["DW"] == 1 and g["group"] == 1)
    return Kernel("q_conv_dot.c.j2", v, scratch=kpad * 2, consts=consts, replaced=(1,))


def conv_strides(g: dict, channels_last: bool) -> dict:
    """Element strides of x and y for a conv of geometry g."""
    IH, IW, C, OH, OW, M = (g[n] for n in ("IH", "IW", "C", "OH", "OW", "M"))
    if channels_last:
        return dict(XN=IH * IW * C, XC=1, XH=IW * C, XW=C, YN=OH * OW * M, YC=1, YH=OW * M, YW=M)
    return dict(XN=C * IH * IW, XC=IH * IW, XH=IW, XW=1, YN=M * OH * OW, YC=OH * OW, YH=OW, YW=1)


def rows_geometry(rows: int, k: int, n: int, zx: int) -> dict:
    """A fully connected layer as a 1x1 conv over `rows` pixels of k channels."""
    return dict(N=1, IH=1, IW=rows, OH=1, OW=rows, KH=1, KW=1, SH=1, SW=1, DH=1, DW=1, PT=0, PL=0, group=1,
                C=k, CG=k, M=n, MG=n, XN=rows * k, XC=1, XH=rows * k, XW=k, YN=rows * n, YC=1, YH=rows * n, YW=n,
                ZX=zx, padded=False)


TILED_MAX_BYTES = 65536  # the depthwise weights tiled along an output row stay this small


def depthwise_rows(g: dict, wt, bias, out: dict, consts: list, x, zx: int):
    """A channels-last depthwise conv, a whole output row per loop (q_dwconv_rows.c.j2); wt: int64
    [C, KH, KW, 1] (weight zero points subtracted), bias: int64 [C]. None when it does not fit that scheme."""
    c, kh, kw, ow = g["C"], g["KH"], g["KW"], g["OW"]
    if c % 8 or kh * kw * ow * c * 2 > TILED_MAX_BYTES:
        return None
    taps = np.asarray(wt, np.int64)[:, :, :, 0].transpose(1, 2, 0)  # [KH][KW][C]
    tiled = np.ascontiguousarray(np.broadcast_to(taps[:, :, None, :], (kh, kw, ow, c))).astype(np.int16)
    pwp = ow + ((kw - 1) * g["DW"]) // g["SW"] + 1  # pixels per phase plane
    plane_bytes = -(-g["SW"] * pwp * c * 2 // 16) * 16
    consts = list(consts) + [("w", tiled), ("bias", check_int32(np.tile(np.asarray(bias, np.int64), ow), "bias"))]
    v = dict(g, **out, PWP=pwp, PLANE_BYTES=plane_bytes, ZX=zx, x_ctype=CTYPES[x.type.dtype])
    return Kernel("q_dwconv_rows.c.j2", v, scratch=plane_bytes + ow * c * 4, consts=consts, replaced=(1,))
