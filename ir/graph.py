"""Values, ops and graphs: the IR as plain data.

A graph is in SSA form: every Value is defined once, by an Op result, a graph input, or a
constant (a Value holding `data`). Ops keep their operands in order; a missing optional operand
is None. An op may hold nested graphs in `regions` (a partition handed to another backend).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

import numpy as np

from .types import TensorType


def fresh_name(base: str, taken: set, reserve: bool = True) -> str:
    """`base`, or `base_1`, `base_2`, ...: the first not in `taken` (added to it when `reserve`)."""
    name, i = base, 1
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    if reserve:
        taken.add(name)
    return name


@dataclass(eq=False)
class Value:
    name: str
    type: TensorType
    data: Optional[np.ndarray] = None  # set for constants: stored values (integers when quantized)
    producer: Optional["Op"] = field(default=None, repr=False)

    @property
    def is_const(self) -> bool:
        return self.data is not None

    def __repr__(self):
        return f"Value(%{self.name})"


@dataclass(eq=False)
class Op:
    kind: str
    operands: list  # list[Optional[Value]]
    results: list  # list[Value]
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""  # the layer's name (from the model), used for C function names
    regions: list = field(default_factory=list)  # list[Graph]

    def __post_init__(self):
        for r in self.results:
            r.producer = self

    @property
    def result(self) -> Value:
        assert len(self.results) == 1, f"{self.kind} has {len(self.results)} results"
        return self.results[0]

    def inputs(self) -> list:
        """The operands that are present (missing optional ones skipped)."""
        return [v for v in self.operands if v is not None]

    def __repr__(self):
        return f"Op({self.kind} {self.name!r})"


@dataclass(eq=False)
class Graph:
    name: str
    inputs: list  # list[Value]
    outputs: list  # list[Value]
    ops: list = field(default_factory=list)  # topological order
    constants: list = field(default_factory=list)  # Values with data, in print order
    meta: dict = field(default_factory=dict)  # analysis results (e.g. the memory plan); never printed

    # ---- queries -------------------------------------------------------------------------
    def values(self) -> Iterator[Value]:
        yield from self.inputs
        yield from self.constants
        for op in self.ops:
            yield from op.results

    def users(self) -> dict:
        """Map each Value to the list of ops that read it (in op order)."""
        use: dict = {}
        for op in self.ops:
            for v in op.operands:
                if v is not None:
                    use.setdefault(v, []).append(op)
        return use

    def op_by_name(self, name: str) -> Optional[Op]:
        return next((op for op in self.ops if op.name == name), None)

    # ---- edits ---------------------------------------------------------------------------
    def replace_uses(self, old: Value, new: Value) -> None:
        """Make every reader of `old` (ops and graph outputs) read `new` instead."""
        for op in self.ops:
            op.operands = [new if v is old else v for v in op.operands]
        self.outputs = [new if v is old else v for v in self.outputs]

    def remove_dead(self) -> None:
        """Drop ops none of whose results is used, and constants nobody reads."""
        changed = True
        while changed:
            live = set(self.outputs)
            for op in self.ops:
                live.update(v for v in op.operands if v is not None)
            keep = [op for op in self.ops if any(r in live for r in op.results)]
            changed = len(keep) != len(self.ops)
            self.ops = keep
        live = set(self.outputs)
        for op in self.ops:
            live.update(v for v in op.operands if v is not None)
        self.constants = [c for c in self.constants if c in live]

    def add_constant(self, name: str, data: np.ndarray, type: TensorType) -> Value:
        # np.require keeps rank-0 data rank 0 (np.ascontiguousarray would make it shape (1,))
        v = Value(self.unique_name(name), type, np.require(data, requirements="C"))
        self.constants.append(v)
        return v

    def unique_name(self, base: str) -> str:
        return fresh_name(base, {v.name for v in self.values()}, reserve=False)

    def toposort(self) -> None:
        """Order ops so that every operand is defined before use (stable for sorted input)."""
        defined = set(self.inputs) | set(self.constants)
        pending, order = list(self.ops), []
        while pending:
            rest = []
            for op in pending:
                if all(v is None or v in defined for v in op.operands):
                    order.append(op)
                    defined.update(op.results)
                else:
                    rest.append(op)
            if len(rest) == len(pending):
                raise ValueError(f"graph has a cycle or an undefined value near {rest[0]!r}")
            pending = rest
        self.ops = order
