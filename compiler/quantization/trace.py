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


def lockstep(graph, calibration: dict, replaced, progress=None):
    """Run `graph` and a twin of it on every calibration sample at once, op by op: the twin runs an op as
    `replaced(op)` says, (the op to run, {operand index: stored array}), or as the graph does where that is
    None. Yields (op, graph's values, twin's values) before running each op: one dict {Value: stored array}
    per sample each, holding at least the op's operands; the twin's array is the graph's own object wherever
    nothing replaced upstream changed it. A value is dropped after its last reader."""
    last = {}
    for i, op in enumerate(graph.ops):
        for v in op.operands:
            if v is not None and not v.is_const:
                last[v] = i
    ref = [{v: np.asarray(a).astype(v.type.np_dtype, copy=False).reshape(v.type.shape)
            for v, a in zip(graph.inputs, xs)} for xs in samples(calibration, graph)]
    got = [dict(r) for r in ref]
    for i, op in enumerate(graph.ops):
        yield op, ref, got
        run_as, swap = replaced(op) or (op, {})
        for r, q in zip(ref, got):
            args = [None if v is None else (v.data if v.is_const else r[v]) for v in op.operands]
            outs = run_op(op, args)
            r.update(zip(op.results, outs))
            twin = [swap[j] if j in swap else None if v is None else v.data if v.is_const else q[v]
                    for j, v in enumerate(run_as.operands)]
            same = not swap and all(a is b for a, b in zip(args, twin))
            q.update(zip(op.results, outs if same else run_op(run_as, twin)))
            for v in op.operands:
                if v is not None and last.get(v) == i:
                    r.pop(v, None)
                    q.pop(v, None)
        if progress is not None:
            progress("weights", i + 1, len(graph.ops))
