"""The greedy placement and the live-bytes timeline of the memory plan, against the plain algorithms
they are the fast forms of (kept here as the reference): the same offsets, arena and timeline on
random groups of buffers, single and in-place chains, with overlapping lifetimes."""
import numpy as np
import pytest

from edgecc.compiler.memory.placement import ORDERS, Block, Group, _place_in_order, place
from edgecc.compiler.memory.plan import _live_bytes, _timeline

rng = np.random.default_rng(0)


def reference_place_in_order(groups: list) -> int:
    """Every candidate position (0, or just above a block live at the same time) tried against every
    placed block; the lowest arena top wins, then the lowest position."""
    placed, top = [], 0
    for g in groups:
        candidates = {0} | {at + p.size - b.rel for b in g.blocks for p, at in placed if b.meets(p)}
        best = None
        for pos in sorted(c for c in candidates if c >= 0):
            if all(not b.meets(p) or pos + b.rel + b.size <= at or at + p.size <= pos + b.rel
                   for b in g.blocks for p, at in placed):
                score = (max(top, pos + g.extent), pos)
                best = score if best is None or score < best else best
        top, g.offset = best
        placed += [(b, g.offset + b.rel) for b in g.blocks]
    return top


def random_groups(steps: int, count: int) -> list:
    """Buffers of random sizes and lifetimes; some chained into groups as in-place ops make them (each
    block at an offset inside its group, the lowest at 0). Sizes and offsets are not aligned: aligned
    ones would hide off-by-one errors at the edges of the gaps."""
    groups = []
    for _ in range(count):
        first = int(rng.integers(0, steps))
        blocks = []
        for _ in range(int(rng.choice([1, 1, 1, 2, 3]))):
            last = min(steps, first + int(rng.integers(0, 6)))
            blocks.append(Block(object(), int(rng.integers(0, 130)), first, last, rel=int(rng.integers(0, 50))))
            first = last
        g = Group(blocks)
        g.normalize()
        groups.append(g)
    return groups


@pytest.mark.parametrize("seed", range(20))
def test_placement_matches_the_candidate_search(seed):
    groups = random_groups(steps=30, count=40)
    for key in ORDERS.values():
        order = sorted(groups, key=key)
        want = reference_place_in_order(order)
        want_offsets = [g.offset for g in order]
        assert _place_in_order(order) == want
        assert [g.offset for g in order] == want_offsets
    assert place(groups) == min(reference_place_in_order(sorted(groups, key=k)) for k in ORDERS.values())


@pytest.mark.parametrize("seed", range(20))
def test_timeline_matches_live_bytes_per_step(seed):
    groups = random_groups(steps=30, count=40)
    assert _timeline(groups, 30) == [_live_bytes(groups, i) for i in range(30)]
