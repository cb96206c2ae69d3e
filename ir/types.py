"""Tensor types: static shape, element type, optional quantization and layout.

A type is immutable plain data. Quantization follows ONNX/TFLite affine quantization:
real = scale * (stored - zero_point), per tensor or per slice along one axis.

`i4` is a 4-bit signed integer, [-8, 7]: weights packed two a byte (ONNX's INT4 order, element 0 in the
low nibble), which is how they take flash and the textual IR. In memory the IR holds one value per int8
(a constant's `data` is an int8 array), so numpy computes on them as on any integer.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

# short name (textual IR) <-> numpy dtype
DTYPES = {
    "f32": np.dtype("float32"),
    "i8": np.dtype("int8"),
    "i4": np.dtype("int8"),  # held unpacked, one value an int8 (see the module docstring)
    "u8": np.dtype("uint8"),
    "i16": np.dtype("int16"),
    "i32": np.dtype("int32"),
    "i64": np.dtype("int64"),
    "i1": np.dtype("bool"),
}
PACKED = {"i4": 4}  # element types narrower than a byte: bits per element
DTYPE_NAMES = {v: k for k, v in DTYPES.items() if k not in PACKED}  # an int8 array is i8


def dtype_name(dt) -> str:
    """Short textual name of a numpy dtype ('f32', 'i8', ...)."""
    return DTYPE_NAMES[np.dtype(dt)]


def int_range(dtype: str) -> tuple[int, int]:
    """The least and greatest value of an integer element type (i4: -8, 7)."""
    if dtype == "i4":
        return -8, 7
    info = np.iinfo(DTYPES[dtype])
    return int(info.min), int(info.max)


def pack_int4(values) -> np.ndarray:
    """4-bit values (any shape, each in [-8, 7]) packed two a byte, element 0 in the low nibble (ONNX's
    order); an odd count leaves the last high nibble 0."""
    flat = np.asarray(values, np.int64).reshape(-1) & 0xF
    if flat.size % 2:
        flat = np.append(flat, 0)
    return (flat[0::2] | flat[1::2] << 4).astype(np.uint8)


def unpack_int4(packed, count: int) -> np.ndarray:
    """The first `count` 4-bit values of `packed` (pack_int4's layout) as int8."""
    b = np.asarray(packed, np.uint8).reshape(-1).astype(np.int16)
    nibbles = np.stack([b & 0xF, b >> 4], axis=1).reshape(-1)[:count]
    return (nibbles - ((nibbles & 8) << 1)).astype(np.int8)


def data_bytes(t: "TensorType", data: np.ndarray) -> bytes:
    """A constant's data as it is stored: little-endian elements, i4 packed (pack_int4)."""
    if t.dtype == "i4":
        return pack_int4(data).tobytes()
    return np.ascontiguousarray(data, dtype=t.np_dtype.newbyteorder("<")).tobytes()


def data_from_bytes(t: "TensorType", raw: bytes) -> np.ndarray:
    """The inverse of data_bytes: the array of type t stored in `raw` (t.nbytes long)."""
    if t.dtype == "i4":
        return unpack_int4(np.frombuffer(raw, np.uint8), t.size).reshape(t.shape)
    return np.frombuffer(raw, t.np_dtype.newbyteorder("<")).astype(t.np_dtype).reshape(t.shape)


@dataclass(frozen=True)
class Quant:
    """Affine quantization parameters. `axis` is None for per-tensor quantization."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: Optional[int] = None

    def __post_init__(self):
        if len(self.scale) != len(self.zero_point):
            raise ValueError("scale and zero_point differ in length")
        if self.axis is None and len(self.scale) != 1:
            raise ValueError("per-tensor quantization takes one scale")

    @property
    def per_axis(self) -> bool:
        return self.axis is not None

    def broadcast(self, rank: int):
        """scale and zero_point as float64/int64 arrays broadcastable against a tensor of `rank`."""
        s = np.asarray(self.scale, np.float64)
        z = np.asarray(self.zero_point, np.int64)
        if self.axis is None:
            return s.reshape(()), z.reshape(())
        shape = [1] * rank
        shape[self.axis] = len(self.scale)
        return s.reshape(shape), z.reshape(shape)


@dataclass(frozen=True)
class TensorType:
    shape: tuple[int, ...]
    dtype: str  # a key of DTYPES
    quant: Optional[Quant] = None
    layout: Optional[str] = None  # e.g. "nchw", "nhwc"; None when it does not matter

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}")
        if any((not isinstance(d, int)) or d < 0 for d in self.shape):
            raise ValueError(f"shape must be static non-negative ints, got {self.shape}")

    @property
    def np_dtype(self) -> np.dtype:
        return DTYPES[self.dtype]

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        """Bytes the tensor's data takes stored (i4: two values a byte)."""
        if self.dtype in PACKED:
            return -(-self.size * PACKED[self.dtype] // 8)
        return self.size * self.np_dtype.itemsize

    @property
    def is_float(self) -> bool:
        return self.dtype == "f32"

    @property
    def is_quantized(self) -> bool:
        return self.quant is not None

    def with_(self, **changes) -> "TensorType":
        return replace(self, **changes)


def is_channels_last(layout: Optional[str]) -> bool:
    """An activation layout like 'nhwc' or 'nwc': channels stored last."""
    return bool(layout) and len(layout) >= 3 and layout[0] == "n" and layout[-1] == "c"
