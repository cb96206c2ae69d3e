"""Elementwise kernels: unary maps, broadcasting binary and variadic ops, where, cast.

Each op is a C expression over the element(s) `a`, `b`, `c` (tinygrad-style table); one template
walks the broadcast index space with the operands' strides, so equal shapes become one flat,
vectorizable loop.
"""
from __future__ import annotations

import re

from . import CTYPES, INT_LIMITS, Kernel, Unsupported, broadcast_strides, c_float, c_int, collapse, index_expr, kernel

FLOAT_UNARY = {
    "relu": "A > 0.0f ? A : 0.0f",
    "sigmoid": "1.0f / (1.0f + expf(-A))",
    "tanh": "tanhf(A)",
    "exp": "expf(A)",
    "log": "logf(A)",
    "sqrt": "sqrtf(A)",
    "reciprocal": "1.0f / A",
    "abs": "fabsf(A)",
    "neg": "-A",
    "floor": "floorf(A)",
    "ceil": "ceilf(A)",
    "round": "rintf(A)",  # half to even in the default rounding mode, as ONNX asks
    "erf": "erff(A)",
    "softplus": "(A > 20.0f ? A : log1pf(expf(A)))",
    "softsign": "A / (1.0f + fabsf(A))",
    "mish": "A * tanhf(A > 20.0f ? A : log1pf(expf(A)))",
    "hard_swish": "A * fmaxf(0.0f, fminf(1.0f, A * (1.0f / 6.0f) + 0.5f))",
    "identity": "A",
    "leaky_relu": "A < 0.0f ? {alpha} * A : A",
    "elu": "A < 0.0f ? {alpha} * (expf(A) - 1.0f) : A",
    "selu": "A <= 0.0f ? {gamma} * ({alpha} * expf(A) - {alpha}) : {gamma} * A",
    "hard_sigmoid": "fmaxf(0.0f, fminf(1.0f, {alpha} * A + {beta}))",
    "clip": "fminf(fmaxf(A, {min}), {max})",
}
GELU = {"none": "0.5f * A * (1.0f + erff(A * 0.70710678118654752f))",
        "tanh": "0.5f * A * (1.0f + tanhf(0.79788456080286536f * (A + 0.044715f * A * A * A)))"}
INT_UNARY = {
    "relu": "A > 0 ? A : 0",
    "abs": "A < 0 ? -A : A",
    "neg": "-A",
    "identity": "A",
    "not": "!A",
    "sign": "(A > 0) - (A < 0)",
}
FLOAT_BINARY = {
    "add": "A + B", "sub": "A - B", "mul": "A * B", "div": "A / B", "pow": "powf(A, B)",
    "max": "(A > B || B != B ? A : B)", "min": "(A < B || B != B ? A : B)", "sum": "A + B",
    "prelu": "A < 0.0f ? A * B : A", "mod": "fmodf(A, B)",
    "equal": "A == B", "less": "A < B", "greater": "A > B", "less_or_equal": "A <= B", "greater_or_equal": "A >= B",
}
INT_BINARY = {
    "add": "A + B", "sub": "A - B", "mul": "A * B", "div": "A / B", "max": "(A > B ? A : B)",
    "min": "(A < B ? A : B)", "sum": "A + B", "prelu": "A < 0 ? A * B : A",
    "and": "A && B", "or": "A || B", "xor": "!A != !B",
    "equal": "A == B", "less": "A < B", "greater": "A > B", "less_or_equal": "A <= B", "greater_or_equal": "A >= B",
}
# ONNX Pow keeps the base's type; the exponent may be an integer or a float (helpers/int_pow_*.c.j2;
# the float one only where used: an unused static function fails -Werror)
INT_POW_WHOLE, INT_POW_REAL = "helpers/int_pow_whole.c.j2", "helpers/int_pow_real.c.j2"


def _int_pow(op) -> tuple[str, tuple]:
    """The C expression of an integer-base Pow, and the helpers it calls."""
    lo, hi = INT_LIMITS[op.result.type.dtype]
    if op.operands[1].type.dtype == "f32":
        return f"pow_int_real(e0, (double)e1, {lo}, {hi})", (INT_POW_WHOLE, INT_POW_REAL)
    return f"pow_int_whole(e0, e1, {lo})", (INT_POW_WHOLE,)


# integer mod: fmod=1 is C's %, fmod=0 takes the divisor's sign (Python's %)
INT_MOD = {1: "A % B", 0: "(A % B != 0 && ((A % B < 0) != (B < 0)) ? A % B + B : A % B)"}


