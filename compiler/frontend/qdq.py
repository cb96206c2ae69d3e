"""QDQ lifting: fold ONNX's QuantizeLinear / DequantizeLinear into quantized IR types.

In ONNX quantized tensors are plain integers that DequantizeLinear reads with a scale and zero
point. In the IR the parameters live on the type, and an op dequantizes quantized operands
itself. After the rules ran, every DequantizeLinear of a computed value (and every integer
operand of QLinearConv & co.) is a pending `dequantize` op, "read these integers with quant P",
and the integers QuantizeLinear / QLinearConv / QLinearMatMul produce carry their P already.
This module rewrites that into the IR's reading, exactly:

1. Settle the readers of each produced quantized value y. Readers that only move the integers
   (reshape, transpose, ...) pass P on to their results; dequantize ops with P read y as it is.
   If anything else reads the integers themselves (an integer Add, a dequantize with other
   parameters), those readers get the plain integers back by arithmetic instead.
2. Resolve each pending dequantize of y: when y has P, its readers read y directly (the op
   stays only to feed a graph output). When y is plain integers that can take P (a graph input,
   or values that only move it, read only by dequantizes with P), they take P on their types.
   Otherwise the dequantization is spelled out: (float(y) - zero point) * scale.
3. A `quantize` op whose float input x is computed by an op, read only by quantize ops with the
   same result type, and not a graph output: that op produces the quantized integers directly.
4. A `quantize` whose input is already quantized is a requantization: an `identity`.

What is left are explicit quantize / dequantize ops at float interfaces.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from edgecc.ir.graph import Graph, Op, Value
from edgecc.ir.ops import fill_defaults
from edgecc.ir.types import Quant, TensorType

from .arith import dequantize_arith, quantize_arith

# Ops that move integers without changing their order: with the same quantization on operand and
# result they give the same integers as on plain integers (max pooling: a scale is positive).
DATA_MOVEMENT = {"reshape", "transpose", "identity", "slice", "split", "gather", "tile", "expand",
                 "depth_to_space", "space_to_depth", "concat", "max_pool", "global_max_pool"}
NO_QUANTIZED_RESULT = {"cast", "quantize", "dequantize"}


def _data_operands(op: Op) -> list:
    return op.operands if op.kind == "concat" else op.operands[:1]


def _moves(op: Op, v: Value) -> bool:
    """op moves v's integers into its results (v is a data operand, never an index)."""
    if op.kind not in DATA_MOVEMENT or (op.kind == "max_pool" and len(op.results) > 1):
        return False
    data = _data_operands(op)
    if not any(w is v for w in data) or any(w is v for w in op.operands[len(data):]):
        return False
    return all(r.type.dtype == v.type.dtype for r in op.results)


class _Builder:
    """Ops and constants made to sit next to one op of the graph, named after `base`."""

    def __init__(self, ctx, base: str):
        self.ctx, self.g, self.base, self.ops = ctx, ctx.graph, base, []

    def params(self, quant: Quant, rank: int) -> tuple[Value, Value]:
        """scale and zero point as float32 constants broadcastable against a tensor of `rank`."""
        return tuple(self.g.add_constant(f"{self.base}_{tag}", a.astype(np.float32), TensorType(a.shape, "f32"))
                     for tag, a in zip(("scale", "zero_point"), quant.broadcast(rank)))

    def emit(self, kind: str, operands: list, attrs: dict, type: TensorType) -> Value:
        """One op (the kinds of one arithmetic chain differ, so their names do too)."""
        v = Value(self.g.unique_name(f"{self.base}_{kind}"), type)
        self.ops.append(Op(kind, operands, [v], fill_defaults(kind, attrs), name=self.ctx.op_name(v.name)))
        return v

    def insert_at(self, index: int) -> None:
        self.g.ops[index:index] = self.ops


