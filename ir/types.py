"""Tensor types: static shape, element type, optional quantization and layout.

A type is immutable plain data. Quantization follows ONNX/TFLite affine quantization:
real = scale * (stored - zero_point), per tensor or per slice along one axis.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

# short name (textual IR) <-> numpy dtype
DTYPES = {
    "f32": np.dtype("float32"),
    "i8": np.dtype("int8"),
    "u8": np.dtype("uint8"),
    "i16": np.dtype("int16"),
    "i32": np.dtype("int32"),
    "i64": np.dtype("int64"),
    "i1": np.dtype("bool"),
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}


def dtype_name(dt) -> str:
    """Short textual name of a numpy dtype ('f32', 'i8', ...)."""
    return DTYPE_NAMES[np.dtype(dt)]


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
