"""memory_plan and the planner under it (compiler/memory): placement, in-place sharing, execution order,
the lower bound and the budget check, on hand-built graphs with a backend that declares its kernels'
in-place abilities, and on the MLPerf Tiny models with the C backend."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pass_cases import Builder, context  # noqa: E402
from plan_checks import check_plan  # noqa: E402

from edgecc.compiler.memory import plan_ops, schedule  # noqa: E402
from edgecc.compiler.memory.placement import Block, Group, place  # noqa: E402
from edgecc.compiler.passes import get_pass  # noqa: E402
from edgecc.ir.errors import EdgeccError  # noqa: E402


class Declared:
    """A backend whose kernels' scratch and in-place abilities a test declares, by op kind."""

    def __init__(self, scratch=None, inplace=None):
        self.scratch, self.inplace = scratch or {}, inplace or {}

    def scratch_bytes(self, op):
        return self.scratch.get(op.kind, 0)

    def inplace_operands(self, op):
        return list(self.inplace.get(op.kind, []))

    def why_not(self, op):
        return None


def chain(n=4, shape=(1, 64)):
    b = Builder("chain")
    x = b.input("x", shape)
    for i in range(n):
        x = b.op("relu", [x], name=f"r{i}")
    return b.graph(x)


def test_placement_reuses_dead_buffers():
    blocks = [Block("a", 64, 0, 1), Block("b", 64, 1, 2), Block("c", 64, 2, 3)]
    groups = [Group([b]) for b in blocks]
    assert place(groups) == 128
    assert groups[0].offset == groups[2].offset != groups[1].offset


def test_a_group_is_placed_whole():
    g = Group([Block("x", 32, 0, 1, rel=16), Block("y", 48, 1, 2, rel=0)])
    other = Group([Block("z", 16, 0, 2)])
    assert place([g, other]) == 64
    assert (g.offset, other.offset) == (0, 48)  # z lives alongside both blocks: above the group


def test_chain_without_inplace_ping_pongs():
    g = chain()
    plan = plan_ops(g.ops, g.inputs, g.outputs, Declared())
    check_plan(g, plan)
    assert plan.arena_bytes == 2 * 256 and plan.lower_bound == 512 and not plan.inplace


def test_elementwise_chain_in_place_needs_one_buffer():
    g = chain()
    backend = Declared(inplace={"relu": [(0, 0)]})
    plan = plan_ops(g.ops, g.inputs, g.outputs, backend)
    check_plan(g, plan, backend)
    assert plan.arena_bytes == 256 == plan.lower_bound and len(plan.inplace) == 4


def test_no_inplace_over_a_value_read_later():
    b = Builder()
    x = b.input("x", (1, 64))
    a = b.op("relu", [x], name="a")
    c = b.op("relu", [a], name="c")
    d = b.op("add", [a, c], name="d")  # a is still read here: c may not overwrite it
    g = b.graph(d)
    backend = Declared(inplace={"relu": [(0, 0)], "add": [(0, 0), (1, 0)]})
    plan = plan_ops(g.ops, g.inputs, g.outputs, backend)
    check_plan(g, plan, backend)
    assert g.op_by_name("c") not in plan.inplace and g.op_by_name("d") in plan.inplace


def test_no_inplace_over_a_graph_output_or_through_a_view():
    b = Builder()
    x = b.input("x", (1, 64))
    a = b.op("relu", [x], name="a")
    v = b.op("reshape", [a], name="v", shape=[64])
    c = b.op("relu", [a], name="c")  # a's view is read after c
    e = b.op("neg", [v], name="e")
    g = b.graph(c, e, a)
    backend = Declared(inplace={"relu": [(0, 0)], "neg": [(0, 0)]})
    plan = plan_ops(g.ops, g.inputs, g.outputs, backend)
    check_plan(g, plan, backend)
    assert g.op_by_name("c") not in plan.inplace  # a: a graph output, and read through v later
    assert g.op_by_name("e") not in plan.inplace


