"""Constant folding on the ONNX graph: every node whose inputs are all known becomes constants.

"Known" means an initializer, the result of an earlier folded node, or (for Shape and Size) a
tensor whose shape is static. Nodes are evaluated one at a time with onnx's reference evaluator
at the model's opset, so folding means exactly what the ONNX specification says. This is what
makes exporter shape scaffolding (Shape, Gather, Concat, Range, ConstantOfShape, Where on shapes,
...) disappear before lifting.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

from .dtypes import static_shape
from .load import DEFAULT_DOMAINS

# DequantizeLinear stays: on a constant it marks a quantized weight, which lifting keeps as
# integers with quantization parameters rather than as floats.
NEVER_FOLD = {"DequantizeLinear", "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
              "Multinomial", "Bernoulli"}


def _shape_of(node, shapes):
    shape = shapes.get(node.input[0])
    if shape is None:
        return None
    if node.op_type == "Size":
        return [np.array(int(np.prod(shape, dtype=np.int64)), np.int64)]
    start = next((a.i for a in node.attribute if a.name == "start"), 0)
    end = next((a.i for a in node.attribute if a.name == "end"), None)
    return [np.array(shape[start:end], np.int64)]


def evaluate(node: onnx.NodeProto, consts: dict, opset: int) -> list | None:
    """Run one node on constant inputs with the reference evaluator; its outputs in order, or None
    when the evaluator cannot (it lacks a few ops, e.g. Gelu): the node is then lifted as it is."""
    feeds = {name: consts[name] for name in node.input if name}
    try:
        outputs = ReferenceEvaluator(node, opsets={"": opset}).run(None, feeds)
    except Exception:  # the evaluator raises anything from numpy; lifting reports real problems
        return None
    return [None if o is None else np.asarray(o) for o in outputs]


def fold_constants(model: onnx.ModelProto, opset: int) -> bool:
    """Fold in place every node that can be; True when some node was folded."""
    graph = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    shapes = {vi.name: static_shape(vi) for vi in list(graph.input) + list(graph.value_info)}
    shapes.update({name: tuple(a.shape) for name, a in consts.items()})
    kept, folded = [], {}
    for node in graph.node:
        outputs = None
        if node.domain in DEFAULT_DOMAINS and node.op_type not in NEVER_FOLD:
            if node.op_type in ("Shape", "Size"):
                outputs = _shape_of(node, shapes)
            elif all(name in consts for name in node.input if name):
                outputs = evaluate(node, consts, opset)
        if outputs is None:
            kept.append(node)
            continue
        for name, value in zip(node.output, outputs):
            if name and value is not None:
                consts[name] = folded[name] = value
                shapes[name] = tuple(value.shape)
    if not folded:
        return False
    used = {name for node in kept for name in node.input} | {o.name for o in graph.output}
    graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in folded.items() if name in used)
    del graph.node[:]
    graph.node.extend(kept)
    return True
