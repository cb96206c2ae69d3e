"""Every in-place rule of backends/c/inplace.py, run in place: the C of each kernel that may write its
result over its operand, built with the operand and result sharing their buffer as the planner places
them, gives exactly what the same C gives with separate buffers (and what the interpreter gives).

One graph holds a chain per case, each starting from its own input (which dies at the case's op), for
the host, the DSP kernels of the Cortex-M7 and the plain C of the Cortex-M0+, all built on the host.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from conftest import have_gcc
from edgecc.backends.c.runner import SANITIZE_CFLAGS, STRICT_CFLAGS
from edgecc.ir.interp import run

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memory_cases import Net, run_planned  # noqa: E402

pytestmark = pytest.mark.skipif(not have_gcc(), reason="needs gcc")


def cases(dtype="i8"):
    n = Net("inplace")
    outs = []

    def chain(name, shape, make):
        outs.append(make(n.input(name, shape, dtype)))

    chain("pw_same", (1, 7, 6, 8), lambda x: n.conv(x, "pw_same_y", 8, k=1, pads=(0, 0, 0, 0)))
    chain("pw_grow", (1, 7, 5, 8), lambda x: n.conv(x, "pw_grow_y", 16, k=1, pads=(0, 0, 0, 0)))
    chain("pw_shrink", (1, 5, 7, 16), lambda x: n.conv(x, "pw_shrink_y", 8, k=1, pads=(0, 0, 0, 0), act="none"))
    chain("c3", (1, 7, 6, 8), lambda x: n.conv(x, "c3_y", 8))
    chain("c3_s2", (1, 9, 8, 3), lambda x: n.conv(x, "c3_s2_y", 8, stride=2, pads=(0, 0, 1, 1)))
    chain("tall", (1, 13, 5, 1), lambda x: n.conv(x, "tall_y", 16, k=4, stride=2, pads=(1, 1, 2, 2)))
    chain("dw", (1, 7, 6, 8), lambda x: n.conv(x, "dw_y", 8, group=8))
    chain("dw_s2", (1, 8, 9, 16), lambda x: n.conv(x, "dw_s2_y", 16, stride=2, pads=(0, 0, 1, 1), group=16))
    a = n.input("sum_a", (1, 4, 5, 8), dtype)
    b = n.input("sum_b", (1, 4, 5, 8), dtype)
    outs.append(n.op("relu", [n.op("add", [a, b], "sum_y")], "relu_y"))
    return n, n.graph(*outs)


@pytest.mark.parametrize("target, dtype", [("host", "i8"), ("cortex-m7", "i8"), ("cortex-m0plus", "i8"),
                                           ("host", "f32")])
def test_in_place_gives_the_same_numbers(target, dtype):
    n, g = cases(dtype)
    xs = n.inputs()
    # speed: the specialized kernels, whose in-place rules these are (the compact ones have none)
    apart, _, _ = run_planned(g, target, xs, share=False, optimize="speed")
    shared, plan, backend = run_planned(g, target, xs, share=True, optimize="speed")
    able = [op for op in g.ops if backend.inplace_operands(op)]
    assert set(plan.inplace) == set(able), "every op that may run in place here does"
    if dtype == "i8" and target == "cortex-m7":  # the DSP conv and depthwise kernels, add and relu
        assert len(plan.inplace) == len(g.ops)
    if dtype == "f32":  # float kernels: elementwise only
        assert {op.name for op in plan.inplace} == {"sum_y", "relu_y"}
    expected = run(g, xs)
    for v, a, s, e in zip(g.outputs, apart, shared, expected):
        if dtype == "i8":
            np.testing.assert_array_equal(s, a, err_msg=v.name)
            assert np.max(np.abs(s.astype(int) - e.astype(int))) <= 1, v.name
        else:
            np.testing.assert_allclose(s, a, rtol=1e-6, atol=1e-6, err_msg=v.name)


def test_in_place_under_the_sanitizers():
    n, g = cases()
    xs = n.inputs()
    got, plan, _ = run_planned(g, "cortex-m7", xs, cflags=STRICT_CFLAGS + SANITIZE_CFLAGS,
                             optimize="speed")
    assert plan.inplace
    for a, e in zip(got, run(g, xs)):
        assert np.max(np.abs(a.astype(int) - e.astype(int))) <= 1
