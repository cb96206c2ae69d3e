"""Static memory plan: give every activation an offset in one arena, from liveness.

Rewrites nothing; it records `graph.meta["memory_plan"]` (a MemoryPlan) for the backend, so the
generated code allocates nothing at run time. Values that are views of another (reshape,
identity: the same bytes under another shape) share their source's buffer. Each op may ask the
backend for scratch bytes, live only during that op. Placement is greedy best fit, largest
buffers first; the plan reports the lower bound it is measured against (the largest sum of
bytes live at any step).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import register

ALIGN = 16
VIEW_OPS = ("reshape", "identity")


@dataclass
class Buffer:
    name: str
    size: int
    first: int  # step of definition (graph inputs: 0)
    last: int  # step of last use (graph outputs: the end)
    offset: int = -1


@dataclass
class MemoryPlan:
    arena_bytes: int
    lower_bound: int
    offsets: dict = field(default_factory=dict)  # Value -> arena offset
    scratch: dict = field(default_factory=dict)  # Op -> (offset, size)
    timeline: list = field(default_factory=list)  # live bytes at each op step


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def is_view(op) -> bool:
    """An op whose result is its operand's bytes, reinterpreted: no code, no buffer."""
    return op.kind in VIEW_OPS and op.operands[0] is not None and not op.operands[0].is_const \
        and op.operands[0].type.dtype == op.result.type.dtype and op.operands[0].type.quant == op.result.type.quant


def view_roots(graph) -> dict:
    """Map each view value to the value whose storage it shares."""
    root = {}
    for op in graph.ops:
        if is_view(op):
            src = op.operands[0]
            root[op.result] = root.get(src, src)
    return root


def place(buffers: list) -> int:
    """Assign offsets (best fit among gaps left by time-overlapping buffers); return the arena size."""
    placed = []
    for b in sorted(buffers, key=lambda b: (-b.size, b.first, b.name)):
        busy = sorted((p.offset, p.offset + p.size) for p in placed if p.first <= b.last and b.first <= p.last)
        best, best_gap, cursor = None, None, 0
        for lo, hi in busy:
            gap = lo - cursor
            if gap >= b.size and (best_gap is None or gap < best_gap):
                best, best_gap = cursor, gap
            cursor = max(cursor, hi)
        b.offset = best if best is not None else cursor
        placed.append(b)
    return max((b.offset + b.size for b in placed), default=0)


@register("memory_plan")
def run(graph, ctx):
    n = len(graph.ops)
    root = view_roots(graph)
    bufs: dict = {}

    def buf(v, step):
        r = root.get(v, v)
        if r.is_const:
            return None
        b = bufs.get(r)
        if b is None:
            b = bufs[r] = Buffer(r.name, _align(r.type.nbytes), step, step)
        b.first, b.last = min(b.first, step), max(b.last, step)
        return b

    for v in graph.inputs:
        buf(v, 0)
    scratch_bufs = {}
    for i, op in enumerate(graph.ops):
        for v in op.inputs():
            buf(v, i)
        for r in op.results:
            buf(r, i)
        need = ctx.backend.scratch_bytes(op) if ctx and ctx.backend else 0
        if need:
            scratch_bufs[op] = Buffer(f"scratch:{op.name}", _align(need), i, i)
    for v in graph.outputs:
        buf(v, n)
    everything = list(bufs.values()) + list(scratch_bufs.values())
    arena = place(everything)
    timeline = [sum(b.size for b in everything if b.first <= i <= b.last) for i in range(n + 1)]
    plan = MemoryPlan(arena_bytes=arena, lower_bound=max(timeline, default=0), timeline=timeline)
    for v in graph.values():
        r = root.get(v, v)
        if r in bufs:
            plan.offsets[v] = bufs[r].offset
    plan.scratch = {op: (b.offset, b.size) for op, b in scratch_bufs.items()}
    graph.meta["memory_plan"] = plan
    return graph
