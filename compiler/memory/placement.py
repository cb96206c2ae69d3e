"""Offsets in one arena for buffers whose lifetimes are known: greedy placement of rigid groups.

A Block is one buffer, live from step `first` to step `last` (both included). Blocks that share
storage (an operator writing its result over an operand) form a Group, placed as one rigid piece:
each block keeps its offset inside the group. Two blocks may overlap in the arena only if their
lifetimes do not, or if they belong to the same group.

Placement is greedy: groups in a chosen order, each at the position (0, or just above a block it
must avoid) that keeps the arena lowest, the lowest such position on a tie. Several orders are
tried (largest first, as TFLite Micro's greedy planner does, then longest-lived first, then by
first use) and the smallest arena wins; the result is deterministic.
"""
from __future__ import annotations

from dataclasses import dataclass, field

ALIGN = 16


def align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass
class Block:
    key: object  # what the caller places (a Value, an op's scratch, ...)
    size: int
    first: int
    last: int
    rel: int = 0  # offset inside its group

    def meets(self, other: "Block") -> bool:
        """Are both live at some step?"""
        return self.first <= other.last and other.first <= self.last


@dataclass
class Group:
    blocks: list = field(default_factory=list)
    offset: int = -1  # of the group in the arena, once placed

    @property
    def extent(self) -> int:
        return max((b.rel + b.size for b in self.blocks), default=0)

    @property
    def largest(self) -> int:
        return max((b.size for b in self.blocks), default=0)

    @property
    def first(self) -> int:
        return min(b.first for b in self.blocks)

    @property
    def last(self) -> int:
        return max(b.last for b in self.blocks)

    def normalize(self) -> None:
        """Shift the blocks so that the lowest starts at 0."""
        low = min((b.rel for b in self.blocks), default=0)
        for b in self.blocks:
            b.rel -= low


ORDERS = {
    "largest first": lambda g: (-g.largest, -g.extent, g.first),
    "longest lived first": lambda g: (-(g.last - g.first), -g.extent, g.first),
    "first use first": lambda g: (g.first, -g.extent),
}


def _place_in_order(groups: list) -> int:
    """Place groups in the given order, each at the lowest offset where it fits; return the arena size
    (offsets set on the groups)."""
    placed: list = []  # (block, absolute offset)
    top = 0
    for g in groups:
        first, last = g.first, g.last
        near = [(p, at) for p, at in placed if p.first <= last and first <= p.last]
        g.offset = _lowest_fit(g, near)
        top = max(top, g.offset + g.extent)
        placed += [(b, g.offset + b.rel) for b in g.blocks]
    return top


def _lowest_fit(g: Group, near: list) -> int:
    """The lowest offset >= 0 for group g where none of its blocks overlaps a placed block live at the same
    time (`near`: the (block, offset) pairs live during g's lifetime).

    Each such pair forbids the group the offsets from `lo` to `hi - 1` below; one sweep by `lo` finds the
    lowest offset outside them all. That is where the greedy placement puts a group (the lowest position,
    being the lowest arena top too), found in n log n rather than by trying every candidate position
    against every placed block, which takes minutes on graphs of a few thousand ops."""
    blocked = sorted((at - b.rel - b.size + 1, at + p.size - b.rel)
                     for b in g.blocks for p, at in near if p.first <= b.last and b.first <= p.last)  # b.meets(p)
    pos = 0
    for lo, hi in blocked:
        if lo > pos:
            break
        pos = max(pos, hi)
    return pos


def place(groups: list) -> int:
    """Give every group an offset; return the arena size (the best of the ORDERS)."""
    best = None
    for key in ORDERS.values():
        order = sorted(range(len(groups)), key=lambda i: (key(groups[i]), i))
        size = _place_in_order([groups[i] for i in order])
        if best is None or size < best[0]:
            best = (size, [g.offset for g in groups])
    if best is None:
        return 0
    for g, off in zip(groups, best[1]):
        g.offset = off
    return best[0]
