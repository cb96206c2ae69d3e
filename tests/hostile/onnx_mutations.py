"""Mutations of ONNX models for the frontend fuzzer (test_fuzz.py): damaged bytes, and fields changed
through the protobuf API into what a buggy exporter or a hand edit leaves (a node's op type, inputs,
outputs or attributes; an initializer's dims, element type or data; a graph input's shape or type; the
opset; nodes deleted, duplicated or reordered).

Each mutation takes the serialized model and hypothesis's `draw` and returns the new bytes with a
one-line description of the change, enough to redo it by hand.
"""
from __future__ import annotations

import copy

import onnx
from hypothesis import strategies as st
from onnx import AttributeProto, TensorProto, helper

OP_TYPES = ["Conv", "Relu", "Add", "MatMul", "Reshape", "Softmax", "AveragePool", "MaxPool", "QuantizeLinear",
            "DequantizeLinear", "Gemm", "Transpose", "Concat", "Slice", "Pad", "Resize", "Gather", "LSTM", "Split",
            "Squeeze", "Unsqueeze", "Shape", "Constant", "If", "Loop", "BatchNormalization", "Cast", "Clip",
            "Flatten", "ReduceMean", "Identity", "NoSuchOp", ""]
ATTRIBUTE_NAMES = ["axis", "axes", "pads", "strides", "kernel_shape", "dilations", "group", "perm", "shape",
                   "auto_pad", "to", "alpha", "value", "mode", "split", "keepdims", "ceil_mode", "transB",
                   "starts", "ends", "no_such_attribute"]
INTS = [0, -1, 1, 2, 3, 7, 100000, 2**31, 2**63 - 1, -2**63]
FLOATS = [0.0, -1.0, 0.5, 1e30, float("nan"), float("inf")]
STRINGS = ["", "NOTSET", "SAME_UPPER", "VALID", "nearest", "\u00e9\n\x00"]
ELEMENT_TYPES = [0, TensorProto.FLOAT, TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32, TensorProto.INT64,
                 TensorProto.STRING, TensorProto.BOOL, TensorProto.FLOAT16, TensorProto.DOUBLE,
                 TensorProto.BFLOAT16, TensorProto.FLOAT8E4M3FN, TensorProto.INT4, 99]
DIMS = [0, -1, 1, 2, 3, 2**40]


def _index(draw, seq, label):
    return draw(st.integers(0, len(seq) - 1), label=label)


def attribute(draw, name: str) -> AttributeProto:
    """An attribute called `name` of any kind: int, ints, float, floats, string, tensor, or a bare proto
    whose type says one thing and holds nothing."""
    kind = draw(st.sampled_from(["int", "ints", "float", "floats", "string", "tensor", "empty"]), label="kind")
    if kind == "int":
        return helper.make_attribute(name, draw(st.sampled_from(INTS), label="value"))
    if kind == "ints":
        values = draw(st.lists(st.sampled_from(INTS), max_size=6), label="values")
        return helper.make_attribute(name, values, attr_type=AttributeProto.INTS)
    if kind == "float":
        return helper.make_attribute(name, draw(st.sampled_from(FLOATS), label="value"))
    if kind == "floats":
        values = draw(st.lists(st.sampled_from(FLOATS), max_size=4), label="values")
        return helper.make_attribute(name, values, attr_type=AttributeProto.FLOATS)
    if kind == "string":
        return helper.make_attribute(name, draw(st.sampled_from(STRINGS), label="value"))
    if kind == "tensor":
        return helper.make_attribute(name, helper.make_tensor("t", TensorProto.INT64, [2], [1, 2]))
    a = AttributeProto(name=name)
    a.type = draw(st.sampled_from([AttributeProto.UNDEFINED, AttributeProto.INT, AttributeProto.FLOATS,
                                   AttributeProto.GRAPH, AttributeProto.TENSOR]), label="type")
    return a


