"""The graph verifier: SSA, declared arity and attributes, shapes, quantization well-formedness."""
from __future__ import annotations

import math

from .graph import Graph
from .ops import FLOAT, FLOATS, INT, INTS, OPS, REQUIRED, STR, STRS, infer_shapes
from .types import int_range, is_channels_last


class VerifyError(Exception):
    """The graph breaks an IR rule; the message names the op."""


def _int64(v) -> bool:
    """An integer attribute as ONNX has them: int64 (what the C and the printer can hold)."""
    return isinstance(v, int) and not isinstance(v, bool) and -2**63 <= v < 2**63


def _check_attr(op, name, kind, value):
    ok = {
        INT: _int64,
        FLOAT: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        STR: lambda v: isinstance(v, str),
        INTS: lambda v: isinstance(v, list) and all(_int64(x) for x in v),
        FLOATS: lambda v: isinstance(v, list) and all(isinstance(x, (int, float)) for x in v),
        STRS: lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    }[kind](value)
    if not ok:
        raise VerifyError(f"op '{op.name}' ({op.kind}): attribute {name} = {value!r} is not {kind}")


def _where(op):
    return f"op '{op.name}' ({op.kind})"


def _check_layout_tags(op) -> None:
    """The channels_last attribute (what the shape rules and kernels read) and the layout tags of the data
    operand and the results (what the interpreter reads) say the same thing."""
    cl = bool(op.attrs.get("channels_last", 0))
    for v in [op.operands[0]] + list(op.results):
        if v is not None and is_channels_last(v.type.layout) != cl:
            raise VerifyError(f"{_where(op)}: channels_last = {int(cl)} but %{v.name} has layout "
                              f"{v.type.layout or 'none'}")


def verify_op(op) -> None:
    d = OPS.get(op.kind)
    if d is None:
        raise VerifyError(f"{_where(op)}: unknown op kind")
    lo, hi = d.operands
    n = len(op.operands)
    if n < lo or (hi >= 0 and n > hi):
        raise VerifyError(f"{_where(op)}: {n} operands, expected {lo}..{'*' if hi < 0 else hi}")
    if any(v is None for v in op.operands[:lo]):
        raise VerifyError(f"{_where(op)}: a required operand is missing")
    lo, hi = d.results
    n = len(op.results)
    if n < lo or (hi >= 0 and n > hi):
        raise VerifyError(f"{_where(op)}: {n} results, expected {lo}..{'*' if hi < 0 else hi}")
    for name, value in op.attrs.items():
        if name not in d.attrs:
            raise VerifyError(f"{_where(op)}: unknown attribute {name}")
        _check_attr(op, name, d.attrs[name][0], value)
    for name, (_, default) in d.attrs.items():
        if default is REQUIRED and name not in op.attrs:
            raise VerifyError(f"{_where(op)}: missing attribute {name}")
    try:
        shapes = infer_shapes(op)
    except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as e:
        # a shape rule reading a malformed op (e.g. 1 stride for a 2-D conv) is the op's fault
        raise VerifyError(f"{_where(op)}: cannot infer result shapes ({type(e).__name__}: {e})") from e
    if shapes is not None:
        for r, s in zip(op.results, shapes):
            if tuple(r.type.shape) != tuple(s):
                raise VerifyError(f"{_where(op)}: result %{r.name} has shape {list(r.type.shape)}, "
                                  f"the operands give {list(s)}")
    if "channels_last" in d.attrs:
        _check_layout_tags(op)
    if op.kind == "partition":
        if len(op.regions) != 1:
            raise VerifyError(f"{_where(op)}: a partition holds exactly one graph")
        body = op.regions[0]
        if len(body.inputs) != len(op.operands) or len(body.outputs) != len(op.results):
            raise VerifyError(f"{_where(op)}: operands/results do not match the body's inputs/outputs")
        verify(body)
    if op.kind == "tiled":
        _verify_tiled(op)


def _verify_tiled(op) -> None:
    """One body: a chain of row-local layers from the operand's type to the result's (ir/tiling.py)."""
    from .tiling import chain

    if len(op.regions) != 1:
        raise VerifyError(f"{_where(op)}: a tiled op holds exactly one graph")
    body = op.regions[0]
    verify(body)
    try:
        chain(body)
    except ValueError as e:
        raise VerifyError(f"{_where(op)}: {e}") from None
    if body.inputs[0].type != op.operands[0].type or body.outputs[0].type != op.result.type:
        raise VerifyError(f"{_where(op)}: the operand and result types differ from the body's")


def _check_quant(v):
    q = v.type.quant
    if q is None:
        return
    if v.type.dtype in ("f32", "i1"):
        raise VerifyError(f"%{v.name}: a {'float' if v.type.dtype == 'f32' else 'boolean'} tensor cannot carry "
                          f"quantization")
    if q.axis is not None:
        if not 0 <= q.axis < v.type.rank or v.type.shape[q.axis] != len(q.scale):
            raise VerifyError(f"%{v.name}: per-axis quantization does not fit shape {list(v.type.shape)}")
    if any(not s > 0 for s in q.scale):
        raise VerifyError(f"%{v.name}: quantization scale must be positive")
    if any(not math.isfinite(s) for s in q.scale):
        raise VerifyError(f"%{v.name}: quantization scale must be finite")
    lo, hi = int_range(v.type.dtype)
    if any(not lo <= z <= hi for z in q.zero_point):
        raise VerifyError(f"%{v.name}: zero point outside the range of {v.type.dtype} ({lo}..{hi})")


def _check_int4(v):
    """i4 holds weights: constants only (no kernel reads or writes 4-bit activations), values in [-8, 7]."""
    if v.type.dtype != "i4":
        return
    if not v.is_const:
        raise VerifyError(f"%{v.name}: an i4 tensor must be a constant (4-bit integers hold weights)")
    lo, hi = int_range("i4")
    if v.data.size and not (lo <= int(v.data.min()) and int(v.data.max()) <= hi):
        raise VerifyError(f"%{v.name}: i4 data outside [{lo}, {hi}]")


def verify(g: Graph) -> None:
    """Raise VerifyError unless the graph is well formed."""
    defined, names = set(), set()

    def define(v, where):
        if v in defined:
            raise VerifyError(f"%{v.name} defined twice ({where})")
        if v.name in names:
            raise VerifyError(f"value name %{v.name} used twice ({where})")
        defined.add(v)
        names.add(v.name)
        _check_quant(v)
        _check_int4(v)

    for v in g.inputs:
        if v.is_const:
            raise VerifyError(f"graph input %{v.name} holds data")
        define(v, "graph input")
    for c in g.constants:
        if not c.is_const:
            raise VerifyError(f"constant %{c.name} has no data")
        if tuple(c.data.shape) != tuple(c.type.shape) or c.data.dtype != c.type.np_dtype:
            raise VerifyError(f"constant %{c.name}: data {c.data.dtype}{list(c.data.shape)} does not match its type")
        define(c, "constant")
    for op in g.ops:
        for v in op.operands:
            if v is not None and v not in defined:
                raise VerifyError(f"{_where(op)}: operand %{v.name} is used before it is defined")
        verify_op(op)
        for r in op.results:
            if r.producer is not op:
                raise VerifyError(f"{_where(op)}: result %{r.name} does not point back at its op")
            define(r, _where(op))
    for v in g.outputs:
        if v not in defined:
            raise VerifyError(f"graph output %{v.name} is not defined")
