"""Float fallback for quantized ops the backend cannot run as they are.

Rewrites an op that the backend refuses (`ctx.backend.why_not(op)` gives a reason) and that has
quantized operands or results into: dequantize each quantized operand -> the op on float32
tensors -> quantize each quantized result back to its type. Quantized constants are dequantized
here, once, into float32 constants; a value several fallback ops read is dequantized once.

Why: integer kernels cover the common ops; for the rest (softmax on int8, an exotic activation,
an op with mixed float and quantized operands) the float kernel gives the same real numbers the
IR means, so every op reaches the backend either natively supported or as float. Ops the backend
refuses with no quantization involved are left alone (the backend reports them), and so are
quantize and dequantize themselves, whose job is to cross between the two.
"""
from __future__ import annotations

from edgecc.compiler.rewrite import ANY, Pattern, apply_patterns
from edgecc.ir.interp import to_real

from . import register

CROSSING = ("quantize", "dequantize", "partition")


def _quantized(v) -> bool:
    return v is not None and v.type.quant is not None


def float_type(t):
    return t.with_(dtype="f32", quant=None)


def _match(op, rw):
    if op.kind in CROSSING or rw.ctx is None or rw.ctx.backend is None:
        return None
    if not any(_quantized(v) for v in op.operands + op.results):
        return None
    return rw.ctx.backend.why_not(op)


def _as_float(v, rw):
    """v as float32: a dequantized constant, an existing dequantize of v, or a new one."""
    if v.is_const:
        return rw.const(f"{v.name}_f32", to_real(v.type, v.data), float_type(v.type))
    for u in rw.users(v):
        if u.kind == "dequantize" and u.result.type == float_type(v.type):
            return u.result
    return rw.op("dequantize", [v], {}, [(f"{v.name}_f32", float_type(v.type))]).result


def _fallback(op, reason, rw):
    operands = [_as_float(v, rw) if _quantized(v) else v for v in op.operands]
    results = [rw.value(f"{r.name}_f32", float_type(r.type)) if _quantized(r) else r for r in op.results]
    f = rw.op(op.kind, operands, op.attrs, results, op.name)
    out = []
    for old, new in zip(op.results, f.results):
        if new is old:
            out.append(old)
        else:
            out.append(rw.op("quantize", [new], {}, [old], f"{op.name}_quantize" if op.name else "").result)
    return out


PATTERNS = [Pattern("float_fallback", (ANY,), _match, _fallback)]


@register("float_fallback")
def run(graph, ctx):
    apply_patterns(graph, PATTERNS, ctx, record="float_fallback")
    return graph
