"""Constant folding and algebraic no-ops.

Rewrites:
  * an op whose operands are all constants -> constants holding its results, computed by the IR
    interpreter (`ir.interp.run_op`), so the folded numbers are exactly what the op would have
    produced at run time (identity, reshape, transpose, quantize ... of constants included);
  * an op that leaves its operand as it is -> that operand: identity, reshape/expand to the same
    shape, transpose by the identity permutation, cast to the same type, slice of everything,
    pad by nothing, tile by ones, a one-operand concat/sum/max/min/mean, x + 0, x - 0, x * 1, x / 1
    (only where the result type is the operand's type, so nothing is rounded or requantized);
  * reshape(reshape(x)) -> one reshape of x.

Why: weights often arrive behind shape ops (transposes, reshapes, QuantizeLinear of float
initializers) that cost nothing to evaluate once, here, and code, time and flash to run on the
device.

Left alone: `dequantize` of a quantized constant (integer kernels want the weights quantized;
`fuse` drops that dequantize into its reader), and folds that would dequantize in disguise (a
quantized constant operand with a float result); ops whose result is a graph output (the
generated code computes outputs); and folds that would grow the weights: a result larger than
its operands and larger than `FREE_BYTES` (e.g. expand or tile of a small constant).
"""
from __future__ import annotations

import numpy as np

from edgecc.compiler.rewrite import ANY, Pattern, apply_patterns
from edgecc.ir import interp

from . import register

NEVER_FOLD = ("dequantize", "partition")
FREE_BYTES = 1024  # a folded result may always be this big, even if its operands are smaller


# ---- folding ---------------------------------------------------------------------------------
def _foldable(op, rw):
    present = op.inputs()
    if op.kind in NEVER_FOLD or op.regions or not present or op.kind not in interp.KERNELS:
        return None
    if not all(v.is_const for v in present):
        return None
    if any(rw.is_output(r) for r in op.results):
        return None
    if any(v.type.is_quantized for v in present) and any(r.type.is_float for r in op.results):
        return None
    grown = sum(r.type.nbytes for r in op.results)
    if grown > max(sum(v.type.nbytes for v in present), FREE_BYTES):
        return None
    return True


def _fold(op, found, rw):
    outs = interp.run_op(op, [None if v is None else v.data for v in op.operands])
    return [rw.to_const(r, a) for r, a in zip(op.results, outs)]


FOLD = Pattern("fold_constant", (ANY,), _foldable, _fold)


# ---- no-ops ----------------------------------------------------------------------------------
def same_type(a, b) -> bool:
    """Same shape, element type, quantization and layout: the same stored bytes mean the same numbers."""
    return a.type == b.type


def same_storage(a, b) -> bool:
    """Same element type and quantization (shapes may differ): a view of the same numbers."""
    return a.type.dtype == b.type.dtype and a.type.quant == b.type.quant


def _is_const_of(v, value) -> bool:
    return v is not None and v.is_const and not v.type.is_quantized and v.data.size > 0 \
        and bool(np.all(v.data == value))


def _passthrough(op):
    """The operand op's result equals, judged by its kind and attributes (None if there is none).
    The caller still checks that the types agree (so reshape, expand and cast to another shape or
    type, or a broadcasting x + 0, never count)."""
    k, a, x = op.kind, op.attrs, op.operands[0]
    shape = x.type.shape
    if k in ("identity", "reshape", "expand", "cast"):
        return x
    if k == "transpose":
        return x if list(a["perm"]) == list(range(len(shape))) else None
    if k == "slice":
        whole = all(st == 0 and en >= shape[ax] and step == 1
                    for st, en, ax, step in zip(a["starts"], a["ends"], a["axes"], a["steps"]))
        return x if whole else None
    if k == "pad":
        return x if not any(a["pads"]) else None
    if k == "tile":
        return x if all(r == 1 for r in a["repeats"]) else None
    if k in ("concat", "sum", "max", "min", "mean"):
        return x if len(op.operands) == 1 else None
    neutral = {"add": 0, "sub": 0, "mul": 1, "div": 1}.get(k)
    if neutral is None:
        return None
    if _is_const_of(op.operands[1], neutral):
        return x
    if k in ("add", "mul") and _is_const_of(x, neutral):
        return op.operands[1]
    return None


NOOP_KINDS = ("identity", "reshape", "expand", "cast", "transpose", "slice", "pad", "tile", "concat", "sum",
              "max", "min", "mean", "add", "sub", "mul", "div")


def _match_noop(op, rw):
    if len(op.results) != 1:
        return None
    x = _passthrough(op)
    if x is None or not same_type(x, op.result) or not rw.can_bypass(op.result, x):
        return None
    return x


NOOP = Pattern("remove_noop", NOOP_KINDS, _match_noop, lambda op, x, rw: x)


def _match_reshape_chain(op, rw):
    inner = rw.producer(op.operands[0], "reshape")
    if inner is None or not same_storage(inner.operands[0], inner.result):
        return None
    return inner


def _merge_reshapes(op, inner, rw):
    return rw.op("reshape", [inner.operands[0]], {"shape": list(op.result.type.shape)}, [op.result], op.name).result


RESHAPE_CHAIN = Pattern("merge_reshapes", ("reshape",), _match_reshape_chain, _merge_reshapes)

SIMPLIFY = [NOOP, RESHAPE_CHAIN]  # shared with the passes that leave no-ops behind them
PATTERNS = [FOLD, *SIMPLIFY]


@register("fold_constants")
def run(graph, ctx):
    apply_patterns(graph, PATTERNS, ctx, record="fold_constants")
    return graph
