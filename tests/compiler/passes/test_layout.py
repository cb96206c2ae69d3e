"""layout: NCHW ops run channels-last; the transposes that takes are pushed down and cancelled."""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pass_cases import Builder, check_pass, context, kinds, q  # noqa: E402

from edgecc.compiler.passes.layout import count_transposes, moves_only_unit_dims  # noqa: E402

CONV = dict(strides=[1, 1], pads=[1, 1, 1, 1], dilations=[1, 1])


def test_nhwc_model_golden():
    """A TFLite-born model: NHWC input transposed to NCHW, conv, relu, depthwise conv, residual
    add, global pool, flatten: no transpose is left."""
    b = Builder("nhwc_model")
    x = b.input("x", (1, 4, 4, 3))
    t = b.op("transpose", [x], name="to_nchw", perm=[0, 3, 1, 2])
    c1 = b.op("conv", [t, b.weights("w1", (4, 3, 3, 3)), b.weights("b1", (4,))], name="conv1", activation="relu",
              **CONV)
    c2 = b.op("conv", [c1, b.weights("w2", (4, 1, 3, 3))], name="dw", group=4, **CONV)
    s = b.op("add", [c1, c2], name="residual")
    s = b.op("relu", [s], name="relu")
    p = b.op("global_average_pool", [s], name="gap")
    f = b.op("reshape", [p], name="flatten", shape=[1, 4])
    g = check_pass("layout", b.graph(f), "layout_nhwc_model")
    assert count_transposes(g) == 0
    assert kinds(g) == ["conv", "conv", "add", "relu", "global_average_pool", "reshape"]
    assert g.inputs[0].type.layout == "nhwc"


def test_nchw_model_keeps_one_transpose_each_way():
    b = Builder("nchw_model")
    x = b.input("x", (1, 3, 6, 6))
    c = b.op("conv", [x, b.weights("w", (5, 3, 3, 3))], name="conv", **CONV)
    m = b.op("max_pool", [c], name="pool", kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0],
             dilations=[1, 1])
    r = b.op("clip", [m], name="clip", min=-1.0, max=1.0)
    g = check_pass("layout", b.graph(r))
    assert kinds(g) == ["transpose", "conv", "max_pool", "clip", "transpose"]


def test_pushes_through_layout_agnostic_ops_golden():
    b = Builder("agnostic")
    x = b.input("x", (1, 2, 4, 4))
    c = b.op("conv", [x, b.weights("w", (3, 2, 3, 3))], name="conv", **CONV)
    m = b.op("mul", [c, b.weights("gain", (3, 1, 1))], name="scale")  # constant: permuted
    p = b.op("pad", [m], name="pad", pads=[0, 0, 1, 0, 0, 0, 0, 2])
    k = b.op("concat", [p, b.weights("extra", (1, 1, 5, 6))], name="cat", axis=1)
    s = b.op("softmax", [k], name="softmax", axis=1)
    a = b.op("average_pool", [s], name="pool", kernel_shape=[1, 2], strides=[1, 2], pads=[0, 0, 0, 0])
    r1 = b.op("reduce_mean", [a], name="mean_keep", axes=[2, 3], keepdims=1)
    r2 = b.op("reduce_max", [a], name="max_drop", axes=[1], keepdims=0)
    sl = b.op("slice", [a], name="slice", starts=[1], ends=[3], axes=[1], steps=[1])
    g = check_pass("layout", b.graph(r1, r2, sl), "layout_agnostic")
    # one transpose in, one back for the slice; the kept-dims mean moves only 1s (a reshape) and
    # the max over channels leaves [N, H, W] in order
    assert count_transposes(g) == 2
    assert kinds(g)[-5:] == ["reduce_mean", "reshape", "reduce_max", "slice", "transpose"]


def test_one_d_conv_and_quantized_weights():
    b = Builder("conv1d")
    x = b.input("x", (1, 3, 9), "i8", q(0.1, 2))
    w = b.weights("w", (4, 3, 3), "i8", q([0.01, 0.02, 0.03, 0.04], 0, axis=0))
    c = b.op("conv", [x, w], name="conv", strides=[2], pads=[1, 1], dilations=[1], quant=q(0.2, -5))
    d = b.op("conv", [c, b.weights("w2", (4, 1, 3), "i8", q(0.05))], name="dw", group=4, strides=[1], pads=[1, 1],
             dilations=[1], quant=q(0.2, -5))
    g = check_pass("layout", b.graph(d))
    assert kinds(g) == ["transpose", "conv", "conv", "transpose"]
    w_owi = g.ops[1].operands[1]
    assert w_owi.type.layout == "owi" and w_owi.type.quant.axis == 0 and w_owi.type.shape == (4, 3, 3)


