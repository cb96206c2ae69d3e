"""The memory plan of ops in a given order: lifetimes, in-place sharing, offsets, the timeline.

Every activation gets one buffer, live from the step that writes it to the last step that reads
it (graph inputs from the start, graph outputs to the end). A view (reshape or identity of the
same element type) is its operand's bytes under another shape: it shares its source's buffer and
costs no step of work. An op may ask the backend for scratch bytes, live only while it runs.

An op may write its result over an operand (in place) when the backend says its kernel can
(`backend.inplace_operands(op)`: operand index and the byte offset of that operand's buffer inside
the result's, see backends/c/inplace.py) and the operand dies at that op: it is not read later,
through any view, and is not a graph output. Both buffers then form one group, placed as a unit.

The timeline is the bytes live at each step, counting a group's live buffers once where they
overlap; its maximum is the lower bound no placement can beat, which the plan reports next to the
arena it achieved.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .placement import Block, Group, align, place

VIEW_OPS = ("reshape", "identity")
MAX_SHARING_TRIALS = 64  # see without_needless_sharing


def is_view(op) -> bool:
    """An op whose result is its operand's bytes, reinterpreted: no code, no buffer."""
    x = op.operands[0] if op.operands else None
    return op.kind in VIEW_OPS and x is not None and not x.is_const and x.type.dtype == op.result.type.dtype \
        and x.type.quant == op.result.type.quant


def view_roots(ops) -> dict:
    """Map each view value to the value whose storage it shares."""
    root = {}
    for op in ops:
        if is_view(op):
            src = op.operands[0]
            root[op.result] = root.get(src, src)
    return root


@dataclass
class MemoryPlan:
    arena_bytes: int
    lower_bound: int  # the largest sum of bytes live at any step
    offsets: dict = field(default_factory=dict)  # Value -> arena offset
    scratch: dict = field(default_factory=dict)  # Op -> (offset, size)
    timeline: list = field(default_factory=list)  # bytes live at each op's step
    inplace: dict = field(default_factory=dict)  # Op -> index of the operand its result overwrites
    order: list = field(default_factory=list)  # the ops, in the order planned
    peak_step: int = -1  # the step where the timeline reaches the lower bound
    budget: int = 0  # the SRAM budget it was planned for (0: none), arena and stack
    stack: int = 0  # bytes of that budget kept for the stack

    @property
    def peak_op(self):
        return self.order[self.peak_step] if 0 <= self.peak_step < len(self.order) else None


def _inplace_options(backend, op) -> list:
    ask = getattr(backend, "inplace_operands", None)
    return list(ask(op)) if ask is not None and not is_view(op) else []


def plan_ops(ops: list, inputs: list, outputs: list, backend=None, same=None, shared=None) -> MemoryPlan:
    """Plan the arena for `ops` run in this order. `same`: values to take as other values (a stand-in op's
    result as the result of the ops it stands for, when a pass weighs a rewrite it has not made).
    `shared`: when given, exactly these ops may run in place (else any the backend allows, where that does
    not make the arena larger)."""
    n = len(ops)
    root = view_roots(ops)
    root.update(same or {})
    blocks: dict = {}  # storage value -> Block

    def touch(v, step):
        k = root.get(v, v)
        if k.is_const:
            return
        b = blocks.get(k)
        if b is None:
            blocks[k] = Block(k, align(k.type.nbytes), step, step)
        else:
            b.first, b.last = min(b.first, step), max(b.last, step)

    for v in inputs:
        touch(v, 0)
    for i, op in enumerate(ops):
        for v in op.inputs():
            touch(v, i)
        for r in op.results:
            touch(r, i)
    for v in outputs:
        touch(v, n)

    scratch_groups = {}
    for i, op in enumerate(ops):
        need = backend.scratch_bytes(op) if backend is not None and not is_view(op) else 0
        if need:
            scratch_groups[op] = Group([Block(("scratch", op), align(need), i, i)])
    links = [link for link in _inplace_links(ops, root, blocks, {root.get(v, v) for v in outputs}, backend)
             if shared is None or link[1] in shared]
    loose = None
    if links and shared is None:  # rigid groups can pack worse than loose buffers: sharing must not cost bytes
        loose = place(_unique(_share(blocks, [], None, scratch_groups)[0]) + list(scratch_groups.values()))
    # every link taken gives the lowest timeline; a link whose group grows wider than both that bound and
    # what the step would hold without it is dropped (see _share)
    group_of, _ = _share(blocks, links, None, scratch_groups)
    bound = max(_timeline(_unique(group_of) + list(scratch_groups.values()), n), default=0)
    group_of, inplace = _share(blocks, links, bound, scratch_groups)
    everything = _unique(group_of) + list(scratch_groups.values())
    arena = place(everything)
    if loose is not None and loose < arena:
        return plan_ops(ops, inputs, outputs, backend, same, shared=set())
    timeline = _timeline(everything, n)
    peak = max(timeline, default=0)
    plan = MemoryPlan(arena, peak, timeline=timeline, inplace=inplace, order=list(ops),
                      peak_step=timeline.index(peak) if timeline else -1)
    for v in list(inputs) + [r for op in ops for r in op.results] + list(outputs):
        k = root.get(v, v)
        if k in blocks:
            plan.offsets[v] = group_of[k].offset + blocks[k].rel
    plan.scratch = {op: (g.offset, g.blocks[0].size) for op, g in scratch_groups.items()}
    return plan