def _settle_readers(ctx, y: Value) -> None:
    """Step 1 for one produced quantized value y (see the module docstring)."""
    g, pending = ctx.graph, ctx.pending_dequant
    quant, users = y.type.quant, g.users()
    moved, plain_readers, todo = [], [], [y]
    while todo:
        v = todo.pop()
        for u in users.get(v, []):
            if pending.get(u) == quant:
                continue
            if _moves(u, v) and not (quant.per_axis and u.kind != "identity"):
                fresh = [r for r in u.results if r not in moved]
                moved.extend(fresh)
                todo.extend(fresh)
            else:
                plain_readers.append(u)
    if not plain_readers:
        for v in moved:
            v.type = v.type.with_(quant=quant)
        return
    b = _Builder(ctx, y.name)
    plain = quantize_arith(b.emit, y, *b.params(quant, y.type.rank), y.type.dtype)
    b.insert_at(g.ops.index(y.producer) + 1)
    for u in users.get(y, []):
        if pending.get(u) != quant:
            u.operands = [plain if w is y else w for w in u.operands]


def _integer_class(g: Graph, y: Value, quant: Quant, pending: dict) -> Optional[set]:
    """The plain integer values that must take `quant` so that y reads as quant, or None when
    one of them is also read some other way or is computed by arithmetic."""
    users = g.users()
    found, todo = set(), [y]
    while todo:
        v = todo.pop()
        if v in found:
            continue
        if v.type.quant is not None:
            if v.type.quant != quant:
                return None
            continue
        if v.type.dtype != y.type.dtype:
            return None
        found.add(v)
        p = v.producer
        if p is not None:
            if not any(_moves(p, w) for w in _data_operands(p)):
                return None
            todo.extend(_data_operands(p))
            todo.extend(p.results)
        for u in users.get(v, []):
            if u in pending:
                if pending[u] != quant:
                    return None
            elif _moves(u, v):
                todo.extend(u.results)
            else:
                return None
    if quant.per_axis and len(found) > 1:
        return None  # the axis would move through reshapes; keep per-axis on single values
    return found


def _resolve_dequantize(ctx, d: Op) -> None:
    """Step 2 for one pending dequantize d."""
    g, pending = ctx.graph, ctx.pending_dequant
    quant, y, r = pending[d], d.operands[0], d.result
    if y.type.quant is None:
        members = _integer_class(g, y, quant, pending)
        if members is None:
            b = _Builder(ctx, d.name)
            real = dequantize_arith(b.emit, y, *b.params(quant, y.type.rank))
            b.insert_at(g.ops.index(d))
            g.ops.remove(d)
            g.replace_uses(r, real)
            real.name = r.name
            return
        for v in members:
            v.type = v.type.with_(quant=quant)
    if y.type.quant != quant:
        raise AssertionError(f"dequantize '{d.name}' reads %{y.name} with other parameters than its type's")
    for op in g.ops:
        if op is not d:
            op.operands = [y if v is r else v for v in op.operands]
    if r not in g.outputs:
        g.ops.remove(d)


def _absorb_quantize(g: Graph, q: Op, users: dict) -> None:
    """Step 3 for one quantize op q."""
    x, y = q.operands[0], q.result
    p = x.producer
    if p is None or p.kind in NO_QUANTIZED_RESULT or not x.type.is_float or x in g.outputs:
        return
    readers = users.get(x, [])
    if not all(u.kind == "quantize" and u.result.type == y.type for u in readers):
        return
    x.type = y.type
    for u in readers:
        g.ops.remove(u)
        g.replace_uses(u.result, x)
    x.name = y.name


def lift_qdq(ctx) -> None:
    """Rewrite ctx.graph in place (see the module docstring). ctx.pending_dequant maps dequantize
    ops to the parameters they read with; ctx.produced_quantized lists the quantized values ONNX
    ops produced."""
    g = ctx.graph
    for y in ctx.produced_quantized:
        _settle_readers(ctx, y)
    for d in [op for op in g.ops if op in ctx.pending_dequant]:
        _resolve_dequantize(ctx, d)
    for q in [op for op in g.ops if op.kind == "quantize"]:
        if q in g.ops:
            _absorb_quantize(g, q, g.users())
    for op in g.ops:
        if op.kind == "quantize" and op.operands[0].type.is_quantized:
            op.kind = "identity"
    g.remove_dead()