def test_transposes_among_themselves():
    b = Builder()
    x = b.input("x", (2, 3, 4))
    t1 = b.op("transpose", [x], name="t1", perm=[1, 2, 0])
    t2 = b.op("transpose", [t1], name="t2", perm=[2, 0, 1])  # t2(t1(x)) = x
    a = b.op("add", [t2, b.input("y", (2, 3, 4))], name="a")
    t3 = b.op("transpose", [t1], name="t3", perm=[0, 2, 1])  # composes into one transpose
    u = b.input("u", (1, 5, 1, 3))
    t4 = b.op("transpose", [u], name="t4", perm=[2, 1, 0, 3])  # only moves 1s: a reshape
    g = check_pass("layout", b.graph(a, t3, t4))
    assert kinds(g) == ["add", "transpose", "reshape"]
    assert g.ops[1].operands[0].name == "x" and g.ops[1].attrs["perm"] == [1, 0, 2]


def test_unit_dims_rule():
    assert moves_only_unit_dims((1, 5, 1, 3), [2, 1, 0, 3])
    assert not moves_only_unit_dims((1, 5, 1, 3), [0, 3, 2, 1])
    assert moves_only_unit_dims((1, 1, 1, 64), [0, 3, 1, 2])


def test_nchw_option_leaves_graph_alone():
    b = Builder()
    x = b.input("x", (1, 3, 6, 6))
    c = b.op("conv", [x, b.weights("w", (5, 3, 3, 3))], name="conv", **CONV)
    g = check_pass("layout", b.graph(c), ctx=context(layout="nchw"))
    assert kinds(g) == ["conv"] and not g.ops[0].attrs["channels_last"]


def test_outputs_of_a_pushed_op_keep_their_names():
    b = Builder()
    x = b.input("x", (1, 2, 3, 3))
    c = b.op("conv", [x, b.weights("w", (2, 2, 1, 1))], name="conv", strides=[1, 1], pads=[0, 0, 0, 0],
             dilations=[1, 1])
    r = b.op("sigmoid", [c], name="out")
    g = check_pass("layout", b.graph(r))
    assert g.outputs[0].name == "out" and g.outputs[0].producer.kind == "transpose"
    assert np.array_equal(g.outputs[0].type.shape, (1, 2, 3, 3))


def test_cancelled_transposes_keep_layout_tags_right():
    """x feeds a channels-first batch norm too, so it cannot be tagged nhwc: the conv reads it
    through a reshape (a view) carrying the tag."""
    b = Builder()
    x = b.input("x", (1, 4, 4, 3))
    t = b.op("transpose", [x], name="to_nchw", perm=[0, 3, 1, 2])
    c = b.op("conv", [t, b.weights("w", (2, 3, 1, 1))], name="conv", strides=[1, 1], pads=[0, 0, 0, 0],
             dilations=[1, 1])
    params = [b.weights(n, (4,)) for n in ("s", "o", "m")] + [b.const("v", np.ones(4))]
    n = b.op("batch_normalization", [x, *params], name="bn")
    g = check_pass("layout", b.graph(c, n))
    assert kinds(g) == ["reshape", "conv", "transpose", "batch_normalization"]
    assert g.inputs[0].type.layout is None and g.ops[0].result.type.layout == "nhwc"


def test_resize_between_convs():
    b = Builder()
    x = b.input("x", (1, 2, 3, 3))
    c = b.op("conv", [x, b.weights("w", (2, 2, 1, 1))], name="conv", strides=[1, 1], pads=[0, 0, 0, 0],
             dilations=[1, 1])
    r = b.op("resize", [c], name="up", out_shape=(1, 2, 6, 6), mode="linear", scales=[1.0, 1.0, 2.0, 2.0],
             coordinate_transformation_mode="half_pixel")
    d = b.op("conv", [r, b.weights("w2", (2, 2, 3, 3))], name="conv2", **CONV)
    g = check_pass("layout", b.graph(d))
    assert kinds(g) == ["transpose", "conv", "resize", "conv", "transpose"]
    assert g.ops[2].attrs["scales"] == [1.0, 2.0, 2.0, 1.0]


def test_transposed_back_before_a_flatten_keeps_the_pools_tag():
    """A Keras-born model transposes back to NHWC before its flatten: the transposes cancel, and the
    max pool's result, now read by the flatten directly, stays tagged nhwc (the pool writes it so)."""
    b = Builder()
    x = b.input("x", (1, 8, 8, 1))
    t = b.op("transpose", [x], name="to_nchw", perm=[0, 3, 1, 2])
    c = b.op("conv", [t, b.weights("w", (4, 1, 3, 3))], name="conv", activation="relu", **CONV)
    p = b.op("max_pool", [c], name="pool", kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0],
             dilations=[1, 1])
    back = b.op("transpose", [p], name="to_nhwc", perm=[0, 2, 3, 1])
    f = b.op("reshape", [back], name="flatten", shape=[1, 64])
    g = check_pass("layout", b.graph(f))  # verified, and computes what the graph before did
    assert count_transposes(g) == 0
    pool = next(op for op in g.ops if op.kind == "max_pool")
    assert pool.attrs["channels_last"] == 1 and pool.result.type.layout == "nhwc"
