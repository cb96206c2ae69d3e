"""Integer conv, depthwise conv and fully connected layers for Arm cores with the DSP extension
(Cortex-M4, M7, M33, M55; the target's [isa] dsp = true).

SMLAD multiplies two pairs of int16 and adds both products to an accumulator: two MACs an instruction.
The layers are arranged so that nearly every other instruction is one (q_conv_dsp.c.j2,
q_dwconv_dsp.c.j2; measured on the emulated M7: 1.1 to 1.5 instructions per MAC on the MLPerf Tiny
convolutions, TFLite Micro with CMSIS-NN 2.2 to 3.2):
  - conv and fully connected: the receptive fields of 3 output pixels are gathered into a small int16
    scratch (stored values; the padding holds the zero point, whose share zx * sum w comes off the bias),
    each group of 4 in the order x0 x2 x1 x3 that SXTB16 gives when it widens a word of 4 bytes (bytes 0
    and 2, then 1 and 3); the int8 weights stay in flash in their natural order [M][K] (K padded to a
    multiple of 4), so one word load and two SXTB16 give the matching pairs. A block of 3 pixels x 2
    output channels keeps 6 accumulators, 4 widened weight words and one activation word in the 14
    registers the compiler has: per 4 input channels 2 weight loads, 4 SXTB16, 6 activation loads and 12
    SMLADs for 24 MACs. A single row (a fully connected layer) is widened as it is read instead, and 4
    output channels share it;
  - depthwise: one channel at a time, its input copied into an int16 plane framed by the zero point, its
    taps in registers as int16 pairs, SMLAD on neighbouring inputs read as one word; two neighbouring
    outputs of a 3-tap row share their loads;
  - requantization: the exact integer form of fixedpoint.py (SMMLA, SSAT: 4 instructions an output)
    where every channel has one, else onnxruntime's float32 formula (8).
4-bit weights (int4.py: the int8 layer of weights 16 w) stay packed: a conv's row in words of 8 nibbles,
each giving two int8 words with a shift and two masks, then the same SXTB16 and SMLAD (measured on vww_fp32:
1.68 instructions per MAC against int8's 1.55); a depthwise channel's taps unpacked into their registers.
Their accumulators are multiples of 16, so the integer requantization is searched on acc / 16 (fewer
thresholds: every channel of vww's layers finds one), and takes the bias in, which drops its table.
The same C builds anywhere: the prelude (codegen_templates/c/q_dsp.c.j2) has a plain C stand-in for each
intrinsic that computes the same integers (the tests run both).
"""
from __future__ import annotations

import numpy as np

from . import Kernel, fixedpoint, int4
from .requant import check_int32, qrange

PRELUDE = ("q_dsp.c.j2",)
PIXELS = 3  # output pixels per block of the conv (see above: what fits in the registers)
CHANNELS_ONE = 4  # output channels per block of a single row (6 measured slower: spills)


def _zx_pair(zx: int) -> int:
    """zx in both int16 halves of a word: two receptive-field entries in the padding."""
    half = zx & 0xFFFF
    return half | half << 16


def _unroll(quads: int, most: int = 8) -> int:
    """Groups per loop iteration, a divisor of their number up to `most` that leaves the loop at least two
    iterations (measured: a loop gcc unrolls away entirely gets its registers spilled), but for 1 or 2."""
    if quads <= 2:
        return quads
    return next(u for u in range(min(quads - 1, most), 0, -1) if quads % u == 0)


def _shape(npix: int) -> tuple:
    """(pixels, channels) per block: 3 x 2 when there are pixels to share the widened weights, else
    one column whose two words stay in registers while 4 channels' weights stream by."""
    if npix == 1:
        return 1, CHANNELS_ONE
    return (2, 2) if npix == 2 else (PIXELS, 2)


def _channel_blocks(m: int, per_block: int) -> list:
    """Loops over the output channels: blocks of `per_block`, then a tail of 2 and 1 as needed."""
    blocks, start = [], 0
    for size in (per_block, 2, 1):
        stop = start + (m - start) // size * size
        if size <= per_block and stop > start:
            blocks.append(dict(start=start, stop=stop, mb=size))
            start = stop
    return blocks


