"""compiler/quantization/trace.py's lockstep: a graph and a twin with some operands replaced, run side by side
on every sample, against the interpreter."""
from __future__ import annotations

import numpy as np

from edgecc.compiler.quantization.trace import lockstep
from edgecc.ir import Graph, Op, TensorType, Value
from edgecc.ir.interp import run
from edgecc.ir.ops import fill_defaults

rng = np.random.default_rng(3)


def small_graph():
    """x -> relu -> conv 3x3 (2 -> 3 channels, bias) -> relu."""
    f32 = lambda shape: TensorType(shape, "f32")  # noqa: E731
    x, a = Value("x", f32((1, 2, 5, 5))), Value("a", f32((1, 2, 5, 5)))
    w = Value("w", f32((3, 2, 3, 3)), rng.standard_normal((3, 2, 3, 3)).astype(np.float32))
    b = Value("b", f32((3,)), rng.standard_normal(3).astype(np.float32))
    c, y = Value("c", f32((1, 3, 5, 5))), Value("y", f32((1, 3, 5, 5)))
    conv = Op("conv", [a, w, b], [c], fill_defaults("conv", dict(strides=[1, 1], pads=[1, 1, 1, 1], dilations=[1, 1], group=1)), "conv")
    ops = [Op("relu", [x], [a], {}, "relu1"), conv, Op("relu", [c], [y], {}, "relu2")]
    return Graph("g", [x], [y], ops, [w, b]), conv


def test_a_twin_with_nothing_replaced_shares_every_array():
    graph, _ = small_graph()
    samples = {"x": rng.standard_normal((3, 1, 2, 5, 5)).astype(np.float32)}
    seen = 0
    for op, ref, got in lockstep(graph, samples, lambda op: None):
        for r, q in zip(ref, got):
            assert all(q[v] is r[v] for v in op.operands if v is not None and not v.is_const)
        seen += 1
    assert seen == len(graph.ops)


def test_a_replaced_operand_changes_what_follows_and_nothing_before():
    graph, conv = small_graph()
    xs = rng.standard_normal((3, 1, 2, 5, 5)).astype(np.float32)
    zero = np.zeros((3, 2, 3, 3), np.float32)
    relu2 = graph.ops[2]
    for op, ref, got in lockstep(graph, {"x": xs}, lambda op: (op, {1: zero}) if op is conv else None):
        for k, (r, q) in enumerate(zip(ref, got)):
            if op is conv:
                assert q[op.operands[0]] is r[op.operands[0]]
            if op is relu2:  # the graph's as the interpreter runs it; the twin's: relu(bias) everywhere
                c = op.operands[0]
                want = run(Graph("g", graph.inputs, [c], graph.ops[:2], graph.constants), [xs[k]])[0]
                np.testing.assert_array_equal(r[c], want)
                np.testing.assert_array_equal(q[c], np.broadcast_to(conv.operands[2].data[None, :, None, None],
                                                                    c.type.shape))
                assert graph.inputs[0] not in r and graph.inputs[0] not in q  # dropped after its last reader
