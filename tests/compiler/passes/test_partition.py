"""partition: runs of accelerator layers into partition ops, by the cost model, single-cut or none;
the capability table's checks and its refusal of a malformed table."""
from __future__ import annotations

import os
import sys
from dataclasses import replace

import pytest

from edgecc.backends.registry import Target
from edgecc.compiler.capabilities import read_capabilities
from edgecc.compiler.passes import PassContext
from edgecc.ir.errors import EdgeccError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pass_cases import Builder, check_pass, kinds, q  # noqa: E402

CONV = dict(strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1])
FAST = dict(macs_per_cycle=1000, clock_hz=1e9, cpu_cycles_per_mac=1.0, cpu_cycles_per_byte=1.0,
            cpu_clock_hz=1e8, transfer_bytes_per_cycle=16, invoke_overhead_cycles=100)


def target(ops=None, **costs):
    """A delegate target whose accelerator takes float convs and adds (and `ops` when given)."""
    table = ops or {"conv": {"name": "CONV_2D", "dtypes": ["float32"], "stride_max": [1, 1]},
                    "add": {"dtypes": ["float32"]}, "reshape": {}}
    return Target(name="toy", backend="delegate", description="", path="toy.toml",
                  accelerator=dict(name="Toy NPU", **{**FAST, **costs}, ops=table))


def context(mode=None, **target_args):
    return PassContext(target=target(**target_args), backend=None, options={"partition": mode} if mode else {})


def chain():
    """conv -> tanh (not on the accelerator) -> conv."""
    b = Builder("chain")
    x = b.input("x", (1, 2, 6, 6))
    y = b.op("conv", [x, b.weights("w1", (4, 2, 3, 3))], name="conv1", **CONV)
    y = b.op("tanh", [y], name="tanh")
    y = b.op("conv", [y, b.weights("w2", (3, 4, 1, 1))], name="conv2", **CONV)
    return b.graph(y)


def partitions(g):
    return [[inner.name for inner in op.regions[0].ops] for op in g.ops if op.kind == "partition"]


def test_cost_carves_both_sides_of_a_cpu_layer_golden():
    g = check_pass("partition", chain(), "partition_chain", ctx=context())
    assert kinds(g) == ["partition", "tanh", "partition"]
    assert partitions(g) == [["conv1"], ["conv2"]]
    assert g.meta["partition"]["reasons"] == {"tanh": "op tanh is not supported by the Toy NPU"}


def test_single_cut_stops_at_the_first_rejected_layer():
    g = check_pass("partition", chain(), ctx=context("single-cut"))
    assert partitions(g) == [["conv1"]]
    assert g.meta["partition"]["reasons"]["conv2"].endswith("(single-cut)")


def test_none_keeps_everything_on_the_cpu_with_reasons():
    g = check_pass("partition", chain(), ctx=context("none"))
    assert kinds(g) == ["conv", "tanh", "conv"]
    assert set(g.meta["partition"]["reasons"]) == {"conv1", "tanh", "conv2"}


def test_a_region_that_does_not_pay_stays_on_the_cpu():
    # an invocation costing far more than the CPU's 14,400 + 1,728 MAC-cycles
    g = check_pass("partition", chain(), ctx=context(invoke_overhead_cycles=1e9))
    assert partitions(g) == []
    assert "costs more than it saves" in g.meta["partition"]["reasons"]["conv1"]


def test_layers_are_ordered_so_accelerator_layers_run_together():
    """Given conv1, tanh(x), conv2(conv1): cost mode runs conv1 and conv2 in one partition; single-cut
    in the graph's order gets conv1 alone."""
    b = Builder("branches")
    x = b.input("x", (1, 2, 6, 6))
    y = b.op("conv", [x, b.weights("w1", (2, 2, 1, 1))], name="conv1", **CONV)
    t = b.op("tanh", [x], name="tanh")
    y = b.op("conv", [y, b.weights("w2", (2, 2, 1, 1))], name="conv2", **CONV)
    g = check_pass("partition", b.graph(y, t), ctx=context())
    assert partitions(g) == [["conv1", "conv2"]]
    b2 = Builder("branches")
    x = b2.input("x", (1, 2, 6, 6))
    y = b2.op("conv", [x, b2.weights("w1", (2, 2, 1, 1))], name="conv1", **CONV)
    t = b2.op("tanh", [x], name="tanh")
    y = b2.op("conv", [y, b2.weights("w2", (2, 2, 1, 1))], name="conv2", **CONV)
    g = check_pass("partition", b2.graph(y, t), ctx=context("single-cut"))
    assert partitions(g) == [["conv1"]]


def test_boundary_tensors_are_the_partitions_operands_and_results():
    b = Builder("fan")
    x = b.input("x", (1, 2, 4, 4))
    y = b.op("conv", [x, b.weights("w", (2, 2, 1, 1))], name="conv", **CONV)
    s = b.op("add", [y, x], name="add")
    t = b.op("tanh", [y], name="tanh")  # reads the conv's result from outside the partition
    g = check_pass("partition", b.graph(s, t), ctx=context())
    (part,) = [op for op in g.ops if op.kind == "partition"]
    assert [v.name for v in part.operands] == ["x"]
    assert [v.name for v in part.results] == ["conv", "add"]


