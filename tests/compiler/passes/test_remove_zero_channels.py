"""remove_zero_channels: channels zero end to end removed from producer, the ops on the way and the
readers, with the interpreter's numbers unchanged (check_pass), float and int8; what is left alone."""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pass_cases import Builder, check_pass, context, kinds, q  # noqa: E402

CONV = dict(strides=[1, 1], pads=[1, 1, 1, 1], dilations=[1, 1])
ZERO = [2, 5]


def zeroed(b, name, shape, channels=ZERO, bias=True):
    w = b.rng.standard_normal(shape)
    w[channels] = 0
    ws = b.const(name, w)
    if not bias:
        return ws, None
    bv = b.rng.standard_normal(shape[0])
    bv[channels] = 0
    return ws, b.const(f"{name}_bias", bv)


def float_chain(dw_bias_zero=True):
    """conv (channels 2 and 5 zero) -> max_pool -> depthwise conv -> relu -> conv, padded throughout."""
    b = Builder("chain")
    x = b.input("x", (1, 3, 8, 8))
    w1, b1 = zeroed(b, "w1", (8, 3, 3, 3))
    y = b.op("conv", [x, w1, b1], name="conv1", activation="relu", **CONV)
    y = b.op("max_pool", [y], name="pool", kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0], dilations=[1, 1])
    wd = b.weights("wd", (8, 1, 3, 3))
    bd = b.rng.standard_normal(8)
    if dw_bias_zero:
        bd[ZERO] = 0
    y = b.op("conv", [y, wd, b.const("bd", bd)], name="dw", group=8, **CONV)
    y = b.op("relu", [y], name="relu")
    y = b.op("conv", [y, b.weights("w2", (4, 8, 3, 3))], name="conv2", **CONV)
    return b.graph(y)


def test_a_float_chain_loses_its_zero_channels_golden():
    g = check_pass("remove_zero_channels", float_chain(), "remove_zero_channels_chain")
    conv1, _, dw, _, conv2 = g.ops
    assert conv1.operands[1].type.shape == (6, 3, 3, 3) and conv1.result.type.shape == (1, 6, 8, 8)
    assert dw.operands[1].type.shape == (6, 1, 3, 3) and dw.attrs["group"] == 6
    assert conv2.operands[1].type.shape == (4, 6, 3, 3)
    assert g.meta["zero_channels"]["removed"]["conv1"]["channels"] == 2


def test_a_depthwise_bias_that_is_not_zero_keeps_the_channel():
    g = check_pass("remove_zero_channels", float_chain(dw_bias_zero=False))
    assert g.ops[0].operands[1].type.shape == (8, 3, 3, 3)
    assert g.meta["zero_channels"]["kept"] == {"conv1": 2}


def test_an_int8_chain_through_a_pool_and_a_flatten_to_a_fully_connected_layer():
    b = Builder("q")
    x = b.input("x", (1, 4, 6, 6), "i8", q(0.05, -3))
    w = b.rng.integers(-127, 128, (8, 4, 1, 1))
    w[ZERO] = 0
    bias = b.rng.integers(-500, 500, 8)
    bias[ZERO] = 0
    y = b.op("conv", [x, b.const("w", w, "i8", q([0.01] * 8, 0, axis=0)), b.const("b", bias, "i32", q([0.0005] * 8, 0, axis=0))],
             name="pw", strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1], activation="relu",
             dtype="i8", quant=q(0.04, -128))
    y = b.op("global_average_pool", [y], name="gap", dtype="i8", quant=q(0.04, -128))
    y = b.op("reshape", [y], name="flat", shape=[1, 8], dtype="i8", quant=q(0.04, -128))
    y = b.op("fully_connected", [y, b.weights("wfc", (3, 8), "i8", q(0.02))], name="fc", dtype="i8", quant=q(0.1, 5))
    g = check_pass("remove_zero_channels", b.graph(y), rtol=0, atol=0)
    assert [op.result.type.shape for op in g.ops] == [(1, 6, 6, 6), (1, 6, 1, 1), (1, 6), (1, 3)]
    assert g.ops[0].operands[1].type.quant.scale == (0.01,) * 6 and g.ops[3].operands[1].type.shape == (3, 6)


def test_channels_read_by_an_add_or_a_graph_output_are_kept():
    b = Builder("residual")
    x = b.input("x", (1, 8, 4, 4))
    w, bias = zeroed(b, "w", (8, 8, 1, 1))
    y = b.op("conv", [x, w, bias], name="conv", strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1])
    y = b.op("add", [y, x], name="add")
    g = check_pass("remove_zero_channels", b.graph(y))
    assert g.ops[0].operands[1].type.shape == (8, 8, 1, 1) and g.meta["zero_channels"]["kept"] == {"conv": 2}


def test_a_layer_whose_weights_are_all_zero_becomes_its_bias():
    b = Builder("bias_only")
    x = b.input("x", (1, 3, 5, 5))
    bias = b.const("b", np.arange(4, dtype=np.float64) - 1.5)
    y = b.op("conv", [x, b.const("w", np.zeros((4, 3, 3, 3))), bias], name="dead", activation="relu", **CONV)
    y = b.op("conv", [y, b.weights("w2", (2, 4, 1, 1))], name="next", strides=[1, 1], pads=[0, 0, 0, 0],
             dilations=[1, 1])
    g = check_pass("remove_zero_channels", b.graph(y))
    assert kinds(g) == ["conv"] and g.ops[0].name == "next" and g.ops[0].operands[0].is_const
    assert g.meta["zero_channels"]["constant_layers"] == ["dead"]


def test_sparsity_off_changes_nothing():
    g = check_pass("remove_zero_channels", float_chain(), ctx=context(sparsity="off"))
    assert g.ops[0].operands[1].type.shape == (8, 3, 3, 3)
