"""ONNX element types to IR dtype names, and ONNX value infos to IR tensor types."""
from __future__ import annotations

from typing import Optional

import onnx

from edgecc.ir.types import TensorType

IR_DTYPE = {
    onnx.TensorProto.FLOAT: "f32",
    onnx.TensorProto.INT8: "i8",
    onnx.TensorProto.UINT8: "u8",
    onnx.TensorProto.INT16: "i16",
    onnx.TensorProto.INT32: "i32",
    onnx.TensorProto.INT64: "i64",
    onnx.TensorProto.BOOL: "i1",
}


# 4-bit integers, which the frontend reads as constants (quantized weights) only: signed codes as they are,
# unsigned ones re-centred (LiftContext.constant)
FOUR_BIT = {onnx.TensorProto.INT4: "i4", onnx.TensorProto.UINT4: "u4"}


def elem_type_name(elem_type: int) -> str:
    return onnx.TensorProto.DataType.Name(elem_type).lower()


def ir_dtype(elem_type: int) -> Optional[str]:
    """The IR dtype of an ONNX element type, None when the IR has no such type."""
    return IR_DTYPE.get(elem_type)


def static_shape(value_info: onnx.ValueInfoProto) -> Optional[tuple[int, ...]]:
    """The shape of a value info when every dimension is a known number, else None."""
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims = []
    for d in t.shape.dim:
        if not d.HasField("dim_value") or d.dim_value < 0:  # symbolic, or -1 for "dynamic"
            return None
        dims.append(int(d.dim_value))
    return tuple(dims)


def shape_text(value_info: onnx.ValueInfoProto) -> str:
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return "unknown rank"
    return "[" + ",".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
                          for d in t.shape.dim) + "]"


def tensor_type(shape, elem_type: int) -> Optional[TensorType]:
    dtype = ir_dtype(elem_type)
    return None if dtype is None else TensorType(tuple(int(d) for d in shape), dtype)
