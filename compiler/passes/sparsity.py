"""sparsity: which layers' weights are sparse, and in what pattern (an analysis: the graph is unchanged).

For every conv (depthwise included), fully_connected, matmul and gemm whose weights are a constant,
float or integer, it records in graph.meta["sparsity"][layer name]:
  * density: the fraction of weights that are not zero (for quantized weights, not the zero point);
  * zero_output_channels: output channels whose weights are all zero;
  * pattern: the most regular form the zeros take along the reduction axis (the input channels of a
    conv, at each output channel and kernel position; K of a matrix product, at each output), the
    strictest that holds of "1:16", "1:8", "1:4", "2:4" (at most N non-zeros in every M consecutive
    weights, a ragged last group counted as padded with zeros); else "channels" when the zeros are
    exactly whole output channels; else "unstructured"; "dense" without zeros; "zero" when every
    weight is zero.

2:4 along the input channels is the layout NVIDIA's sparse tensor cores take (TensorRT's
SPARSE_WEIGHTS): the tensorrt backend reads it from here. No kernel is chosen here: the C backend's
kernels are dense (issue 12's sparse kernels are not built), so this is what the report states.
"""
from __future__ import annotations

import numpy as np

from . import register

PATTERNS = ((1, 16), (1, 8), (1, 4), (2, 4))  # strictest first


def reduction_rows(op) -> np.ndarray | None:
    """The op's constant weights as rows [outputs, reduction] (one row per output channel and kernel
    position for a conv, the reduction along the input channels), or None when it has none."""
    k = op.kind
    if k not in ("conv", "fully_connected", "matmul", "gemm") or len(op.operands) < 2:
        return None
    w = op.operands[1]
    if not w.is_const or w.type.rank < 2:
        return None
    data = np.asarray(w.data)
    q = w.type.quant
    zero = np.asarray(q.zero_point).reshape(-1) if q is not None else np.zeros(1)
    if k == "conv":
        # [M, C/g, *k] (or channels last [M, *k, C/g]): the input channels last, one row per (m, position)
        if op.attrs.get("channels_last"):
            data = np.moveaxis(data, -1, 1)
        zp = zero.reshape(-1, 1, 1) if zero.size > 1 else zero[0]
        nonzero = data.reshape(data.shape[0], data.shape[1], -1) != zp
        return np.moveaxis(nonzero, 1, -1)  # [M, positions, C/g]
    if k == "matmul" or (k == "gemm" and not op.attrs.get("trans_b")):
        data = data.T  # [K, N] -> [N, K]
    if data.ndim != 2:
        return None
    zp = zero.reshape(-1, 1) if zero.size == data.shape[0] else zero
    return (data != zp)[:, None, :]  # [N, 1, K]


def pattern_of(nonzero: np.ndarray) -> str:
    """The pattern of a boolean array [outputs, positions, reduction] (see the module docstring)."""
    total = nonzero.size
    count = int(nonzero.sum())
    if count == total:
        return "dense"
    if count == 0:
        return "zero"
    k = nonzero.shape[-1]
    for n, m in PATTERNS:
        padded = np.zeros(nonzero.shape[:-1] + (-(-k // m) * m,), bool)
        padded[..., :k] = nonzero
        if k >= m and padded.reshape(nonzero.shape[:-1] + (-1, m)).sum(axis=-1).max() <= n:
            return f"{n}:{m}"
    per_channel = nonzero.reshape(nonzero.shape[0], -1)
    if np.all(per_channel.all(axis=1) | ~per_channel.any(axis=1)):
        return "channels"
    return "unstructured"


def analyse(op) -> dict | None:
    """The layer's sparsity entry, or None when it has no constant weights."""
    nonzero = reduction_rows(op)
    if nonzero is None:
        return None
    return dict(density=round(float(nonzero.mean()), 6), pattern=pattern_of(nonzero),
                zero_output_channels=int((~nonzero.reshape(nonzero.shape[0], -1).any(axis=1)).sum()))


@register("sparsity")
def run(graph, ctx):
    found = {}
    for op in graph.ops:
        entry = analyse(op)
        if entry is not None:
            found[op.name or op.results[0].name] = entry
    graph.meta["sparsity"] = found
    return graph
