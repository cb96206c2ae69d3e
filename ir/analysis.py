"""Facts about ops that passes, backends and reports share: multiply-accumulates, weight bytes."""
from __future__ import annotations

import numpy as np


def _prod(xs) -> int:
    return int(np.prod(list(xs), dtype=np.int64))


def macs(op) -> int:
    """Multiply-accumulates one run of `op` performs (0 for ops that do not multiply-accumulate)."""
    k = op.kind
    if k == "tiled":  # the body strip by strip: halo rows count each time they are computed
        from .tiling import chain, computed_macs
        return computed_macs(chain(op.regions[0]), op.attrs["rows"], macs)
    if k == "partition":
        return sum(macs(inner) for inner in op.regions[0].ops)
    if k == "conv":
        w = op.operands[1].type.shape
        return op.result.type.size * _prod(w[1:])
    if k == "conv_transpose":
        w = op.operands[1].type.shape
        return op.operands[0].type.size * _prod(w[1:])
    if k in ("matmul", "fully_connected", "gemm"):
        a = op.operands[0].type.shape
        kdim = a[-1]
        if k == "gemm" and op.attrs.get("trans_a"):
            kdim = a[0]
        return op.result.type.size * (kdim if len(a) else 1)
    if k in ("lstm", "gru"):
        x, w = op.operands[0].type.shape, op.operands[1].type.shape
        steps = x[0] if op.attrs.get("layout", 0) == 0 else x[1]
        batch = x[1] if op.attrs.get("layout", 0) == 0 else x[0]
        return steps * batch * w[0] * w[1] * (w[2] + op.attrs["hidden_size"])
    return 0


def weight_bytes(op) -> int:
    return sum(v.type.nbytes for v in op.inputs() if v.is_const)
