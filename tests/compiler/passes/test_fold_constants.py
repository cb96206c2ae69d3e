"""fold_constants: constant subgraphs evaluated by the interpreter, no-ops removed."""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pass_cases import Builder, check_pass, kinds, q  # noqa: E402


def test_constant_subgraphs_and_noops():
    b = Builder("fold")
    x = b.input("x", (2, 3))
    w = b.const("w", np.arange(6).reshape(3, 2) * 0.5)
    wt = b.op("transpose", [w], name="wt", perm=[1, 0])
    r = b.op("reshape", [b.const("r", np.linspace(-1, 1, 6))], name="r2", shape=[2, 3])
    s = b.op("add", [wt, r], name="wsum")  # constant chain: folds to one constant
    y = b.op("add", [x, s], name="y")
    y = b.op("identity", [y], name="id")
    y = b.op("mul", [y, b.const("one", np.ones(3))], name="times_one")
    y = b.op("add", [b.const("zero", np.zeros((1, 3))), y], name="plus_zero")
    y = b.op("reshape", [y], name="flat", shape=[6])
    y = b.op("reshape", [y], name="back", shape=[3, 2])
    g = check_pass("fold_constants", b.graph(y), "fold_constants_basic")
    assert kinds(g) == ["add", "reshape"]
    assert g.outputs[0].name == "back"


def test_quantize_folds_dequantize_of_weights_does_not():
    b = Builder("qfold")
    x = b.input("x", (4,))
    qc = b.op("quantize", [b.const("c", [0.5, -1.0, 2.0, 0.25])], name="qc", dtype="i8", quant=q(0.25))
    dq = b.op("dequantize", [qc], name="dq", dtype="f32")
    y = b.op("mul", [x, dq], name="y")
    g = check_pass("fold_constants", b.graph(y), "fold_constants_quantized")
    assert kinds(g) == ["dequantize", "mul"]
    folded = g.ops[0].operands[0]
    assert folded.is_const and folded.type.quant == q(0.25) and folded.data.tolist() == [2, -4, 8, 1]


def test_outputs_stay_computed_and_weights_do_not_grow():
    b = Builder()
    x = b.input("x", (64, 64))
    big = b.op("expand", [b.const("c", [1.5])], name="big", out_shape=(64, 64))
    small = b.op("expand", [b.const("d", [2.0])], name="small", out_shape=(4,))
    y = b.op("add", [x, big], name="y")
    out = b.op("neg", [small], name="out")  # constant, but a graph output
    g = check_pass("fold_constants", b.graph(y, out))
    assert kinds(g) == ["expand", "add", "neg"]
    assert g.ops[2].operands[0].is_const  # small expand folded into a constant


def test_requantizing_noops_stay():
    b = Builder()
    x = b.input("x", (8,), "i8", q(0.1, 3))
    same = b.op("add", [x, b.const("z", np.zeros(8))], name="same", quant=q(0.1, 3))
    other = b.op("add", [same, b.const("z2", np.zeros(8))], name="other", quant=q(0.2, 3))
    g = check_pass("fold_constants", b.graph(other))
    assert [op.name for op in g.ops] == ["other"]
