"""How large a model the frontend agrees to read, and the byte size an ONNX tensor declares.

The limits keep a hostile or broken model from exhausting the compiling machine: every size is
checked against them from the dims and element type a file declares, before anything is
allocated for it. The defaults are far above any model a microcontroller runs (their weights are
kilobytes to a few megabytes, their flash at most a few megabytes):

- 2 GiB per model file, and for all its weights together (external data included): protobuf
  cannot decode a larger message, so a larger .onnx is not a valid file anyway.
- 1 GiB per tensor: the compile holds a few copies of a tensor at once (folding, lifting, the C
  initializer text), which stays within a development machine's memory.
- 2**31 - 1 elements per tensor: the generated C indexes arrays with `int`, 32 bits on every
  target edgecc knows; a larger tensor would overflow its loops.
- 5,000 nodes: the memory plan's time grows with the square of the buffers live at once (each is
  placed against the others). On a 2-core machine a chain of 10,000 nodes compiles in 17 s, a
  fan-out of 4,000 (2,000 buffers live at once) in 19 s, one of 10,000 in over 3 minutes; the
  largest MLPerf Tiny graph has 68 nodes.

All of them are settable through the Python API (`Limits(...)`) and the command line.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import onnx
from onnx import TensorProto, helper

from .names import refuse

GiB = 1024 ** 3

# element types stored below a byte each (packed), in bits
PACKED_BITS = {TensorProto.INT4: 4, TensorProto.UINT4: 4, TensorProto.FLOAT4E2M1: 4, TensorProto.INT2: 2,
               TensorProto.UINT2: 2, TensorProto.FLOAT6E2M3: 6, TensorProto.FLOAT6E3M2: 6}
KNOWN_TYPES = frozenset(TensorProto.DataType.values()) - {TensorProto.UNDEFINED}


@dataclass(frozen=True)
class Limits:
    max_model_bytes: int = 2 * GiB
    max_tensor_bytes: int = 1 * GiB
    max_tensor_elements: int = 2 ** 31 - 1
    max_nodes: int = 5_000


DEFAULT = Limits()


def element_bits(elem_type: int) -> int:
    """Bits per element of a known ONNX element type (strings count as pointers: never raw data)."""
    if elem_type in PACKED_BITS:
        return PACKED_BITS[elem_type]
    return helper.tensor_dtype_to_np_dtype(elem_type).itemsize * 8


def data_bytes(dims, elem_type: int) -> int:
    """The bytes of raw data a tensor of these dims and element type holds (exact Python integers,
    no overflow however large the dims)."""
    return (math.prod(dims) * element_bits(elem_type) + 7) // 8


def check_size(limits: Limits, what: str, dims, elem_type: int, file: str, node=None) -> None:
    """Refuse a tensor whose dims exceed the element or byte limit. `what` names it ("input 'x'",
    "initializer 'w'", ...); `node` is the ONNX node computing it, when it is a computed result."""
    count = math.prod(dims)
    size = data_bytes(dims, elem_type)
    if count > limits.max_tensor_elements or size > limits.max_tensor_bytes:
        shape = "[" + ",".join(str(d) for d in dims) + "]"
        over = (f"over the limit of {limits.max_tensor_bytes:,} bytes per tensor (--max-tensor-bytes)"
                if size > limits.max_tensor_bytes else
                f"over the limit of {limits.max_tensor_elements:,} elements per tensor (the C indexes with int)")
        shape = ("would have shape " if node is not None else "declares shape ") + shape
        raise refuse(f"{what} {shape}: {count:,} elements, {size:,} bytes, {over}", file, node)


def type_name(elem_type: int) -> str:
    """An element type's ONNX name, or its number when it is no ONNX type."""
    return onnx.TensorProto.DataType.Name(elem_type).lower() if elem_type in KNOWN_TYPES else str(elem_type)
