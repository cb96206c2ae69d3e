"""fit_memory: when the memory plan exceeds the SRAM budget, compute the layers at its peak in strips.

Rewrites a run of consecutive layers around the plan's peak into one `tiled` op (ir/ops.py), which
computes the run's result a few rows at a time, each strip through all its layers at once: the
tensors inside the run never exist whole, only the rows a strip needs (patch-based inference, as
in MCUNetV2). Neighbouring strips overlap in the inner layers, and those halo rows are computed
again: that is the price.

Candidates are every run of row-local layers (ir/tiling.why_not_row_local) that contains the peak
layer, each result inside read only by the next layer, times a choice of rows per strip. Each is
weighed exactly: the memory plan of the graph with the run replaced (the tiled op's patch buffers
and in-place offset come from the backend), and its cost, the recomputed multiply-accumulates plus
CALL_MACS per layer call. The cheapest candidate that fits wins; when none fits, the one with the
smallest arena is taken and the search goes on from the new peak. When no candidate lowers the
arena any more, the compile is refused with the smallest budget that works (that arena and the
stack) and the layer at its peak (compiler/memory/budget.py).

The budget is --sram, else the target's SRAM (compiler/memory/budget.py); nothing changes when the
plan fits it.
"""
from __future__ import annotations

from dataclasses import dataclass

from edgecc.compiler.memory import plan_ops
from edgecc.compiler.memory.budget import refuse, sram_budget, stack_bytes
from edgecc.ir.analysis import macs
from edgecc.ir.graph import Graph, Op, Value
from edgecc.ir.tiling import computed_macs, why_not_row_local

from . import register
from .memory_plan import best_plan

CALL_MACS = 100  # one call of a strip's layer function (its prologue and set-up), in multiply-accumulates
ROWS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
MAX_LAYERS = 6


@dataclass
class Candidate:
    first: int  # index of the run's first layer in the planned order
    last: int
    rows: int
    arena: int
    cost: int  # recomputed MACs + calls


def _stand_in(layers: list, rows: int) -> Op:
    """A tiled op over `layers` that leaves them as they are (for weighing; `apply` makes it real)."""
    x, y = layers[0].operands[0], layers[-1].result
    body = Graph("strips", [x], [y], ops=list(layers))
    return Op("tiled", [x], [Value(y.name, y.type)], {"rows": rows}, layers[0].name, regions=[body])


def _runs(graph, order: list, peak: int):
    """(first, last) index ranges of row-local runs through the peak layer, at most MAX_LAYERS long."""
    if why_not_row_local(order[peak]):
        return []
    users = graph.users()

    def joined(a, b) -> bool:  # b reads a's result, and nothing else does
        return b.operands[0] is a.result and len(users.get(a.result, [])) == 1 and a.result not in graph.outputs \
            and why_not_row_local(a) is None and why_not_row_local(b) is None

    lo = hi = peak
    while lo > 0 and peak - lo + 1 < MAX_LAYERS and joined(order[lo - 1], order[lo]):
        lo -= 1
    while hi + 1 < len(order) and hi - peak + 1 < MAX_LAYERS and joined(order[hi], order[hi + 1]):
        hi += 1
    return [(a, b) for a in range(lo, peak + 1) for b in range(peak, hi + 1) if b - a < MAX_LAYERS]


def candidates(graph, plan, backend, limit: int, progress=None) -> list:
    """Candidates weighed for each run through the peak: the fewest rows per strip (the smallest arena the
    run gives) and, when that fits, the most rows that still fit (the cheapest), found by bisection (more
    rows never need less memory). `progress(label, done, total)`, when given, hears of each run weighed."""
    order, found = plan.order, []
    runs = _runs(graph, order, plan.peak_step)
    for done, (a, b) in enumerate(runs):
        if progress is not None:
            progress("tiling search", done, len(runs))
        layers = order[a:b + 1]
        height = layers[-1].result.type.shape[1]
        plain = sum(macs(op) for op in layers)
        weighed = {}

        def weigh(rows):
            if rows not in weighed:
                op = _stand_in(layers, rows)
                weighed[rows] = None
                if backend.why_not(op) is None:
                    p = plan_ops(order[:a] + [op] + order[b + 1:], graph.inputs, graph.outputs, backend,
                                 same={op.result: layers[-1].result})
                    calls = -(-height // rows) * len(layers)
                    cost = computed_macs(layers, rows, macs) - plain + calls * CALL_MACS
                    weighed[rows] = Candidate(a, b, rows, p.arena_bytes, cost)
            return weighed[rows]

        options = [r for r in ROWS if r < height]
        if not options or weigh(options[0]) is None:
            continue
        lo, hi = 0, len(options) - 1  # options[lo] fits (when the fewest rows do)
        while lo < hi and weigh(options[0]).arena <= limit:
            mid = (lo + hi + 1) // 2
            c = weigh(options[mid])
            lo, hi = (mid, hi) if c is not None and c.arena <= limit else (lo, mid - 1)
        found += [c for c in weighed.values() if c is not None]
    if progress is not None:
        progress("tiling search", len(runs), len(runs))
    return found


def apply(graph, order: list, c: Candidate) -> None:
    """Replace the run by a tiled op whose body owns the layers and the constants they read."""
    layers = order[c.first:c.last + 1]
    x, y = layers[0].operands[0], layers[-1].result
    inner_x, inner_y = Value(x.name, x.type), Value(y.name, y.type)
    layers[0].operands[0] = inner_x
    layers[-1].results = [inner_y]
    inner_y.producer = layers[-1]
    outside = {v for op in order if op not in layers for v in op.inputs()} | set(graph.outputs)
    constants = []
    for op in layers:
        for j, v in enumerate(op.operands):
            if v is not None and v.is_const:
                if v in outside:  # also read outside: the body gets its own copy
                    v = op.operands[j] = Value(v.name, v.type, v.data)
                if v not in constants:
                    constants.append(v)
    body = Graph("strips", [inner_x], [inner_y], ops=list(layers), constants=constants)
    tiled = Op("tiled", [x], [y], {"rows": c.rows}, layers[0].name, regions=[body])
    graph.ops = order[:c.first] + [tiled] + order[c.last + 1:]
    graph.constants = [v for v in graph.constants if v not in set(constants)]


@register("fit_memory")
def run(graph, ctx):
    backend = ctx.backend if ctx else None
    budget, given = sram_budget(ctx)
    if not budget or backend is None:
        return graph
    limit = budget - stack_bytes(ctx.target)
    plan = best_plan(graph, backend)
    while plan.arena_bytes > limit:
        found = candidates(graph, plan, backend, limit, ctx.options.get("progress"))
        fitting = [c for c in found if c.arena <= limit]
        if fitting:
            pick = min(fitting, key=lambda c: (c.cost, c.arena, c.first, -c.rows))
        else:
            pick = min(found, key=lambda c: (c.arena, c.cost, c.first, -c.rows), default=None)
            if pick is None or pick.arena >= plan.arena_bytes:
                raise refuse(plan.arena_bytes + budget - limit, plan.peak_op, given, ctx.options.get("file", ""))
        apply(graph, plan.order, pick)
        plan = best_plan(graph, backend)
    return graph
