"""Rewrite patterns declared as data, and the one driver that applies them.

A Pattern says which op kinds it starts from (its roots), a `match` function (the constraint:
look at the root op and the ops around it, return what was found or None) and a `replace`
function (build the new ops through the Rewriter, return the values that take the place of the
root's results). Passes are lists of patterns handed to `apply_patterns`; no pass walks the
graph by hand.

The driver, in the spirit of xDSL's pattern rewriter and tinygrad's PatternMatcher: walk the ops
in order, try the patterns declared for the op's kind, then those declared for every kind (each
group in declaration order; the first that matches and replaces wins),
splice the new ops in where the root was, send the root's readers to the new values, drop the
ops nobody reads any more, and sweep again until a whole sweep changes nothing.

Patterns usually match at the last op of a chain (an activation looks back at its producer), so
the producer's other readers are easy to check: `rw.only_user(v)` is the op reading `v` when it
is the only reader and `v` is not a graph output.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from edgecc.ir.graph import Op, Value, fresh_name
from edgecc.ir.ops import fill_defaults, infer_shapes
from edgecc.ir.types import TensorType

ANY = "*"  # a root kind meaning "every op kind"
MIN_SWEEPS = 100  # a bound on sweeps, against patterns that undo each other; grows with the graph


@dataclass(frozen=True)
class Pattern:
    """One rewrite rule.

    match(op, rw) -> anything truthy (handed to replace) or None when the rule does not apply.
    replace(op, found, rw) -> the values replacing op.results, in order (a single Value is
    accepted for one-result ops), or None to give up after all.
    """

    name: str
    roots: tuple  # op kinds the rule starts from; (ANY,) for every kind
    match: Callable[[Op, "Rewriter"], Any]
    replace: Callable[[Op, Any, "Rewriter"], Any]


class Rewriter:
    """What patterns see: queries on the graph, and builders for new ops and constants."""

    def __init__(self, graph, ctx=None):
        self.graph = graph
        self.ctx = ctx
        self._users = None
        self._taken = {v.name for v in graph.values()}
        self._pending: list = []

    # ---- queries ---------------------------------------------------------------------------
    def users(self, v: Value) -> list:
        if self._users is None:
            self._users = self.graph.users()
        return self._users.get(v, [])

    def is_output(self, v: Value) -> bool:
        return any(o is v for o in self.graph.outputs)

    def only_user(self, v: Value) -> Optional[Op]:
        """The op reading `v` when it is the only reader and `v` is not a graph output."""
        us = self.users(v)
        if len(us) != 1 or self.is_output(v):
            return None
        return us[0]

    def producer(self, v: Optional[Value], *kinds) -> Optional[Op]:
        """The op defining `v` (None for inputs, constants, or when its kind is not in `kinds`)."""
        if v is None or v.is_const or v.producer is None:
            return None
        if kinds and v.producer.kind not in kinds:
            return None
        return v.producer

    def can_bypass(self, old: Value, new: Value) -> bool:
        """Whether `old`'s readers may read `new` instead: a graph output must stay computed by
        an op, so it cannot become a graph input, a constant or another output."""
        if not self.is_output(old):
            return True
        defined_by_op = not new.is_const and new.producer is not None and new not in self.graph.inputs
        return defined_by_op and not self.is_output(new)

    # ---- builders --------------------------------------------------------------------------
    def name(self, base: str) -> str:
        """A value name not yet used in the graph, derived from `base`."""
        return fresh_name(base, self._taken)

    def value(self, base: str, type: TensorType) -> Value:
        return Value(self.name(base), type)

    def const(self, base: str, data, type: TensorType) -> Value:
        """A new constant holding `data` (cast to the type's element type)."""
        # np.require keeps rank-0 data rank 0 (np.ascontiguousarray would make it shape (1,))
        v = Value(self.name(base), type, np.require(np.asarray(data).astype(type.np_dtype), requirements="C"))
        assert v.data.shape == tuple(type.shape), f"constant {base}: data {v.data.shape} vs type {type.shape}"
        self.graph.constants.append(v)
        return v

    def to_const(self, v: Value, data) -> Value:
        """Turn the result `v` into a constant holding `data` (its readers keep reading it)."""
        v.data = np.ascontiguousarray(np.asarray(data).astype(v.type.np_dtype))
        v.producer = None
        self.graph.constants.append(v)
        return v

    def op(self, kind: str, operands: list, attrs: Optional[dict] = None, results=None, name: str = "") -> Op:
        """A new op, spliced in where the root was. Each entry of `results` is a TensorType (a
        fresh value named after the op), a (base name, TensorType) pair, or an existing Value the
        new op now defines (so a fused op keeps the name its last op's result had). Attributes
        get their defaults; the result shapes are checked against the op's shape rule."""
        made = []
        for i, r in enumerate(results or []):
            if isinstance(r, tuple):
                r = self.value(*r)
            elif isinstance(r, TensorType):
                r = self.value(f"{name or kind}_out{i}" if i else (name or kind), r)
            made.append(r)
        op = Op(kind, list(operands), made, fill_defaults(kind, attrs or {}), name)
        shapes = infer_shapes(op)
        if shapes is not None:
            for r, s in zip(op.results, shapes):
                assert tuple(r.type.shape) == tuple(s), f"{kind} '{name}': result shape {r.type.shape} vs rule {s}"
        self._pending.append(op)
        return op

    # ---- the driver's side -----------------------------------------------------------------
    def _forward(self, old: Value, new: Value) -> None:
        """Send old's readers to new; a graph output keeps its name on the value now computing it."""
        renamed = self.is_output(old) and not self.is_output(new) and not new.is_const \
            and new not in self.graph.inputs
        self.graph.replace_uses(old, new)
        if renamed:
            new.name = old.name

    def _commit(self, root: Op, new_values) -> None:
        ops = self.graph.ops
        at = ops.index(root)
        ops[at:at + 1] = self._pending
        made = {r for op in self._pending for r in op.results}
        for old, new in zip(root.results, new_values):
            if new is old:
                assert old in made or old.is_const, f"{root!r}: kept result %{old.name} but nothing defines it"
                continue
            self._forward(old, new)
        self._pending = []
        self._users = None


def _by_kind(patterns) -> dict:
    table: dict = {}
    for p in patterns:
        for k in p.roots:
            table.setdefault(k, []).append(p)
    return table


def apply_patterns(graph, patterns, ctx=None, record: str = "", max_sweeps: Optional[int] = None) -> Counter:
    """Apply `patterns` to `graph` (in place) until none matches; return how often each fired
    (also kept in graph.meta["rewrites"][record] when `record` names the pass, for reports)."""
    max_sweeps = max_sweeps or max(MIN_SWEEPS, 2 * len(graph.ops))
    table = _by_kind(patterns)
    fired: Counter = Counter()
    rw = Rewriter(graph, ctx)
    graph.remove_dead()
    for _ in range(max_sweeps):
        changed = False
        live = set(graph.ops)
        for op in list(graph.ops):
            if op not in live:  # replaced or dropped earlier in this sweep
                continue
            for p in table.get(op.kind, []) + table.get(ANY, []):
                found = p.match(op, rw)
                if not found:
                    continue
                new = p.replace(op, found, rw)
                if new is None:
                    rw._pending = []
                    continue
                rw._commit(op, [new] if isinstance(new, Value) else list(new))
                graph.remove_dead()
                live = set(graph.ops)
                fired[p.name] += 1
                changed = True
                break
        if not changed:
            graph.remove_dead()
            if record:
                graph.meta.setdefault("rewrites", {})[record] = dict(fired)
            return fired
        graph.toposort()
    raise RuntimeError(f"rewrite patterns did not settle after {max_sweeps} sweeps: {dict(fired)}")