def _quantized(op):
    return any(v.type.quant is not None for v in op.inputs() + op.results)


def _loop_kernel(op, expr: str, operands, prelude: tuple = ()) -> Kernel:
    out = op.result.type.shape
    dims, sts = collapse(out, [broadcast_strides(v.type.shape, out) for v in operands] + [
        broadcast_strides(out, out)])
    loads = [f"x{j}[{index_expr(s)}]" for j, s in enumerate(sts[:-1])]
    return Kernel("elementwise.c.j2", dict(dims=dims, loads=loads, expr=expr, store=f"y0[{index_expr(sts[-1])}]",
                                           ctype=CTYPES[op.result.type.dtype],
                                           in_ctypes=[CTYPES[v.type.dtype] for v in operands]), prelude=prelude)


def _subst(template: str, a: str, b: str = "") -> str:
    """Put operand expressions in place of A and B."""
    return re.sub(r"\b[AB]\b", lambda m: a if m.group(0) == "A" else b, template)


def _fmt(template: str, op) -> str:
    vals = {k: c_float(v) for k, v in op.attrs.items() if isinstance(v, float)}
    return _subst(template.format(**vals), "e0")


@kernel(*FLOAT_UNARY, "gelu", "not", "sign")
def unary(op):
    if _quantized(op):
        raise Unsupported(f"{op.kind} on quantized tensors runs through float (float_fallback)")
    x = op.operands[0]
    if x.type.dtype == "f32":
        if op.kind == "gelu":
            expr = _subst(GELU[op.attrs["approximate"]], "e0")
        elif op.kind in FLOAT_UNARY:
            expr = _fmt(FLOAT_UNARY[op.kind], op)
        else:
            raise Unsupported(f"{op.kind} on float32")
    elif op.kind == "clip":
        lo, hi = op.attrs["min"], op.attrs["max"]
        t = CTYPES[x.type.dtype]
        parts = "e0"
        if lo != float("-inf"):
            parts = f"({parts} < {c_int(lo, x.type.dtype)} ? ({t}){c_int(lo, x.type.dtype)} : {parts})"
        if hi != float("inf"):
            parts = f"({parts} > {c_int(hi, x.type.dtype)} ? ({t}){c_int(hi, x.type.dtype)} : {parts})"
        expr = parts
    elif op.kind in INT_UNARY:
        expr = _subst(INT_UNARY[op.kind], "e0")
    else:
        raise Unsupported(f"{op.kind} on {x.type.dtype}")
    return _loop_kernel(op, expr, [x])


@kernel("cast")
def cast(op):
    src, dst = op.operands[0].type.dtype, op.result.type.dtype
    if _quantized(op):
        raise Unsupported("cast of quantized tensors")
    if dst == "i1":
        expr = "e0 != 0"
    elif src == "f32" and dst != "f32":
        expr = "truncf(e0)"  # ONNX casts float to integer by truncation
    else:
        expr = "e0"
    return _loop_kernel(op, expr, [op.operands[0]])


@kernel(*FLOAT_BINARY, *INT_BINARY, "mean")
def binary(op):
    if _quantized(op):
        raise Unsupported(f"{op.kind} on quantized tensors runs through float (float_fallback)")
    operands = op.inputs()
    dtype = operands[0].type.dtype
    kind = "sum" if op.kind == "mean" else op.kind
    if dtype == "f32":
        table = FLOAT_BINARY
    elif op.kind == "pow":
        expr, helpers = _int_pow(op)
        return _loop_kernel(op, expr, operands, prelude=helpers)
    elif op.kind == "mod":
        table = {"mod": INT_MOD[op.attrs["fmod"]]}
    else:
        table = INT_BINARY
    if kind not in table:
        raise Unsupported(f"{op.kind} on {dtype}")
    acc = "e0"  # variadic ops fold left: ((e0 op e1) op e2) ...
    for j in range(1, len(operands)):
        acc = "(" + _subst(table[kind], acc, f"e{j}") + ")"
    if op.kind == "mean":
        acc = f"{acc} / {c_float(len(operands))}"
    return _loop_kernel(op, acc, operands)


@kernel("where")
def where(op):
    if _quantized(op):
        raise Unsupported("where on quantized tensors runs through float (float_fallback)")
    return _loop_kernel(op, "e0 ? e1 : e2", op.operands)
