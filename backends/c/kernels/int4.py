"""4-bit weights (the IR's i4) in the integer kernels: how they are stored and what the kernels compute.

The weights stay packed in flash, two a byte, and are unpacked in registers as they are read. A nibble is
read as 16 times its value, which costs nothing: of a byte b, (int8_t)(b << 4) is 16 * its low nibble and
(int8_t)(b & 0xF0) 16 * its high one; on the DSP cores, of a word of 8 nibbles, (v << 4) & 0xF0F0F0F0 and
v & 0xF0F0F0F0 are two words of 4 such bytes, which SXTB16 widens as the int8 kernels widen their weights.
So a 4-bit layer is computed as the int8 layer of weights 16 w and weight scales s / 16 (`int8_view`): every
accumulator is exactly 16 times the layer's, the bias is taken 16 times, and the requantization multiplier,
float32(float32(sx * s / 16) / sy), is the layer's divided by 16, exactly (a power of two scales a float32
without rounding), so float(16 acc) * m / 16 is float(acc) * m to the last bit: the same integers as the
layer computed on its own weights, on every target. The int8 machinery (bias folding, accumulator bounds,
the exact integer requantization of fixedpoint.py) then applies unchanged; a kernel only has to store the
nibbles in the order its loads unpack them (`packed_rows`).
"""
from __future__ import annotations

import numpy as np

from edgecc.ir.types import pack_int4

from . import Unsupported

SCALE = 16  # a nibble read as a signed byte's high half: 16 times its value
PRELUDE = ("q4.c.j2",)  # q4_at: the portable kernels' read of one 4-bit weight


def int8_view(weights, scales, zero_points):
    """(16 * weights as int64, scales / 16 as float32) of a 4-bit weight tensor; its zero points must be 0."""
    if np.any(np.asarray(zero_points) != 0):
        raise Unsupported("4-bit weights with a zero point (the kernels take symmetric ones)")
    scaled = (np.asarray(scales, np.float32) / np.float32(SCALE)).astype(np.float32)
    return np.asarray(weights, np.int64) * SCALE, scaled


def packed_rows(view, order=None) -> np.ndarray:
    """The rows of an int8 view ([M][K], values 16 w, K a multiple of len(order)) packed two nibbles a byte, in
    groups of len(order) whose nibble j holds the group's entry order[j] (None: the natural order): uint8
    [M][K / 2]."""
    w = np.asarray(view, np.int64)
    if np.any(w % SCALE):
        raise ValueError("not the int8 view of 4-bit weights")
    codes = w // SCALE
    if order is not None:
        m, k = codes.shape
        codes = codes.reshape(m, k // len(order), len(order))[:, :, list(order)].reshape(m, k)
    return np.stack([pack_int4(row) for row in codes]) if len(codes) else np.zeros((0, 0), np.uint8)


def padded(view, multiple: int) -> np.ndarray:
    """[M][K] rows padded with zero weights to a multiple of `multiple` entries."""
    w = np.asarray(view, np.int64)
    k = -(-w.shape[1] // multiple) * multiple
    out = np.zeros((w.shape[0], k), np.int64)
    out[:, :w.shape[1]] = w
    return out