# ---- the capability table ----------------------------------------------------------------
def one_conv(stride=1, dtype="f32", kernel=3):
    b = Builder()
    quant = q(0.1) if dtype == "i8" else None
    x = b.input("x", (1, 2, 8, 8), dtype, quant)
    w = b.weights("w", (4, 2, kernel, kernel), dtype, q([0.1] * 4, axis=0) if quant else None)
    return b.op("conv", [x, w], name="conv", dtype=dtype, quant=quant, **{**CONV, "strides": [stride, stride]}).producer


@pytest.mark.parametrize("rules, op, reason", [
    ({"dtypes": ["int8"]}, one_conv(), "float32 tensor %x (int8 only)"),
    ({"stride_max": [1, 1]}, one_conv(stride=2), "strides [2, 2] (at most [1, 1])"),
    ({"kernel_max": [2, 2]}, one_conv(), "kernel [3, 3] (at most [2, 2])"),
    ({"kernel_area_max": 4}, one_conv(), "kernel area 9 (at most 4)"),
    ({"innermost_non_unit": 2}, one_conv(), "only the 2 innermost dimensions may exceed 1"),
    ({"max_dim": 4}, one_conv(), "each dimension at most 4"),
    ({"max_bytes": 100}, one_conv(), "tensor %x of 512 bytes (at most 100)"),
    ({"activations": ["relu"]}, one_conv(), "fused activation none (relu only)"),
    ({"weights_zero_point_zero": True, "per_tensor": True}, one_conv(dtype="i8"), None),
])
def test_each_constraint_gives_its_reason(rules, op, reason):
    caps = read_capabilities(target({"conv": rules}).accelerator, "toy.toml")
    got = caps.why_not(op)
    assert (got is None) if reason is None else (reason in got), got


def test_an_op_missing_from_the_table_is_not_supported():
    caps = read_capabilities(target({"add": {}}).accelerator, "toy.toml")
    assert caps.why_not(one_conv()) == "op conv is not supported by the Toy NPU"


@pytest.mark.parametrize("change, entry", [
    (lambda a: a["ops"]["conv"].update(stride_maxx=[1]), "ops.conv.stride_maxx: unknown constraint"),
    (lambda a: a["ops"]["conv"].update(stride_max="two"), "ops.conv.stride_max: 'two' is not a list"),
    (lambda a: a["ops"]["conv"].update(dtypes="int8"), "ops.conv.dtypes: 'int8' is not a list"),
    (lambda a: a.pop("clock_hz"), "clock_hz: missing"),
    (lambda a: a.update(macs_per_cycle=-4), "macs_per_cycle: -4 is not a positive number"),
    (lambda a: a.update(ops=[1]), "ops: expected a table"),
    (lambda a: a.update(speed=3), "speed: unknown key"),
])
def test_a_malformed_table_is_refused_naming_the_file_and_entry(change, entry):
    t = target()
    section = {**t.accelerator, "ops": {k: dict(v) for k, v in t.accelerator["ops"].items()}}
    change(section)
    with pytest.raises(EdgeccError) as e:
        check_pass("partition", chain(), ctx=PassContext(target=replace(t, accelerator=section)))
    assert str(e.value).startswith("toy.toml: [accelerator] ") and entry in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def add_chain():
    """((((x0 + x1) + x2) + x3) + x4): one run of four adds reading five graph inputs."""
    b = Builder("adds")
    xs = [b.input(f"x{i}", (1, 2, 4, 4)) for i in range(5)]
    y = xs[0]
    for i, x in enumerate(xs[1:], 1):
        y = b.op("add", [y, x], name=f"add{i}")
    return b.graph(y)


def test_a_run_crossing_the_boundary_limit_is_cut_into_pieces_within_it():
    """Four adds: 5 inputs + 1 output cross the run's boundary; with at most 4, the pieces are
    add1+add2 (x0, x1, x2 in, the sum out) and add3+add4 (that sum, x3, x4 in, the result out)."""
    assert partitions(check_pass("partition", add_chain(), ctx=context())) == [["add1", "add2", "add3", "add4"]]
    for mode in ("cost", "single-cut"):
        g = check_pass("partition", add_chain(), ctx=context(mode, max_boundary_tensors=4))
        assert partitions(g) == [["add1", "add2"], ["add3", "add4"]], mode
        for op in g.ops:
            assert len(op.operands) + len(op.results) <= 4


def test_a_layer_alone_over_the_boundary_limit_stays_on_the_cpu():
    g = check_pass("partition", add_chain(), ctx=context(max_boundary_tensors=2))
    assert partitions(g) == []
    assert g.meta["partition"]["reasons"]["add1"] == \
        "more than 2 tensors cross its boundary, the most one partition may have"