def conv_dsp(g: dict, wt, bias, out: dict, consts: list, zx: int, fbias=None, replaced=(1,), w4=False) -> Kernel:
    """Channels-last int8 conv, one group. g: geometry (see qconv._geometry); wt: int64 weights
    [M, KH, KW, C]; bias: int64 [M] in accumulator units; fbias: a float bias added after scaling. w4: the
    weights are 4-bit, wt their int8 view (int4.py), packed in words of 8 the template unpacks."""
    m = g["M"]
    k = wt[0].size
    group = 8 if w4 else 4  # weights a word holds
    kpad = -(-k // group) * group
    if w4:
        w8 = int4.packed_rows(int4.padded(wt.reshape(m, k), 8), (0, 4, 1, 5, 2, 6, 3, 7))
    else:
        w8 = np.zeros((m, kpad), np.int8)
        w8[:, :k] = wt.reshape(m, k)
    npix = g["OH"] * g["OW"]
    pb, mb = _shape(npix)
    last_h = (g["OH"] - 1) * g["SH"] - g["PT"] + (g["KH"] - 1) * g["DH"]
    last_w = (g["OW"] - 1) * g["SW"] - g["PL"] + (g["KW"] - 1) * g["DW"]
    row_run = g["DW"] == 1  # one group: a kernel row is KW * C contiguous input bytes
    # 4-bit: a loop iteration unpacks words of 8, each two groups of 4: half as many words keep the code size
    v = dict(g, **out, K=k, KPAD=kpad, QUADS=kpad // 4, U=_unroll(kpad // group, 4 if w4 else 8), PIX=pb,
             NPIX=npix, blocks=_channel_blocks(m, mb), ragged=npix % pb != 0, ZX=zx, ZX_PAIR=_zx_pair(zx),
             pad_h=g["PT"] > 0 or last_h >= g["IH"], pad_w=g["PL"] > 0 or last_w >= g["IW"],
             fbias=fbias is not None, saturate=_saturate(out), w4=w4)
    # one pixel that is a whole input row of whole words (a fully connected layer): widened as it is read,
    # no scratch
    v["direct"] = pb == 1 and k % group == 0 and g["KH"] == g["KW"] == 1 and g["C"] == k and not v["pad_h"] \
        and not v["pad_w"] and g["SW"] == 1
    v["row_run"] = row_run
    # the zero point written two entries at a time (see the template's pad_run and per-tap paths)
    v["pads_words"] = (v["pad_h"] and (g["KW"] * g["C"]) % 4 == 0) or \
        ((v["pad_w"] or not row_run) and g["C"] % 4 == 0)
    # the columns hold stored values, the padding the zero point: zx * sum w comes off the bias instead
    folded = np.asarray(bias, np.int64) - zx * wt.reshape(m, k).sum(axis=1)
    consts = list(consts) + [("w", w8), ("bias", check_int32(folded, "bias with the input zero point folded in"))]
    fixed, fixed_consts = _fixed(out, bias, wt.reshape(m, k), zx, v["blocks"], folded if w4 else None,
                                 int4.SCALE if w4 else 1)
    v.update(fixed)
    consts = _with_fixed(consts, fixed, fixed_consts)
    if fbias is not None:
        consts.append(("fbias", np.ascontiguousarray(np.broadcast_to(np.asarray(fbias, np.float32).reshape(-1),
                                                                     (m,)))))
    return Kernel("q_conv_dsp.c.j2", v, scratch=0 if v["direct"] else pb * kpad * 2, consts=consts,
                  replaced=replaced, prelude=PRELUDE)


def fc_dsp(rows: int, wnk, bias, out: dict, consts: list, zx: int, fbias=None, replaced=(1,), w4=False) -> Kernel:
    """A fully connected layer: a 1x1 conv over `rows` pixels of K channels; wnk: int64 [N, K]."""
    n, k = wnk.shape
    g = dict(N=1, C=k, M=n, CG=k, group=1, MG=n, IH=1, IW=rows, OH=1, OW=rows, KH=1, KW=1, SH=1, SW=1, DH=1, DW=1,
             PT=0, PL=0, PB=0, PR=0)
    return conv_dsp(g, wnk.reshape(n, 1, 1, k), bias, out, consts, zx, fbias, replaced, w4)


def depthwise_dsp(g: dict, wt, bias, out: dict, consts: list, zx: int, w4=False) -> Kernel:
    """Channels-last int8 depthwise conv (undilated); wt: int64 [C, KH, KW, 1]; bias: int64 [C]. w4: 4-bit
    weights, wt their int8 view (int4.py): each channel's taps packed from a byte of their own."""
    c, kh, kw = g["C"], g["KH"], g["KW"]
    bias = np.asarray(bias, np.int64)
    folded = bias - zx * wt.reshape(c, -1).sum(axis=1)  # the plane around the input holds the zero point
    ph = (g["OH"] - 1) * g["SH"] + kh
    pw = (g["OW"] - 1) * g["SW"] + kw + 1  # + 1: the word read for an odd last tap reaches one past the window
    pairs = kw == 3 and g["SW"] in (1, 2)  # two neighbouring outputs share their loads (see the template)
    v = dict(g, **out, PH=ph, PW=pw, pairs=pairs, ZX=zx,
             IHC=min(g["IH"], ph - g["PT"]), IWC=min(g["IW"], pw - g["PL"]), saturate=_saturate(out), w4=w4)
    taps = np.ascontiguousarray(wt[:, :, :, 0]).astype(np.int8)  # [C][KH][KW]: a channel's taps together
    if w4:
        taps = int4.packed_rows(wt.reshape(c, kh * kw))
    consts = list(consts) + [("w", taps), ("bias", check_int32(folded, "bias with the input zero point folded in"))]
    fixed, fixed_consts = _fixed(out, bias, wt.reshape(c, -1), zx, fold=folded if w4 else None,
                                 unit=int4.SCALE if w4 else 1)
    if fixed["fixed"] and not fixed["fixed"]["every"]:
        # the float formula for the whole layer: a second requantization for a few channels saved 0.6 % of
        # vww_int8's instructions for 4 % more flash (the tables of both)
        fixed, fixed_consts = {"fixed": None}, []
    v.update(fixed)
    consts = _with_fixed(consts, fixed, fixed_consts)
    return Kernel("q_dwconv_dsp.c.j2", v, scratch=ph * pw * 2, consts=consts, replaced=(1,), prelude=PRELUDE)


def _saturate(out: dict):
    """The one-instruction clamp of the requantized value, when the bounds are the whole int8 range."""
    ok = out.get("out_kind") == "q" and out.get("int_clamp") and (out.get("ilo"), out.get("ihi")) == (-128, 127)
    return "dsp_ssat8" if ok else None


def _fixed(out: dict, bias, weights, zx: int, blocks=None, fold=None, unit: int = 1) -> tuple:
    """Template variables and tables of the integer requantization (fixedpoint.py) of an int8 result:
    per channel M (fixm) and Bh (fixb), the layer's L and R, and with `blocks` (the channel loops) a flag per
    block's first channel, set when every channel of the block has an exact integer form (the others keep
    the float formula). ({"fixed": None}, []) when it does not apply or no channel has one.
    fold: the bias the accumulators start from (the input zero point folded in), for a form that takes it into
    Bh instead, so that they start from 0 and the bias table goes ("folded"); kept when every channel has one
    (4-bit layers, whose flash is what they are for, ask for it).
    unit: the accumulators are all multiples of it (16 for the int8 view of 4-bit weights, int4.py): the form
    is searched on acc / unit, which fewer thresholds constrain, and L takes the division back."""
    if out.get("out_kind") != "q" or out.get("out_ctype") != "int8_t" or not out.get("int_clamp"):
        return {"fixed": None}, []
    w = np.asarray(weights, np.int64).reshape(len(weights), -1)
    bias = np.asarray(bias, np.int64)
    if unit > 1 and (np.any(w % unit) or np.any(bias % unit) or (fold is not None and np.any(np.asarray(fold) % unit))):
        unit = 1
    shift = unit.bit_length() - 1
    w, bias = w // unit, bias // unit
    lo, hi = qrange("i8")
    pos, neg = np.clip(w, 0, None).sum(axis=1), np.clip(w, None, 0).sum(axis=1)
    acc_min = bias + pos * (lo - zx) + neg * (hi - zx)
    acc_max = bias + pos * (hi - zx) + neg * (lo - zx)
    # float32(acc * unit) * (m / unit) is float32(acc) * m exactly: unit is a power of two
    scales = np.broadcast_to(np.asarray(out["scales"], np.float32) * np.float32(unit), (len(w),))
    if fold is not None:
        fold = np.asarray(fold, np.int64) // unit
        found = fixedpoint.layer(scales, out["ilo"], out["ihi"], out["zp"], acc_min - fold, acc_max - fold, fold)
        if found is not None and found["exact"].all() and found["L"] >= shift:
            return {"fixed": dict(L=found["L"] - shift, R=found["R"], every=True, folded=True)}, \
                [("fixm", found["mult"]), ("fixb", found["add"])]
    found = fixedpoint.layer(scales, out["ilo"], out["ihi"], out["zp"], acc_min, acc_max)
    if found is not None and found["L"] < shift:
        return _fixed(out, bias * unit, w * unit, zx, blocks)
    if found is None:
        return {"fixed": None}, []
    exact = found["exact"]
    flags, per_block = exact.copy(), []
    for b in blocks or []:
        for m in range(b["start"], b["stop"], b["mb"]):
            flags[m] = exact[m:m + b["mb"]].all()
            per_block.append(flags[m])
    used = np.array(per_block) if blocks else exact
    if not used.any():
        return {"fixed": None}, []
    consts = [("fixm", found["mult"]), ("fixb", found["add"])]
    every = bool(used.all())
    if not every:
        consts.append(("exact", flags.astype(np.uint8)))
    return {"fixed": dict(L=found["L"] - shift, R=found["R"], every=every, folded=False)}, consts


def _with_fixed(consts: list, fixed: dict, fixed_consts: list) -> list:
    """The layer's tables with the integer requantization's; the float multipliers go when no channel
    needs them, and the bias when the requantization took it in."""
    if fixed["fixed"] and fixed["fixed"]["every"]:
        gone = ("scale", "bias") if fixed["fixed"]["folded"] else ("scale",)
        consts = [c for c in consts if c[0] not in gone]
    return consts + fixed_consts
