"""Running a graph on calibration samples with the IR interpreter, keeping intermediate values.

The interpreter's `run` gives the outputs only; calibration and the report need every tensor, so
`trace` walks the ops itself with `run_op` (the same kernels, the same rounding).
"""
from __future__ import annotations

import numpy as np

from edgecc.ir.interp import run_op, to_real

from .data import count, samples


def trace(graph, inputs, keep=None) -> dict:
    """{Value: stored array} of one run of `graph` on `inputs` (a list in graph.inputs order): the
    inputs and every op result, or only those in `keep` (a set of Values)."""
    env = {c: c.data for c in graph.constants}
    for v, a in zip(graph.inputs, inputs):
        env[v] = np.asarray(a).astype(v.type.np_dtype, copy=False).reshape(v.type.shape)
    for op in graph.ops:
        outs = run_op(op, [None if v is None else env[v] for v in op.operands])
        env.update(zip(op.results, outs))
    if keep is None:
        return {v: a for v, a in env.items() if not v.is_const}
    return {v: env[v] for v in keep}


def real(v, stored) -> np.ndarray:
    """The real numbers a stored array means (float64): dequantized when v is quantized."""
    return np.asarray(to_real(v.type, stored), np.float64)


def each_sample(calibration: dict, graph, progress=None, label: str = ""):
    """The calibration samples as input lists, reporting progress(label, done, total) as they go."""
    total = count(calibration)
    for i, xs in enumerate(samples(calibration, graph)):
        yield xs
        if progress is not None:
            progress(label, i + 1, total)
