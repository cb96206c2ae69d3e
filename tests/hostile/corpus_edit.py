"""Small edits on ONNX models for the hostile corpus: copying a model, picking its layers, renaming
values everywhere, setting attributes. The corpus kinds (corpus_*.py) break models with these."""
from __future__ import annotations

import onnx
from onnx import helper

# Nodes that are scaffolding around the layers (quantizers, constants, shape arithmetic): the
# corpus breaks real layers, whose damage reaches the rest of the graph.
SCAFFOLDING = {"Constant", "QuantizeLinear", "DequantizeLinear", "Shape", "Gather", "Unsqueeze", "Concat"}


def copy(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def layers(model: onnx.ModelProto) -> list[int]:
    """Indices of the nodes that are layers (not scaffolding), in graph order."""
    return [i for i, n in enumerate(model.graph.node) if n.op_type not in SCAFFOLDING]


def pick(model: onnx.ModelProto, where: str) -> onnx.NodeProto:
    """The first, middle or last layer."""
    idx = layers(model)
    return model.graph.node[{"first": idx[0], "middle": idx[len(idx) // 2], "last": idx[-1]}[where]]


def first_of(model: onnx.ModelProto, op_type: str):
    """The first node of this op type, or None."""
    return next((n for n in model.graph.node if n.op_type == op_type), None)


def producer_of(model: onnx.ModelProto, name: str):
    return next((n for n in model.graph.node if name in n.output), None)


def consumer_of(model: onnx.ModelProto, name: str):
    return next((n for n in model.graph.node if name in n.input), None)


def rename_value(model: onnx.ModelProto, old: str, new: str) -> None:
    """Rename a value wherever it appears: node inputs and outputs, graph inputs and outputs,
    initializers and value infos."""
    g = model.graph
    for n in g.node:
        for field in (n.input, n.output):
            for i, name in enumerate(field):
                if name == old:
                    field[i] = new
    for holder in list(g.input) + list(g.output) + list(g.value_info) + list(g.initializer):
        if holder.name == old:
            holder.name = new


def set_attr(node: onnx.NodeProto, name: str, value) -> None:
    """Set (or replace) an attribute of a node."""
    keep = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend(keep + [helper.make_attribute(name, value)])


def initializer(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(t for t in model.graph.initializer if t.name == name)


def weight(model: onnx.ModelProto) -> onnx.TensorProto:
    """The largest initializer with raw data: a layer's weights."""
    return max((t for t in model.graph.initializer if t.raw_data), key=lambda t: len(t.raw_data))


def input_dims(model: onnx.ModelProto):
    """The dims of the first graph input (a repeated TensorShapeProto.Dimension)."""
    return model.graph.input[0].type.tensor_type.shape.dim


class Variant:
    """One broken model of a kind: its name, what to write (a ModelProto, the file's bytes, or a
    function writing model.onnx and its companions into the case's folder), and whether edgecc
    must refuse it (False where the breakage may leave a model that still means something, as a
    flipped byte inside a weight does)."""

    def __init__(self, name: str, payload, must_refuse: bool = True):
        self.name, self.payload, self.must_refuse = name, payload, must_refuse
