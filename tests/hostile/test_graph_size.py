"""Graphs large in the ways that make compilers slow, through the command line in process: a deep
chain (3,000 Add and Relu nodes, one buffer handed down the whole way) and a wide fan-out (one
tensor read by 1,000 nodes, summed back by a tree of Adds, a thousand buffers live at once) compile
within TIME_LIMIT; the node limit refuses a graph over it before any work.

Before the memory plan's placement and timeline became linear in the buffers live at once, the
chain took over ten minutes (a whole plan per in-place op, each quadratic) and the fan-out longer.
"""
import os
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from in_process import run_cli  # noqa: E402

pytestmark = pytest.mark.slow

TIME_LIMIT = 120  # seconds; each takes well under 30 on a 2-core machine


def graph_model(nodes: list, last: str) -> onnx.ModelProto:
    nodes = nodes + [helper.make_node("Identity", [last], ["y"], name="out")]
    graph = helper.make_graph(nodes, "big", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
                              [numpy_helper.from_array(np.full((1, 8), 0.001, np.float32), "b")])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def chain(length: int) -> onnx.ModelProto:
    """x, then Add and Relu in turn, `length` nodes."""
    nodes, prev = [], "x"
    for i in range(length):
        op = helper.make_node("Relu", [prev], [f"v{i}"], name=f"relu{i}") if i % 2 else \
            helper.make_node("Add", [prev, "b"], [f"v{i}"], name=f"add{i}")
        nodes.append(op)
        prev = f"v{i}"
    return graph_model(nodes, prev)


def fan_out(width: int) -> onnx.ModelProto:
    """relu(x) read by `width` Adds, whose results are summed pairwise down to one."""
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="root")]
    nodes += [helper.make_node("Add", ["r", "b"], [f"f{i}"], name=f"fan{i}") for i in range(width)]
    level, k = [f"f{i}" for i in range(width)], 0
    while len(level) > 1:
        pairs, level = [level[j:j + 2] for j in range(0, len(level), 2)], []
        for pair in pairs:
            if len(pair) == 1:
                level.append(pair[0])
                continue
            nodes.append(helper.make_node("Add", pair, [f"s{k}"], name=f"sum{k}"))
            level.append(f"s{k}")
            k += 1
    return graph_model(nodes, level[0])


@pytest.mark.parametrize("make,size", [(chain, 3000), (fan_out, 1000)], ids=["chain3000", "fan_out1000"])
def test_large_graphs_compile_in_bounded_time(tmp_path, make, size):
    path = tmp_path / "model.onnx"
    onnx.save(make(size), path)
    status, _, stderr = run_cli([str(path), "--target", "host", "-o", str(tmp_path / "out")], TIME_LIMIT)
    assert status == 0, stderr or status
    assert (tmp_path / "out" / "model.c").is_file()


def test_a_graph_over_the_node_limit_is_refused(tmp_path):
    path = tmp_path / "model.onnx"
    onnx.save(chain(3000), path)
    status, _, stderr = run_cli([str(path), "--max-nodes", "2000", "-o", str(tmp_path / "out")], 10)
    assert status == 2
    assert stderr == f"edgecc: error: {path}: the graph has 3,001 nodes, over the limit of 2,000 (--max-nodes)\n"
    assert not (tmp_path / "out").exists()
