"""What the float32 compute kernels (conv, matmul, pool, norm, softmax) share: the dtype check, the
fused activations of conv / fully_connected as C expressions over one value, and where a bias
comes from."""
from __future__ import annotations

import numpy as np

from . import Unsupported, c_float


def require_float32(op) -> None:
    """Raise Unsupported unless every operand and result is plain (unquantized) float32."""
    for v in op.inputs() + op.results:
        if v.type.quant is not None:
            raise Unsupported(f"{op.kind}: %{v.name} is quantized (float32 kernel)")
        if v.type.dtype != "f32":
            raise Unsupported(f"{op.kind}: %{v.name} is {v.type.dtype} (float32 kernel)")


def activation_expr(op, v: str = "v") -> str:
    """The fused activation of `op` (ir.ops ACT attributes) applied to the C float variable `v`.

    Comparisons are written so that NaN passes through, as ONNX's Relu/Clip do."""
    act = op.attrs.get("activation", "none")
    params = list(op.attrs.get("act_params", []))
    if act == "none":
        return v
    if act == "relu":
        return f"({v} < 0.0f ? 0.0f : {v})"
    if act == "relu6":
        return f"({v} < 0.0f ? 0.0f : ({v} > 6.0f ? 6.0f : {v}))"
    if act == "clip":
        lo, hi = (params + [float("-inf"), float("inf")][len(params):])[:2]
        expr = v
        if hi != float("inf"):
            expr = f"({v} > {c_float(hi)} ? {c_float(hi)} : {expr})"
        if lo != float("-inf"):
            expr = f"({v} < {c_float(lo)} ? {c_float(lo)} : {expr})"
        return expr
    if act == "leaky_relu":
        alpha = params[0] if params else 0.01
        return f"({v} < 0.0f ? {c_float(alpha)} * {v} : {v})"
    if act == "sigmoid":
        return f"(1.0f / (1.0f + expf(-{v})))"
    if act == "tanh":
        return f"tanhf({v})"
    if act == "hard_swish":
        return f"({v} * ({v} <= -3.0f ? 0.0f : ({v} >= 3.0f ? 1.0f : {v} * (1.0f / 6.0f) + 0.5f)))"
    raise Unsupported(f"{op.kind}: fused activation '{act}'")


def operand(op, j: int):
    """Operand j of op, or None when the op has fewer (a trailing optional operand left out)."""
    return op.operands[j] if j < len(op.operands) else None


def bias_source(b, n: int):
    """Where a kernel reads a bias of n values: ("", None) when there is none, ("table", float32
    array) for a constant (a kernel-private table, so the kernel can replace the operand), or
    ("operand", None) for a runtime tensor."""
    if b is None:
        return "", None
    if b.is_const:
        return "table", np.asarray(b.data, np.float32).reshape(n)
    return "operand", None
