"""The tensors an ONNX file declares, checked before any is read into memory: known element types,
dimensions that are whole numbers (a graph input's batch may be -1, "dynamic", pinned to 1 like a
symbolic one), sizes within the limits, and initializer data whose length is what the dims and
element type say (checked before numpy reshapes it, and before external data is read).

After shape inference, check_inferred applies the same rules to every computed value, before
constant folding allocates any of them.
"""
from __future__ import annotations

import math

import onnx
from onnx import TensorProto, helper

from .limits import KNOWN_TYPES, PACKED_BITS, Limits, check_size, data_bytes, type_name
from .names import refuse

TYPED_FIELDS = ("float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data")


def check_value_infos(graph: onnx.GraphProto, file: str, limits: Limits) -> None:
    for kind, infos in (("input", graph.input), ("output", graph.output), ("value", graph.value_info)):
        for vi in infos:
            check_value_info(kind, vi, file, limits)


def check_value_info(kind: str, vi: onnx.ValueInfoProto, file: str, limits: Limits) -> None:
    """A graph input's, output's or intermediate value's declared type and shape."""
    what = f"{kind} '{vi.name}'"
    if not vi.type.HasField("tensor_type"):
        if kind != "value":  # an intermediate sequence or map is for lifting to refuse, if a node makes one
            raise refuse(f"{what} is not a tensor ({vi.type.WhichOneof('value') or 'no type'})", file)
        return
    t = vi.type.tensor_type
    if t.elem_type not in KNOWN_TYPES and (kind != "value" or t.elem_type != TensorProto.UNDEFINED):
        raise refuse(f"{what} has element type {type_name(t.elem_type)}, which is no ONNX element type", file)
    if not t.HasField("shape"):
        return
    known = []
    for axis, d in enumerate(t.shape.dim):
        if not d.HasField("dim_value"):
            continue
        n = d.dim_value
        if n < 0 and not (n == -1 and axis == 0 and kind in ("input", "output")):
            raise refuse(f"{what} has dimension {n} at axis {axis}: dimensions are whole numbers", file)
        known.append(max(n, 1))
    if t.elem_type in KNOWN_TYPES:  # dynamic dimensions count as 1, what the frontend pins a batch to
        check_size(limits, what, known, t.elem_type, file)


def check_initializers(graph: onnx.GraphProto, file: str, limits: Limits) -> None:
    """Every initializer and constant attribute tensor; their declared bytes together within the
    model limit (external data included)."""
    if graph.sparse_initializer:
        raise refuse(f"initializer '{graph.sparse_initializer[0].values.name}' is sparse, which edgecc does not "
                     f"read", file)
    total = sum(check_tensor(t, f"initializer '{t.name}'", file, limits) for t in graph.initializer)
    for node in graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.SPARSE_TENSOR:
                raise refuse(f"attribute '{a.name}' is a sparse tensor, which edgecc does not read", file, node)
            for t in ([a.t] if a.type == onnx.AttributeProto.TENSOR else list(a.tensors)):
                total += check_tensor(t, f"the tensor of attribute '{a.name}'", file, limits, node)
    if total > limits.max_model_bytes:
        raise refuse(f"the weights declare {total:,} bytes, over the limit of {limits.max_model_bytes:,} per model "
                     f"(--max-model-bytes)", file)


def check_tensor(t: onnx.TensorProto, what: str, file: str, limits: Limits, node=None) -> int:
    """One tensor's type, dims, size and data length; the bytes it declares."""
    if t.data_type not in KNOWN_TYPES:
        raise refuse(f"{what} has element type {type_name(t.data_type)}, which is no ONNX element type", file, node)
    if any(d < 0 for d in t.dims):
        raise refuse(f"{what} has dimensions {list(t.dims)}: dimensions are whole numbers", file, node)
    check_size(limits, what, t.dims, t.data_type, file, node)
    count, want = math.prod(t.dims), data_bytes(t.dims, t.data_type)
    if t.data_location == TensorProto.EXTERNAL:
        length = next((e.value for e in t.external_data if e.key == "length"), None)
        if length is not None and length.strip() != str(want):
            raise refuse(f"{what} keeps {length} bytes in external data; its shape {list(t.dims)} of "
                         f"{type_name(t.data_type)} needs {want:,}", file, node)
        return want
    fields = [f for f in TYPED_FIELDS if len(getattr(t, f))] + (["raw_data"] if t.HasField("raw_data") else [])
    if len(fields) > 1:
        raise refuse(f"{what} has its data in several fields ({', '.join(fields)})", file, node)
    if not fields:
        if count:
            raise refuse(f"{what} has no data for its shape {list(t.dims)}", file, node)
        return 0
    if fields[0] == "raw_data":
        if t.data_type == TensorProto.STRING:
            raise refuse(f"{what} holds strings as raw bytes, which ONNX does not allow", file, node)
        if len(t.raw_data) != want:
            raise refuse(f"{what} holds {len(t.raw_data):,} bytes; its shape {list(t.dims)} of "
                         f"{type_name(t.data_type)} needs {want:,}", file, node)
        return want
    expected_field = helper.tensor_dtype_to_field(t.data_type)
    if fields[0] != expected_field:
        raise refuse(f"{what} is {type_name(t.data_type)} but has its data in {fields[0]} "
                     f"(ONNX keeps it in {expected_field})", file, node)
    per_element = 2 if t.data_type in (TensorProto.COMPLEX64, TensorProto.COMPLEX128) else 1
    have = len(getattr(t, fields[0]))
    if t.data_type not in PACKED_BITS and have != count * per_element:
        raise refuse(f"{what} holds {have:,} values in {fields[0]}; its shape {list(t.dims)} needs "
                     f"{count * per_element:,}", file, node)
    return want


def check_inferred(model: onnx.ModelProto, file: str, limits: Limits) -> None:
    """After shape inference: every computed value's dims whole numbers and its size within the limits,
    named after the node computing it (a window larger than its input gives negative dims, a Tile or
    Expand by huge factors a size bomb); this runs before folding allocates any of them."""
    made_by = {name: node for node in model.graph.node for name in node.output if name}
    for vi in list(model.graph.value_info) + list(model.graph.output):
        t = vi.type.tensor_type
        if not vi.type.HasField("tensor_type") or not t.HasField("shape") or t.elem_type not in KNOWN_TYPES:
            continue
        dims = [d.dim_value for d in t.shape.dim if d.HasField("dim_value")]
        node = made_by.get(vi.name)
        if any(n < 0 for n in dims):
            shape = "[" + ",".join(str(d.dim_value) if d.HasField("dim_value") else "?" for d in t.shape.dim) + "]"
            raise refuse(f"result '{vi.name}' would have shape {shape}: the op's attributes do not fit its input",
                         file, node)
        check_size(limits, f"result '{vi.name}'", dims, t.elem_type, file, node)