def without_needless_sharing(plan: MemoryPlan, inputs: list, outputs: list, backend) -> MemoryPlan:
    """The plan with in-place sharing kept only where it keeps the arena small: an op writing over its
    operand gives up `restrict` on both, which can cost its loops speed (measured: 0.7% of the
    instructions of vww_int8 on Cortex-M7, all in the depthwise layers), so each sharing the arena does not
    need is dropped, in step order, again while that drops any (one dropped can free another).

    Each trial plans the whole graph again, so past MAX_SHARING_TRIALS sharing ops (the MLPerf Tiny models
    have at most 14) every sharing is kept: trials would grow with the cube of the graph's size."""
    if len(plan.inplace) > MAX_SHARING_TRIALS:
        return plan
    shared, dropped = set(plan.inplace), True
    while dropped:
        dropped = False
        for op in [op for op in plan.order if op in shared]:
            trial = plan_ops(plan.order, inputs, outputs, backend, shared=shared - {op})
            if trial.arena_bytes <= plan.arena_bytes:
                shared.discard(op)
                plan, dropped = trial, True
    return plan


def _inplace_links(ops, root, blocks, kept, backend) -> list:
    """(step, op, operand index, operand's storage, result's storage, offset): each op that may write its
    result over an operand dying there (the first such operand the backend lists)."""
    links = []
    for i, op in enumerate(ops):
        if len(op.results) != 1 or root.get(op.result, op.result) not in blocks:
            continue
        for j, offset in _inplace_options(backend, op):
            v = op.operands[j]
            k = root.get(v, v) if v is not None else None
            if k is not None and not k.is_const and k not in kept and blocks[k].last == i:
                links.append((i, op, j, k, root.get(op.result, op.result), offset))
                break
    return links


def _unique(group_of: dict) -> list:
    return list({id(g): g for g in group_of.values()}.values())


def _share(blocks: dict, links: list, bound, scratch_groups: dict):
    """The group of each buffer after taking the in-place links in step order; with a `bound`, a link is dropped
    when it would make its group wider than both the bound and the bytes its step holds without it
    (expanding layers in place each push the result below the operand: a long chain of them would
    otherwise grow one rigid group far beyond what is ever live at once)."""
    for b in blocks.values():
        b.rel = 0
    group_of = {k: Group([b]) for k, b in blocks.items()}
    extent = {id(g): g.extent for g in group_of.values()}  # kept as blocks join: g.extent walks them all
    live_at = _live_at({i for i, *_ in links}, blocks, scratch_groups) if bound is not None else {}
    inplace = {}
    for i, op, j, k, result, offset in links:
        g, mine, theirs = group_of[k], blocks[result], blocks[k]
        mine.rel = theirs.rel - offset
        low = min(0, mine.rel)  # a group's lowest block is at 0 (normalized as each joins)
        wide = max(extent[id(g)], mine.rel + mine.size) - low
        if bound is not None:
            live = (scratch or group_of[key] for key, scratch in live_at[i])
            others = {id(h): h for h in live if h is not g and h is not group_of[result]}
            apart = mine.size + theirs.size + _live_bytes(others.values(), i)
            if wide > max(bound, apart):
                mine.rel = 0
                continue
        g.blocks.append(mine)
        if low < 0:
            g.normalize()
        extent[id(g)] = wide
        group_of[result] = g
        inplace[op] = j
    return group_of, inplace


def _live_at(steps: set, blocks: dict, scratch_groups: dict) -> dict:
    """For each of `steps`, (key, scratch group or None) of every block live there: what _share asks about
    at an in-place link's step, without walking every group for each link."""
    live = {i: [] for i in steps}
    for k, b in blocks.items():
        for i in range(b.first, b.last + 1):
            if i in live:
                live[i].append((k, None))
    for g in scratch_groups.values():
        b = g.blocks[0]
        if b.first in live:
            live[b.first].append((b.key, g))
    return live


def _timeline(groups: list, n: int) -> list:
    """Bytes live at each step 0..n-1, as [_live_bytes(groups, i) for i in range(n)] but in time
    proportional to the blocks' lifetimes instead of steps times groups."""
    starts, ends = [0] * (n + 1), [0] * (n + 1)  # bytes added from a step on, and from a step no longer
    for g in groups:
        if len(g.blocks) == 1:
            b = g.blocks[0]
            lo, hi = max(b.first, 0), min(b.last, n - 1)
            if lo <= hi:
                starts[lo] += b.size
                ends[hi + 1] += b.size
            continue
        # the blocks live change only where one starts or ends: one span per segment between such steps
        cuts = sorted({b.first for b in g.blocks} | {b.last + 1 for b in g.blocks} | {n})
        by_first, started, live = sorted(g.blocks, key=lambda b: b.first), 0, []
        for lo, hi in zip(cuts, cuts[1:]):
            if lo >= n:
                break
            while started < len(by_first) and by_first[started].first <= lo:
                live.append(by_first[started])
                started += 1
            live = [b for b in live if b.last >= lo]
            if live:
                span = max(b.rel + b.size for b in live) - min(b.rel for b in live)
                starts[lo] += span
                ends[hi] += span
    timeline, running = [], 0
    for i in range(n):
        running += starts[i] - ends[i]
        timeline.append(running)
    return timeline


def _live_bytes(groups, step: int) -> int:
    """Bytes live at `step`: per group, the span of its blocks live then."""
    total = 0
    for g in groups:
        live = [b for b in g.blocks if b.first <= step <= b.last]
        if live:
            total += max(b.rel + b.size for b in live) - min(b.rel for b in live)
    return total
