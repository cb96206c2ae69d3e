"""What every memory plan must satisfy, checked from the graph and the plan alone (shared by the planner,
fit_memory and in-place tests):

  - two values live at the same step never overlap in the arena, except an operand and the result an
    op writes over it, placed exactly as the backend asked;
  - an op runs in place only over an operand that dies there (no later reader, through any view, and
    not a graph output) and that the backend lists for it;
  - scratch overlaps nothing live at its step;
  - the timeline's maximum is the lower bound, and the arena is at least that and holds everything.
"""
from __future__ import annotations

from edgecc.compiler.memory import is_view, view_roots


def lifetimes(graph, plan) -> dict:
    """storage value -> [first step, last step] (inputs from 0, outputs to the end), over plan.order."""
    order = plan.order
    root = view_roots(order)
    key = lambda v: root.get(v, v)  # noqa: E731
    life = {}

    def touch(v, step):
        k = key(v)
        if not k.is_const:
            lo, hi = life.get(k, (step, step))
            life[k] = (min(lo, step), max(hi, step))

    for v in graph.inputs:
        touch(v, 0)
    for i, op in enumerate(order):
        for v in op.inputs() + op.results:
            touch(v, i)
    for v in graph.outputs:
        touch(v, len(order))
    return life


def check_plan(graph, plan, backend=None) -> None:
    order = plan.order
    assert sorted(map(id, order)) == sorted(map(id, graph.ops)), "the plan orders the graph's ops"
    life = lifetimes(graph, plan)
    span = {k: (plan.offsets[k], plan.offsets[k] + k.type.nbytes) for k in life}
    for k, (lo, hi) in span.items():
        assert 0 <= lo and hi <= plan.arena_bytes, f"%{k.name} lies outside the arena"
    shared = {}  # (operand storage, result) of each in-place op -> step
    root = view_roots(order)
    outputs = {root.get(v, v) for v in graph.outputs}
    for i, op in enumerate(order):
        if op not in plan.inplace:
            continue
        j = plan.inplace[op]
        v = op.operands[j]
        k = root.get(v, v)
        assert k not in outputs, f"{op.name} writes over a graph output"
        assert life[k][1] == i, f"{op.name} writes over %{k.name}, which is read after it"
        offset = span[k][0] - span[op.result][0]
        if backend is not None:
            assert (j, offset) in backend.inplace_operands(op), f"{op.name}: in place at {offset}, not as asked"
        shared[(k, op.result)] = shared[(op.result, k)] = i
    keys = list(life)
    for a_i, a in enumerate(keys):
        for b in keys[a_i + 1:]:
            (fa, la), (fb, lb) = life[a], life[b]
            if fa <= lb and fb <= la and (a, b) not in shared:
                (a0, a1), (b0, b1) = span[a], span[b]
                assert a1 <= b0 or b1 <= a0, f"%{a.name} and %{b.name} are live together and overlap"
    for i, op in enumerate(order):
        if op in plan.scratch:
            s0, size = plan.scratch[op]
            s1 = s0 + size
            assert s1 <= plan.arena_bytes
            for k, (f, last) in life.items():
                if f <= i <= last:
                    assert span[k][1] <= s0 or s1 <= span[k][0], f"scratch of {op.name} overlaps %{k.name}"
            for other, (o0, osize) in plan.scratch.items():
                if other is not op and order.index(other) == i:
                    assert s1 <= o0 or o0 + osize <= s0
    assert plan.lower_bound == max(plan.timeline, default=0) <= plan.arena_bytes
    assert not any(is_view(op) and op in plan.inplace for op in order)
