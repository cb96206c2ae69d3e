"""Integer conv and fully connected layers for Arm cores with Helium, the M-profile Vector Extension
(Cortex-M55; the target's [isa] helium = true, quantized.family() "mve").

VMLADAVA.S8 multiplies 16 int8 pairs and adds all 16 products to a scalar accumulator: 16 MACs an
instruction, against SMLAD's 2 on the scalar DSP cores (qdsp.py). The layers are arranged so that the
operands are plain int8 vectors, no widening:
  - a pixel's receptive field (KH x KW x C) is copied into an int8 scratch row before any of the block's
    outputs is written (im2col; padding holds the zero point, whose share zx * sum w comes off the bias at
    compile time; a row's tail past K is zero): so the layer may write its result over its input, as the
    DSP kernel does (inplace.py, pixel streaming). A single pixel that is a whole input row (a fully
    connected layer) is read where it lies, its last K % 16 inputs by a tail-predicated load;
  - the weights are laid out at compile time in the order the loads read them: per block of output
    channels and 16 inputs, the block's vectors one after the other (K padded with zeros to a multiple
    of 16: a tail vector's extra lanes meet zero weights), so every load is a small offset from one
    pointer walking forward;
  - blocks of 2 pixels x 4 output channels: per 16 inputs 2 input loads, 4 weight loads and 8 VMLADAVA;
    over long receptive fields summed 2 channels at a time (gcc 12 spills one of 8 accumulators in a long
    loop; VMLADAVA takes only even-numbered registers). One pixel (a fully connected layer) takes its 4
    channels in one loop. Each pixel's 4 accumulators become one int32x4 vector, which gets
    the bias added and onnxruntime's requantization lane by lane (VCVT, VMUL.F32, VCVTN: the same
    integers as the scalar kernels' float and fixed-point forms), and is stored as 4 consecutive bytes
    (VSTRB.32; the output is channels last).
Depthwise layers: depthwise_mve below. Measured on the emulated M55 (QEMU mps3-an547), MLPerf Tiny int8:
0.27 to 0.43 instructions per MAC (the DSP kernels 1.69 to 1.79), the same integers as onnxruntime.
Layers these do not cover (a float or raw int32 result, a float bias, uint8, dilated or wide depthwise
windows) keep the DSP kernels (qdsp.py). The same C builds anywhere (codegen_templates/c/q_mve.c.j2 has a
plain C stand-in for each helper): the tests run it on the host under the sanitizers, and in QEMU.
"""
from __future__ import annotations

import numpy as np

from . import Kernel
from .requant import check_int32

PRELUDE = ("q_mve.c.j2",)
LANES = 16  # int8 lanes of a vector
CHANNELS = 4  # output channels per block: one int32x4 to requantize and store


def applies(out: dict, fbias=None) -> bool:
    """The kernels here requantize to int8 with the clamp after rounding (requant.rounds_in_int32)."""
    return fbias is None and out.get("out_kind") == "q" and out.get("out_ctype") == "int8_t" \
        and bool(out.get("int_clamp"))