def _names(g: onnx.GraphProto) -> list:
    return sorted({o for n in g.node for o in n.output} | {i.name for i in g.input}
                  | {t.name for t in g.initializer}) + ["", "no_such_tensor"]


def edit_node(m: onnx.ModelProto, draw) -> str:
    g = m.graph
    n = g.node[_index(draw, g.node, "node")]
    how = draw(st.sampled_from(["op_type", "drop input", "add input", "change input", "change output",
                                "change attribute", "drop attribute", "add attribute"]), label="how")
    where = f"node {n.name or n.output[0]!r} ({n.op_type})"
    if how == "op_type":
        n.op_type = draw(st.sampled_from(OP_TYPES), label="op_type")
        return f"{where}: op_type -> {n.op_type!r}"
    if how == "add input":
        n.input.append(draw(st.sampled_from(_names(g)), label="name"))
        return f"{where}: input {n.input[-1]!r} appended"
    if how == "drop input" and n.input:
        i = _index(draw, n.input, "input")
        del n.input[i]
        return f"{where}: input {i} deleted"
    if how == "change input" and n.input:
        i = _index(draw, n.input, "input")
        n.input[i] = draw(st.sampled_from(_names(g)), label="name")
        return f"{where}: input {i} -> {n.input[i]!r}"
    if how == "change output" and n.output:
        i = _index(draw, n.output, "output")
        n.output[i] = draw(st.sampled_from(_names(g)), label="name")
        return f"{where}: output {i} -> {n.output[i]!r}"
    if how == "change attribute" and n.attribute:
        a = n.attribute[_index(draw, n.attribute, "attribute")]
        a.CopyFrom(attribute(draw, a.name))
        return f"{where}: attribute {a.name} -> {_shown(a)}"
    if how == "drop attribute" and n.attribute:
        i = _index(draw, n.attribute, "attribute")
        name = n.attribute[i].name
        del n.attribute[i]
        return f"{where}: attribute {name} deleted"
    a = attribute(draw, draw(st.sampled_from(ATTRIBUTE_NAMES), label="attribute name"))
    n.attribute.append(a)
    return f"{where}: attribute {_shown(a)} added"


def _shown(a: AttributeProto) -> str:
    return " ".join(str(a).split())