def test_inplace_with_an_offset_makes_a_growing_layer_fit_in_its_result():
    b = Builder()
    x = b.input("x", (1, 16))
    y = b.op("tile", [x], name="grow", repeats=[1, 4])  # a streaming kernel: operand at the end of the result
    g = b.graph(y)
    backend = Declared(inplace={"tile": [(0, 3 * 64)]})
    plan = plan_ops(g.ops, g.inputs, g.outputs, backend)
    check_plan(g, plan, backend)
    assert plan.arena_bytes == 256 and plan.offsets[x] == plan.offsets[y] + 192


def test_scratch_is_counted_and_kept_apart():
    g = chain(2)
    backend = Declared(scratch={"relu": 100}, inplace={"relu": [(0, 0)]})
    plan = plan_ops(g.ops, g.inputs, g.outputs, backend)
    check_plan(g, plan, backend)
    assert plan.lower_bound == 256 + 112 and plan.arena_bytes == 368


def branches():
    """Two branches off x, each a big tensor reduced to a small one, joined at the end: running one branch
    to its end before starting the other keeps one big tensor alive at a time."""
    b = Builder("branches")
    x = b.input("x", (1, 8))
    big_a = b.op("tile", [x], name="big_a", repeats=[1, 64])
    big_b = b.op("tile", [x], name="big_b", repeats=[1, 64])
    small_a = b.op("reduce_sum", [big_a], name="small_a", axes=[1], keepdims=1)
    small_b = b.op("reduce_sum", [big_b], name="small_b", axes=[1], keepdims=1)
    return b.graph(b.op("add", [small_a, small_b], name="join"))


def test_schedule_runs_a_branch_to_its_end_first():
    g = branches()
    assert [op.name for op in g.ops] == ["big_a", "big_b", "small_a", "small_b", "join"]
    order = schedule(g.ops, g.inputs, g.outputs)
    assert [op.name for op in order] == ["big_a", "small_a", "big_b", "small_b", "join"]
    before = plan_ops(g.ops, g.inputs, g.outputs)
    after = plan_ops(order, g.inputs, g.outputs)
    assert after.arena_bytes < before.arena_bytes and after.lower_bound == 2048 + 32 + 16


def test_memory_plan_pass_reorders_and_records():
    g = branches()
    g = get_pass("memory_plan")(g, context(Declared()))
    plan = g.meta["memory_plan"]
    assert [op.name for op in g.ops] == ["big_a", "small_a", "big_b", "small_b", "join"]
    check_plan(g, plan)
    assert plan.timeline[plan.peak_step] == plan.lower_bound


def test_schedule_keeps_a_chain_as_it_is():
    g = chain(5)
    assert schedule(g.ops, g.inputs, g.outputs) == g.ops


def test_budget_refusal_names_the_peak_layer():
    g = branches()
    ctx = context(Declared(), sram=1024)
    with pytest.raises(EdgeccError) as e:
        get_pass("memory_plan")(g, ctx)
    msg = str(e.value)
    assert msg == "needs at least 2.5 KiB of SRAM (layer 'small_a'); --sram 1K given"


# ---- the C backend on whole models ------------------------------------------------------------------
def lowered(stem, target="cortex-m7", **options):
    from conftest import mlperf_path
    from edgecc.backends.registry import backend_for
    from edgecc.compiler.driver import load
    from edgecc.compiler.pipeline import lower

    backend = backend_for(target)
    return lower(load(mlperf_path(stem)), target, options=options, backend=backend), backend


@pytest.mark.parametrize("stem, target", [("kws_int8", "cortex-m7"), ("ic_int8", "cortex-m7"), ("ad_int8", "host"),
                                          ("kws_fp32", "host")])
def test_model_plans_are_sound(stem, target):
    g, backend = lowered(stem, target)
    plan = g.meta["memory_plan"]
    check_plan(g, plan, backend)
    assert plan.arena_bytes <= plan.lower_bound * 1.1


@pytest.mark.slow
@pytest.mark.parametrize("stem", ["vww_int8", "ic_fp32"])
def test_bigger_model_plans_are_sound(stem):
    g, backend = lowered(stem)
    check_plan(g, g.meta["memory_plan"], backend)
