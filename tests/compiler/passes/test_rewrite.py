"""The shared rewrite driver: patterns as data, applied to a fixed point, dead ops dropped."""
from __future__ import annotations

import os
import sys

import pytest

from edgecc.compiler.rewrite import ANY, Pattern, apply_patterns
from edgecc.ir import verify

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pass_cases import Builder, kinds  # noqa: E402


def _relu_of_relu(op, rw):
    return rw.producer(op.operands[0], "relu")


DEDUP_RELU = Pattern("relu_relu", ("relu",), _relu_of_relu, lambda op, inner, rw: inner.result)


def relu_chain(n):
    b = Builder()
    x = b.input("x", (2, 3))
    v = x
    for i in range(n):
        v = b.op("relu", [v], name=f"r{i}")
    return b.graph(v)


def test_chain_reaches_fixed_point_and_output_keeps_its_name():
    g = relu_chain(4)
    fired = apply_patterns(g, [DEDUP_RELU])
    verify(g)
    assert kinds(g) == ["relu"] and fired["relu_relu"] == 3
    assert g.outputs[0].name == "r3"  # the output is computed by r0 now, under the output's name


def test_no_match_changes_nothing():
    g = relu_chain(1)
    assert apply_patterns(g, [DEDUP_RELU]) == {}
    assert kinds(g) == ["relu"]


def test_replace_may_give_up():
    g = relu_chain(3)
    never = Pattern("never", ("relu",), _relu_of_relu, lambda op, inner, rw: None)
    assert apply_patterns(g, [never]) == {}
    assert kinds(g) == ["relu"] * 3


def test_dead_ops_and_constants_are_dropped():
    b = Builder()
    x = b.input("x", (4,))
    c = b.const("c", [1.0, 2.0, 3.0, 4.0])
    dead = b.op("add", [x, c], name="dead")
    b.op("neg", [dead], name="dead2")
    y = b.op("relu", [x], name="y")
    g = b.graph(y)
    apply_patterns(g, [])
    assert kinds(g) == ["relu"] and g.constants == []


def test_new_ops_replace_the_root_in_place():
    # sigmoid(x) -> neg(neg(sigmoid'(x))): three new ops, in order, the result name kept
    b = Builder()
    x = b.input("x", (3,))
    y = b.op("sigmoid", [x], name="s")
    g = b.graph(b.op("abs", [y], name="out"))

    def wrap(op, found, rw):
        t = op.result.type
        s = rw.op("tanh", op.operands, {}, [("inner", t)], "inner")
        n1 = rw.op("neg", [s.result], {}, [t], "n1")
        return rw.op("neg", [n1.result], {}, [op.result], "n2").result

    apply_patterns(g, [Pattern("wrap", ("sigmoid",), lambda op, rw: True, wrap)])
    verify(g)
    assert kinds(g) == ["tanh", "neg", "neg", "abs"]
    assert g.ops[2].result.name == "s"


def test_any_root_and_kind_patterns_run_kind_first():
    g = relu_chain(2)
    seen = []

    def note(tag):
        def match(op, rw):
            seen.append((tag, op.name))
            return None
        return match

    apply_patterns(g, [Pattern("any", (ANY,), note("any"), None), Pattern("relu", ("relu",), note("relu"), None)])
    assert seen == [("relu", "r0"), ("any", "r0"), ("relu", "r1"), ("any", "r1")]


def test_pattern_that_never_settles_is_reported():
    g = relu_chain(1)

    def again(op, found, rw):
        return rw.op("relu", op.operands, {}, [op.result], op.name).result

    with pytest.raises(RuntimeError, match="did not settle"):
        apply_patterns(g, [Pattern("again", ("relu",), lambda op, rw: True, again)], max_sweeps=5)


def test_only_user_and_bypass_rules():
    b = Builder()
    x = b.input("x", (3,))
    r = b.op("relu", [x], name="r")
    a = b.op("neg", [r], name="a")
    c = b.op("abs", [r], name="c")
    g = b.graph(a, c)
    from edgecc.compiler.rewrite import Rewriter

    rw = Rewriter(g)
    assert rw.only_user(r) is None  # two readers
    assert rw.only_user(x).name == "r"
    assert rw.only_user(a) is None  # a graph output
    assert not rw.can_bypass(a, x)  # an output may not become the input
    assert rw.can_bypass(a, r) and rw.can_bypass(r, x)
