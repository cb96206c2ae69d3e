"""An execution order that keeps the peak of live bytes low, for graphs that branch.

On a chain there is one order. Where a graph branches (residual blocks, parallel towers), which
branch runs first decides what stays alive meanwhile. This searches the orders step by step: a
state is the set of ops done, and the bytes live in it depend on that set alone (a value lives
from its producer until its last reader is done; graph outputs to the end). Each state keeps the
lowest peak that reaches it (ties: the order closest to the given one), and each step keeps the
BEAM best states, so wide graphs stay affordable; on graphs of modest width the search is exact.
Each step weighs every ready op of every state kept, so the time grows with the beam times the square
of the ops: past a few dozen ops the beam narrows (to WORK / ops**2 states), and past MAX_OPS (ten times
the largest MLPerf Tiny model) the given order is kept, so that the search's time stays bounded.

The model counts whole buffers (no in-place sharing) plus each op's scratch; the memory plan
compares the order found here with the given one on its exact arena and keeps the better.
"""
from __future__ import annotations

from .placement import align
from .plan import view_roots

BEAM = 256
WORK = 1_000_000  # states times ops squared: a few seconds of search at most
MAX_OPS = 300


def schedule(ops: list, inputs: list, outputs: list, scratch_of=lambda op: 0) -> list:
    """The ops in an order with a low peak of live bytes (the given order when nothing is better)."""
    n = len(ops)
    if n < 3 or n > MAX_OPS:
        return list(ops)
    root = view_roots(ops)
    key = lambda v: root.get(v, v)  # noqa: E731
    producer = {}
    for i, op in enumerate(ops):
        for r in op.results:
            producer[r] = i
    size, readers = {}, {}
    deps, writes, reads = [0] * n, [[] for _ in range(n)], [[] for _ in range(n)]
    for i, op in enumerate(ops):
        for v in op.inputs():
            if v.is_const:
                continue
            k = key(v)
            readers[k] = readers.get(k, 0) | 1 << i
            reads[i].append(k)
            if v in producer:
                deps[i] |= 1 << producer[v]
        for r in op.results:
            if key(r) is r:
                writes[i].append(r)
                size[r] = align(r.type.nbytes)
    kept = {key(v) for v in outputs}
    live0 = sum(align(v.type.nbytes) for v in {key(v) for v in inputs})
    scratch = [align(scratch_of(op)) for op in ops]

    def step(done: int, live: int, i: int):
        """Run op i after `done`: (peak while it runs, live bytes after)."""
        now = done | 1 << i
        peak = live + sum(size[r] for r in writes[i]) + scratch[i]
        after = peak - scratch[i]
        for k in set(reads[i]) | set(writes[i]):
            if k not in kept and not readers.get(k, 0) & ~now:
                after -= size.get(k, align(k.type.nbytes))
        return peak, after

    beam = max(1, min(BEAM, WORK // (n * n)))
    states = {0: (0, live0, ())}  # done set -> (peak so far, live bytes, order as indices)
    for _ in range(n):
        nxt = {}
        for done, (peak, live, order) in states.items():
            for i in range(n):
                if done >> i & 1 or deps[i] & ~done:
                    continue
                p, after = step(done, live, i)
                cand = (max(peak, p), after, order + (i,))
                now = done | 1 << i
                if now not in nxt or (cand[0], cand[2]) < (nxt[now][0], nxt[now][2]):
                    nxt[now] = cand
        states = dict(sorted(nxt.items(), key=lambda kv: (kv[1][0], kv[1][1], kv[1][2]))[:beam])
    (_, _, order), = states.values()
    return [ops[i] for i in order]