def _unroll(vectors: int, pixels: int) -> int:
    """Vectors per iteration of the loop over a receptive field: the largest divisor of their number up to 4
    (2 for one pixel) that leaves the loop at least two iterations (a loop gcc unrolls away entirely has its
    loads hoisted out of the channel loop and spilled to the stack; one pixel's 4 x 5 loads of 4 vectors
    were too: 248 bytes of stack in ad_int8's layers, against 96 with 2), but for 1."""
    if vectors <= 1:
        return 1
    return next(u for u in ((4, 3, 2, 1) if pixels > 1 else (2, 1)) if vectors % u == 0 and vectors // u >= 2)


def _padded_to(a, multiple: int, fill=0):
    a = np.asarray(a).reshape(-1)
    extra = -a.size % multiple
    return np.concatenate([a, np.full(extra, fill, a.dtype)]) if extra else a


def conv_mve(g: dict, wt, bias, out: dict, consts: list, zx: int, replaced=(1,)) -> Kernel:
    """Channels-last int8 conv of one group (and fully connected layers as 1x1 convs). g: geometry (see
    qconv._geometry); wt: int64 weights [M, KH, KW, C]; bias: int64 [M] in accumulator units."""
    m = g["M"]
    k = int(np.prod(wt.shape[1:]))
    npix = g["OH"] * g["OW"]
    last_h = (g["OH"] - 1) * g["SH"] - g["PT"] + (g["KH"] - 1) * g["DH"]
    last_w = (g["OW"] - 1) * g["SW"] - g["PL"] + (g["KW"] - 1) * g["DW"]
    pad_h, pad_w = g["PT"] > 0 or last_h >= g["IH"], g["PL"] > 0 or last_w >= g["IW"]
    # one pixel whose window is a whole input row (a fully connected layer): read where it lies; any other
    # layer copies its pixels' windows first, so that it may write its result over its input (inplace.py)
    one_row = g["KH"] == g["KW"] == 1 and not pad_h and not pad_w
    direct = npix == 1 and one_row
    vectors, tail = k // LANES, k % LANES
    # a receptive field of one vector, one contiguous run: each pixel's is loaded into a register before any
    # output of its block is written (no copy; in place as safe as the copies, inplace.py)
    in_registers = one_row and not direct and vectors + (tail > 0) == 1
    pixels = 2 if npix > 1 else 1
    kv = (vectors + (tail > 0)) * LANES  # a scratch row: K entries and a zeroed tail (read whole, times 0)
    v = dict(g, K=k, KV=kv, VECTORS=vectors, TAIL=tail, U=_unroll(vectors, pixels), PIX=pixels, NPIX=npix,
             ragged=npix % pixels != 0, direct=direct, in_registers=in_registers, pad_h=pad_h, pad_w=pad_w, ZX=zx,
             row_run=g["DW"] == 1, blocks=_blocks(m, _summed_together(pixels, vectors)), ZP=out["zp"],
             LO=out["ilo"], HI=out["ihi"], scale=out["scale"])
    w8 = _vector_order(np.asarray(wt, np.int64).reshape(m, k), v["blocks"])
    folded = np.asarray(bias, np.int64) - zx * np.asarray(wt, np.int64).reshape(m, k).sum(axis=1)
    consts = [c for c in consts if c[0] != "scale"] + [
        ("w", w8), ("bias", _padded_to(check_int32(folded, "bias with the input zero point folded in"), CHANNELS))]
    if out["scale"] is None:
        consts.append(("scale", _padded_to(np.asarray(out["scales"], np.float32), CHANNELS, np.float32(1))))
    return Kernel("q_conv_mve.c.j2", v, scratch=0 if direct or in_registers else pixels * kv, consts=consts,
                  replaced=replaced, prelude=PRELUDE)


def fc_mve(rows: int, wnk, bias, out: dict, consts: list, zx: int, replaced=(1,)) -> Kernel:
    """A fully connected layer: a 1x1 conv over `rows` pixels of K channels; wnk: int64 [N, K]."""
    n, k = wnk.shape
    g = dict(N=1, C=k, M=n, CG=k, group=1, MG=n, IH=1, IW=rows, OH=1, OW=rows, KH=1, KW=1, SH=1, SW=1, DH=1, DW=1,
             PT=0, PL=0, PB=0, PR=0)
    return conv_mve(g, wnk.reshape(n, 1, 1, k), bias, out, consts, zx, replaced)


def _vector_order(w, blocks) -> np.ndarray:
    """Weights [M][K] in the order the block loops read them: per sub-block of a block's channels, per 16
    inputs, those channels' 16 weights one after the other (K padded with zeros to a multiple of 16), so
    that every load is at a small offset from one pointer walking forward."""
    m, k = w.shape
    kv = -(-k // LANES) * LANES
    padded = np.zeros((m, kv), np.int64)
    padded[:, :k] = w
    parts = []
    for b in blocks:
        for first in range(b["start"], b["stop"], b["mb"]):
            for j, n in b["subs"]:
                parts.append(padded[first + j:first + j + n].reshape(n, kv // LANES, LANES).transpose(1, 0, 2))
    return np.concatenate([p.reshape(-1) for p in parts]).astype(np.int8)


def _summed_together(pixels: int, vectors: int) -> int:
    """Output channels one loop over the inputs sums at a time: all 4 of a block for one pixel, or for two
    pixels over a short receptive field; 2 over a long one (measured on the emulated M55: 4 x 2 accumulators
    ran 10 % faster up to 64 inputs, 2 x 2 ran 8 % faster from 128, where gcc 12 spills one of 8)."""
    return CHANNELS if pixels == 1 or vectors < 8 else 2


def _blocks(m: int, sub: int) -> list:
    """The loops over output channels: whole blocks of 4, then one of the 1 to 3 left; each block's channels
    are summed `sub` at a time (its sub-blocks: the accumulators one loop over the inputs keeps)."""
    whole = m // CHANNELS * CHANNELS
    blocks = [dict(start=0, stop=whole, mb=CHANNELS)] if whole else []
    if m > whole:
        blocks.append(dict(start=whole, stop=m, mb=m - whole))
    for b in blocks:
        b["subs"] = [(j, min(sub, b["mb"] - j)) for j in range(0, b["mb"], sub)]
    return blocks


def depthwise_mve(g: dict, wt, bias, out: dict, consts: list, zx: int):
    """Channels-last int8 depthwise conv (undilated), or None where the window does not fit the scheme below;
    wt: int64 [C, KH, KW, 1]; bias: int64 [C] in accumulator units.

    One channel at a time: its input is copied into an int8 plane framed by the zero point (a strided copy,
    8 bytes per gather; the bias has zx * sum w taken off), then two neighbouring outputs of a row read
    their windows with one gather of KH rows x (KW + SW) columns (at most 16 bytes) and get two VMLADAVA,
    against the channel's taps laid out at compile time for the left and for the right output (zeros
    elsewhere). Four outputs are requantized as one vector and scattered to their pixels (VSTRB.32)."""
    c, kh, kw, sh, sw = g["C"], g["KH"], g["KW"], g["SH"], g["SW"]
    if g["DH"] != 1 or g["DW"] != 1 or not applies(out) or kh * (kw + sw) > LANES:
        return None
    pairs = -(-g["OW"] // 2)
    ph = (g["OH"] - 1) * sh + kh
    pw = 2 * (pairs - 1) * sw + sw + kw  # the last pair's right window may reach one output past the row
    window = [r * pw + j for r in range(kh) for j in range(kw + sw)]
    if window[-1] > 255 or 7 * c >= 2 ** 16:  # the gathers' offsets: bytes (the windows), uint16 (the copy)
        return None
    taps = np.asarray(wt, np.int64)[:, :, :, 0]
    lanes = np.zeros((c, 2, kh, kw + sw), np.int64)
    lanes[:, 0, :, :kw] = taps  # the left output's window starts at column 0
    lanes[:, 1, :, sw:sw + kw] = taps  # the right one's SW columns on
    lanes = np.concatenate([lanes.reshape(c, 2, -1), np.zeros((c, 2, LANES - len(window)), np.int64)], axis=2)
    folded = np.asarray(bias, np.int64) - zx * taps.reshape(c, -1).sum(axis=1)
    ihc, iwc = min(g["IH"], ph - g["PT"]), min(g["IW"], pw - g["PL"])
    v = dict(g, scale=out["scale"], PH=ph, PW=pw, ZX=zx, ZP=out["zp"], LO=out["ilo"], HI=out["ihi"], IHC=ihc,
             IWC=iwc, window=window + [0] * (LANES - len(window)), fills=ph * pw != ihc * iwc)
    consts = [cst for cst in consts if cst[0] != "scale"] + [
        ("w", lanes.reshape(-1).astype(np.int8)),
        ("bias", check_int32(folded, "bias with the input zero point folded in"))]
    if out["scale"] is None:
        consts.append(("scale", np.asarray(out["scales"], np.float32).reshape(-1)))
    return Kernel("q_dwconv_mve.c.j2", v, scratch=ph * pw, consts=consts, replaced=(1,), prelude=PRELUDE)
