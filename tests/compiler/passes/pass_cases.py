"""Support for the pass tests: build small IR graphs by hand, run one pass, compare the printed
IR before and after with a golden file, and check with the interpreter that the numbers are kept.

Golden files live in tests/compiler/passes/golden/NAME.edgeir: the graph before the pass, then
after it. EDGECC_UPDATE_GOLDEN=1 rewrites them (read the diff before committing it).
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

from edgecc.compiler.passes import PassContext, get_pass
from edgecc.ir import Graph, Op, TensorType, Value, parse, print_graph, verify
from edgecc.ir.interp import run
from edgecc.ir.ops import fill_defaults, infer_shapes
from edgecc.ir.types import Quant

GOLDEN = Path(__file__).parent / "golden"


def q(scale, zero_point=0, axis=None) -> Quant:
    """Quant from a scalar or a list (per axis when `axis` is given)."""
    if axis is None:
        return Quant((float(scale),), (int(zero_point),))
    zp = zero_point if isinstance(zero_point, (list, tuple)) else [zero_point] * len(scale)
    return Quant(tuple(float(s) for s in scale), tuple(int(z) for z in zp), axis)


class Builder:
    """A graph written op by op; result types come from the op's shape rule unless given."""

    def __init__(self, name: str = "g"):
        self.g = Graph(name, [], [])
        self.rng = np.random.default_rng(0)

    def input(self, name, shape, dtype="f32", quant=None, layout=None) -> Value:
        v = Value(name, TensorType(tuple(shape), dtype, quant, layout))
        self.g.inputs.append(v)
        return v

    def const(self, name, data, dtype="f32", quant=None, layout=None) -> Value:
        t = TensorType(tuple(np.shape(data)), dtype, quant, layout)
        v = Value(name, t, np.ascontiguousarray(np.asarray(data).astype(t.np_dtype)))
        self.g.constants.append(v)
        return v

    def weights(self, name, shape, dtype="f32", quant=None, scale=0.5) -> Value:
        """A constant of random numbers (float) or random codes (integers)."""
        if dtype == "f32":
            data = self.rng.standard_normal(shape) * scale
        else:
            info = np.iinfo(TensorType((), dtype).np_dtype)
            lo, hi = (-100, 100) if dtype == "i32" else (info.min, info.max)
            data = self.rng.integers(lo, hi + 1, shape)
        return self.const(name, data, dtype, quant)

    def op(self, kind, operands, name=None, out_shape=None, dtype=None, quant=None, layout=None, nresults=1,
           **attrs):
        attrs = fill_defaults(kind, attrs)
        probe = Op(kind, list(operands), [Value(f"_{i}", TensorType((), "f32")) for i in range(nresults)], attrs)
        shapes = infer_shapes(probe) if out_shape is None else [tuple(out_shape)] * nresults
        first = next(v for v in operands if v is not None)
        dtype = dtype or first.type.dtype
        name = name or f"{kind}{len(self.g.ops)}"
        results = [Value(name if i == 0 else f"{name}_{i}", TensorType(tuple(s), dtype, quant, layout))
                   for i, s in enumerate(shapes[:nresults])]
        self.g.ops.append(Op(kind, list(operands), results, attrs, name))
        return results[0] if nresults == 1 else results

    def graph(self, *outputs) -> Graph:
        self.g.outputs = list(outputs)
        verify(self.g)
        return self.g


class FakeBackend:
    """A backend whose capabilities a test declares: why_not(op) is `refuse(op)`."""

    def __init__(self, refuse):
        self.refuse = refuse

    def why_not(self, op):
        return self.refuse(op)


def context(backend=None, **options) -> PassContext:
    return PassContext(target=None, backend=backend, options=options)


def assert_matches_golden(text: str, name: str):
    path = GOLDEN / f"{name}.edgeir"
    if os.environ.get("EDGECC_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if not path.exists():
        pytest.fail(f"no golden file {path.name}; run with EDGECC_UPDATE_GOLDEN=1 and read it", pytrace=False)
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        diff = difflib.unified_diff(expected.splitlines(True), text.splitlines(True), f"golden/{path.name}", "now")
        pytest.fail("the pass output differs from the golden file:\n" + "".join(diff), pytrace=False)


def random_inputs(graph, seed=0) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for v in graph.inputs:
        t = v.type
        if t.dtype == "f32":
            out.append(rng.standard_normal(t.shape).astype(np.float32))
        elif t.dtype == "i1":
            out.append(rng.random(t.shape) < 0.5)
        else:
            info = np.iinfo(t.np_dtype)
            out.append(rng.integers(max(info.min, -1000), min(info.max, 1000) + 1, t.shape).astype(t.np_dtype))
    return out


def assert_same_numbers(before: Graph, after: Graph, seeds=(0, 1, 2), codes: int = 0, rtol=1e-5, atol=1e-5):
    """Run both graphs on random inputs: float outputs allclose, integer outputs within `codes`
    (0: identical)."""
    for seed in seeds:
        xs = random_inputs(before, seed)
        for i, (a, b) in enumerate(zip(run(before, xs), run(after, xs))):
            assert a.shape == b.shape and a.dtype == b.dtype, f"output {i}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
            if a.dtype == np.float32:
                np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, err_msg=f"output {i}, seed {seed}")
            else:
                worst = int(np.max(np.abs(a.astype(np.int64) - b.astype(np.int64)), initial=0))
                assert worst <= codes, f"output {i}, seed {seed}: integers differ by up to {worst}"


def check_pass(pass_name: str, graph: Graph, golden: Optional[str] = None, ctx=None, **tolerance) -> Graph:
    """Run one pass on `graph`; compare before/after text with the golden file (when named) and
    the interpreter's numbers before and after. Returns the rewritten graph."""
    before_text = print_graph(graph)
    before = parse(before_text)
    after = get_pass(pass_name)(graph, ctx or context())
    verify(after)
    if golden:
        assert_matches_golden(f"# before\n{before_text}# after {pass_name}\n{print_graph(after)}", golden)
    assert_same_numbers(before, after, **tolerance)
    return after


def kinds(graph) -> list:
    return [op.kind for op in graph.ops]
