"""Tiled ops in C (backends/c/kernels/tiled.py): a chain of layers computed strip by strip, its result
written over its operand, gives exactly what the untiled layers give, for int8 (host and the Cortex-M7's
DSP kernels, built on the host) and float, with strips of one row up to several, ragged last strips,
strided layers, pools and single-layer stages."""
from __future__ import annotations

import copy
import os
import sys

import numpy as np
import pytest

from conftest import have_gcc
from edgecc.backends.c.runner import SANITIZE_CFLAGS, STRICT_CFLAGS
from edgecc.compiler.passes.fit_memory import Candidate, apply
from edgecc.ir import verify
from edgecc.ir.interp import run

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memory_cases import Net, run_planned  # noqa: E402

pytestmark = pytest.mark.skipif(not have_gcc(), reason="needs gcc")


def stem(n, p, dtype="i8", height=13):
    """vww's first stage in small: 3x3 stride-2 conv, depthwise, pointwise, stride-2 depthwise, pointwise."""
    y = n.input(f"{p}x", (1, height, 10, 3), dtype)
    y = n.conv(y, f"{p}conv0", 8, stride=2, pads=(0, 0, 1, 1))
    y = n.conv(y, f"{p}dw1", 8, group=8)
    y = n.conv(y, f"{p}pw2", 16, k=1, pads=(0, 0, 0, 0))
    y = n.conv(y, f"{p}dw3", 16, stride=2, pads=(0, 0, 1, 1), group=16)
    return n.conv(y, f"{p}pw4", 8, k=1, pads=(0, 0, 0, 0), act="none")


def pooled(n, p, dtype="i8"):
    y = n.input(f"{p}x", (1, 11, 6, 4), dtype)
    y = n.conv(y, f"{p}conv0", 8, k=3, pads=(1, 1, 1, 1))
    y = n.op("max_pool", [y], f"{p}pool", kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 0],
             dilations=[1, 1], channels_last=1)
    y = n.op("average_pool", [y], f"{p}avg", kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1],
             channels_last=1)
    return n.conv(y, f"{p}pw", 4, k=1, pads=(0, 0, 0, 0), act="none")


# (graph, first layer, last layer, rows per strip): whole stages, ragged last strips, stages that start
# inside the graph, single layers, pools
CASES = [("stem", "conv0", "dw3", 1), ("stem", "conv0", "dw3", 2), ("stem", "conv0", "pw4", 3),
         ("stem", "dw1", "dw3", 2), ("stem", "pw2", "dw3", 5), ("stem", "dw1", "dw1", 2),
         ("stem", "conv0", "conv0", 4), ("pooled", "conv0", "avg", 2), ("pooled", "pool", "pw", 1)]
GRAPHS = {"stem": stem, "pooled": pooled}


def all_cases(dtype, cases=CASES):
    """One graph with a chain per case, and the same graph with each case's layers tiled."""
    n = Net("chains")
    cases = [c for c in cases if dtype == "i8" or c[0] != "pooled"]
    outs = [GRAPHS[name](n, f"c{i}_", dtype) for i, (name, *_) in enumerate(cases)]
    g = n.graph(*outs)
    t = copy.deepcopy(g)
    for i, (_, first, last, rows) in enumerate(cases):
        names = [op.name for op in t.ops]
        apply(t, list(t.ops), Candidate(names.index(f"c{i}_{first}"), names.index(f"c{i}_{last}"), rows, 0, 0))
    verify(t)
    return n, g, t


@pytest.mark.parametrize("target, dtype", [("host", "i8"), ("cortex-m7", "i8"), ("host", "f32")])
def test_strips_give_the_same_numbers(target, dtype):
    n, g, t = all_cases(dtype)
    xs = n.inputs()
    whole, _, _ = run_planned(g, target, xs, share=False)
    got, plan, _ = run_planned(t, target, xs)
    stages = [op for op in t.ops if op.kind == "tiled"]
    assert len(stages) == len(g.outputs)
    assert all(op in plan.inplace for op in stages if op.operands[0] in t.inputs)  # each dies there
    for v, a, b in zip(g.outputs, got, whole):
        if dtype == "i8":
            np.testing.assert_array_equal(a, b, err_msg=v.name)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=v.name)
    for a, b in zip(run(t, xs), run(g, xs)):
        np.testing.assert_array_equal(a, b)


def test_strips_under_the_sanitizers():
    n, g, t = all_cases("i8", [CASES[1], CASES[-1]])
    xs = n.inputs()
    got, _, _ = run_planned(t, "cortex-m7", xs, cflags=STRICT_CFLAGS + SANITIZE_CFLAGS)
    for a, b in zip(got, run(g, xs)):
        assert np.max(np.abs(a.astype(int) - b.astype(int))) <= 1


def test_strip_tables_are_shared_not_copied():
    """Every strip's variant of a layer has the layer's weights: one table, the others #define'd to it."""
    import tempfile

    from edgecc.backends.registry import backend_for
    from edgecc.compiler.memory import plan_ops

    n, g, t = all_cases("i8", CASES[:1])
    backend = backend_for("cortex-m7")
    t.meta["memory_plan"] = plan_ops(t.ops, t.inputs, t.outputs, backend)
    with tempfile.TemporaryDirectory() as d:
        backend.emit(t, d)
        c = open(os.path.join(d, "model.c")).read()
    assert "/* the same table */" in c
    assert c.count("static const int8_t layer_c0_conv0_0_0_w[") == 1
    assert "#define layer_c0_conv0_0_1_w layer_c0_conv0_0_0_w" in c
