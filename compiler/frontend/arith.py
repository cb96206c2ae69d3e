"""Quantize and dequantize spelled out as float arithmetic on IR values.

For what a quantized type cannot say: quantization parameters computed at run time, blocked
quantization, and integers that must be read with parameters other values of them do not share.
`scale` and `zero_point` are values broadcastable against x (float32 scale, float32 zero point).
The `emit(kind, operands, attrs, type) -> Value` callback adds one op wherever the caller builds.
"""
from __future__ import annotations

import numpy as np

from edgecc.ir.types import TensorType


def dequantize_arith(emit, x, scale, zero_point):
    """(float(x) - zero_point) * scale"""
    f32 = TensorType(x.type.shape, "f32")
    as_float = emit("cast", [x], {"to": "f32"}, f32)
    return emit("mul", [emit("sub", [as_float, zero_point], {}, f32), scale], {}, f32)


def quantize_arith(emit, x, scale, zero_point, dtype: str):
    """saturate(round_half_even(x / scale) + zero_point), stored as `dtype`."""
    f32 = TensorType(x.type.shape, "f32")
    info = np.iinfo(TensorType((), dtype).np_dtype)
    scaled = emit("round", [emit("div", [x, scale], {}, f32)], {}, f32)
    shifted = emit("add", [scaled, zero_point], {}, f32)
    clipped = emit("clip", [shifted], {"min": float(info.min), "max": float(info.max)}, f32)
    return emit("cast", [clipped], {"to": dtype}, TensorType(x.type.shape, dtype))