def edit_initializer(m: onnx.ModelProto, draw) -> str:
    g = m.graph
    if not g.initializer:
        return "no initializer"
    t = g.initializer[_index(draw, g.initializer, "initializer")]
    how = draw(st.sampled_from(["dims", "data_type", "half the data", "no data", "a byte more"]), label="how")
    if how == "dims":
        dims = list(t.dims)
        change = draw(st.sampled_from(["one", "drop", "add", "scalar"]), label="change")
        if change == "one" and dims:
            dims[_index(draw, dims, "axis")] = draw(st.sampled_from(DIMS), label="dimension")
        elif change == "drop" and dims:
            dims.pop()
        elif change == "add":
            dims.append(draw(st.sampled_from([1, 2]), label="dimension"))
        else:
            dims = []
        del t.dims[:]
        t.dims.extend(dims)
        return f"initializer {t.name!r}: dims -> {dims}"
    if how == "data_type":
        t.data_type = draw(st.sampled_from(ELEMENT_TYPES), label="data_type")
        return f"initializer {t.name!r}: data_type -> {t.data_type}"
    raw = t.raw_data or _typed_bytes(t)
    for typed in ("float_data", "int32_data", "int64_data", "double_data", "uint64_data"):
        t.ClearField(typed)
    t.raw_data = {"half the data": raw[:len(raw) // 2], "no data": b"", "a byte more": raw + b"\x01"}[how]
    return f"initializer {t.name!r}: raw_data {how}"


def _typed_bytes(t: onnx.TensorProto) -> bytes:
    """The tensor's data held in a typed field (float_data, ...), as raw bytes; none if it holds none that fits."""
    try:
        return onnx.numpy_helper.to_array(t).tobytes()
    except ValueError:  # an earlier mutation left data and dims apart
        return b""


def edit_graph_input(m: onnx.ModelProto, draw) -> str:
    inputs = [i for i in m.graph.input if i.name not in {t.name for t in m.graph.initializer}]
    v = inputs[_index(draw, inputs, "graph input")]
    tt = v.type.tensor_type
    how = draw(st.sampled_from(["dim", "symbolic", "drop dim", "add dim", "elem_type", "no shape"]), label="how")
    if how == "elem_type":
        tt.elem_type = draw(st.sampled_from(ELEMENT_TYPES), label="elem_type")
        return f"graph input {v.name!r}: elem_type -> {tt.elem_type}"
    if how == "no shape":
        tt.ClearField("shape")
        return f"graph input {v.name!r}: shape cleared"
    dims = tt.shape.dim
    if how == "add dim" or not dims:
        dims.add().dim_value = draw(st.sampled_from([1, 2]), label="dimension")
        return f"graph input {v.name!r}: dimension {dims[-1].dim_value} appended"
    if how == "drop dim":
        del dims[-1]
        return f"graph input {v.name!r}: last dimension dropped"
    i = _index(draw, dims, "axis")
    if how == "symbolic":
        dims[i].dim_param = "N"
        return f"graph input {v.name!r}: dimension {i} -> 'N'"
    dims[i].dim_value = draw(st.sampled_from(DIMS), label="dimension")
    return f"graph input {v.name!r}: dimension {i} -> {dims[i].dim_value}"


def edit_graph(m: onnx.ModelProto, draw) -> str:
    g = m.graph
    how = draw(st.sampled_from(["opset", "delete node", "duplicate node", "swap nodes", "graph output"]), label="how")
    if how == "opset":
        m.opset_import[0].version = draw(st.sampled_from([1, 9, 10, 11, 13, 17, 21, 28, 29, 10**6]), label="opset")
        return f"opset -> {m.opset_import[0].version}"
    if how == "graph output":
        v = g.output[_index(draw, g.output, "graph output")]
        old, v.name = v.name, draw(st.sampled_from(_names(g)), label="name")
        return f"graph output {old!r} -> {v.name!r}"
    i = _index(draw, g.node, "node")
    label = f"node {i} ({g.node[i].op_type})"
    if how == "delete node":
        del g.node[i]
        return f"{label} deleted"
    if how == "duplicate node":
        g.node.append(copy.deepcopy(g.node[i]))
        return f"{label} duplicated at the end"
    j = _index(draw, g.node, "other node")
    a, b = copy.deepcopy(g.node[i]), copy.deepcopy(g.node[j])
    g.node[i].CopyFrom(b)
    g.node[j].CopyFrom(a)
    return f"{label} swapped with node {j} ({b.op_type})"


FIELD_MUTATIONS = [edit_node, edit_node, edit_initializer, edit_graph_input, edit_graph]


def truncate(data: bytes, draw) -> tuple[bytes, str]:
    at = draw(st.integers(0, len(data) - 1), label="length")
    return data[:at], f"truncated to {at} bytes"


def flip_bits(data: bytes, draw) -> tuple[bytes, str]:
    out = bytearray(data)
    flips = draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 7)), min_size=1, max_size=8),
                 label="flips")
    for at, bit in flips:
        out[at] ^= 1 << bit
    return bytes(out), "bits flipped (offset, bit): " + ", ".join(f"({a}, {b})" for a, b in flips)


def edit_fields(data: bytes, draw) -> tuple[bytes, str]:
    m = onnx.load_model_from_string(data)
    steps = draw(st.integers(1, 2), label="edits")
    done = [draw(st.sampled_from(FIELD_MUTATIONS), label="field mutation")(m, draw) for _ in range(steps)]
    return m.SerializeToString(), "; ".join(done)


MUTATIONS = [truncate, flip_bits, edit_fields, edit_fields]
