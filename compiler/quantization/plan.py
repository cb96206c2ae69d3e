"""Which int8 parameters every float tensor of a graph gets, decided for the whole graph at once
before quantize_int8 rewrites it (see that pass's docstring for the rules and why)."""
from __future__ import annotations

from edgecc.ir.types import Quant

from .scheme import activation_quant

# ops that move or select stored values: their results keep their operand's parameters
MOVES = ("reshape", "transpose", "identity", "slice", "max_pool", "global_max_pool", "depth_to_space",
         "space_to_depth", "expand", "tile", "gather", "split", "pad", "resize")
SOFTMAX_QUANT = Quant((1.0 / 256,), (-128,))  # [0, 1) exactly, as the TFLite spec fixes it


def _moved_groups(graph) -> dict:
    """{value: the value its codes come from}: results of data movement share their operand's
    parameters, so a producer and the movement after it form one group, keyed by the producer."""
    root = {v: v for v in graph.inputs if v.type.dtype == "f32"}
    for op in graph.ops:
        x = op.operands[0] if op.operands else None
        for r in op.results:
            if r.type.dtype == "f32":
                root[r] = root[x] if op.kind in MOVES and x in root else r
    return root


def _group_ranges(graph, ranges: dict, root: dict) -> dict:
    """{group root: [lo, hi]}: the range of the values the group's readers actually read. After a
    max_pool those are the window maxima, whose distribution, not the conv's, should decide where a
    percentile or entropy clipping cuts (clipping commutes with moving and with max)."""
    users = graph.users()
    outputs = set(graph.outputs)
    read: dict = {}
    for v, r in root.items():
        if v in outputs or any(u.kind not in MOVES for u in users.get(v, [])):
            lo, hi = ranges[v.name]
            old = read.get(r, (lo, hi))
            read[r] = (min(lo, old[0]), max(hi, old[1]))
    return {r: read.get(r, ranges[r.name]) for r in set(root.values())}


def plan_quant(graph, ranges: dict) -> dict:
    """{Value: Quant} for every float input and op result (the rules: compiler/passes/quantize_int8.py)."""
    root = _moved_groups(graph)
    group_range = _group_ranges(graph, ranges, root)
    plan = {}
    for v, r in root.items():
        if r not in plan:
            p = r.producer
            plan[r] = SOFTMAX_QUANT if p is not None and p.kind == "softmax" else activation_quant(*group_range[r])
        plan[v] = plan[r]
    users = graph.users()
    outputs = set(graph.outputs)
    for op in graph.ops:
        x = op.operands[0] if op.operands else None
        if op.kind not in ("relu", "clip") or x is None or x not in plan or x in outputs:
            continue
        p = x.producer
        if users.get(x) == [op] and p is not None and p.kind not in MOVES and len(p.results) == 1:
            plan[x] = plan[op.result]
    return plan
