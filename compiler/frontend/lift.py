"""Lift a static ONNX graph into an IR graph: one table-driven rule per ONNX op type.

The rules live in the rules_*.py modules (registered with `@lifts`); this module walks the nodes
in order, runs each node's rule, checks every op it made against the IR's declarations (a
mismatch is a frontend bug, reported with the ONNX node), then lifts Q/DQ into quantized types.
"""
from __future__ import annotations

import os

import onnx

from edgecc.ir.graph import Graph, Op, Value
from edgecc.ir.verifier import VerifyError, verify, verify_op

from . import rules_elementwise, rules_nn, rules_quant, rules_resize, rules_rnn, rules_tensor  # noqa: F401  (register)
from .context import RULES, LiftContext, NodeView
from .dtypes import ir_dtype
from .qdq import lift_qdq
from .shapes import graph_inputs


class LiftBug(RuntimeError):
    """The frontend produced IR that breaks the IR's rules: a bug in edgecc, not in the model."""


def keep_float_outputs(ctx: LiftContext, model: onnx.ModelProto) -> None:
    """A float graph output that lifted to quantized integers (a dequantized constant) is
    dequantized again: the interface keeps the model's element types."""
    g = ctx.graph
    for i, o in enumerate(model.graph.output):
        v = g.outputs[i]
        if v.type.is_quantized and ir_dtype(o.type.tensor_type.elem_type) == "f32":
            real = Value(g.unique_name(o.name), v.type.with_(dtype="f32", quant=None))
            g.ops.append(Op("dequantize", [v], [real], name=ctx.op_name(o.name)))
            g.outputs[i] = real


def lift_graph(model: onnx.ModelProto, opset: int, file: str) -> Graph:
    """The IR graph of a model whose shapes are all static and whose constants are folded."""
    name = os.path.splitext(os.path.basename(file))[0] or model.graph.name
    ctx = LiftContext(model, opset, file, name)
    g = ctx.graph
    for vi in graph_inputs(model):
        v = Value(vi.name, ctx.type_of(vi.name))
        g.inputs.append(v)
        ctx.values[vi.name] = v
    for node in model.graph.node:
        rule = RULES.get(node.op_type)
        if rule is None:
            ctx.fail("edgecc does not support this op", node)
        n = NodeView(ctx, node)
        rule(n)
        for op in n.new_ops:
            try:
                verify_op(op)
            except VerifyError as e:
                raise LiftBug(f"{file}: ONNX node '{n.label}' ({node.op_type}) lifted to an invalid op: {e}") from e
    g.outputs = [ctx.value(o.name) for o in model.graph.output]
    lift_qdq(ctx)
    keep_float_outputs(ctx, model)
    try:
        verify(g)
    except VerifyError as e:
        raise LiftBug(f"{file}: the lifted graph is invalid: {e}") from e
    return g
