"""fuse: dense ops into fully_connected, bias / activation / pad into the op, Q/DQ cleanup."""
from __future__ import annotations

import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pass_cases import Builder, check_pass, kinds, q  # noqa: E402

CONV = dict(strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1])
POOL = dict(kernel_shape=[3, 3], strides=[1, 1], pads=[0, 0, 0, 0])


# ---- float -----------------------------------------------------------------------------------
def test_conv_bias_relu_golden():
    b = Builder("conv_chain")
    x = b.input("x", (1, 2, 5, 5))
    p = b.op("pad", [x], name="pad", pads=[0, 0, 1, 1, 0, 0, 1, 1])
    y = b.op("conv", [p, b.weights("w", (3, 2, 3, 3))], name="conv", **CONV)
    y = b.op("add", [y, b.weights("bias", (1, 3, 1, 1))], name="bias_add")
    y = b.op("relu", [y], name="relu")
    g = check_pass("fuse", b.graph(y), "fuse_conv_chain")
    assert kinds(g) == ["conv"]
    assert g.ops[0].attrs["pads"] == [1, 1, 1, 1] and g.ops[0].attrs["activation"] == "relu"


def test_matmul_and_gemm_to_fully_connected_golden():
    b = Builder("dense")
    x = b.input("x", (2, 3, 4))
    y = b.op("matmul", [x, b.weights("w", (4, 5))], name="mm")
    y = b.op("add", [b.weights("bias", (5,)), y], name="bias_add")  # bias first: add commutes
    y = b.op("clip", [y], name="relu6", min=0.0, max=6.0)
    a = b.input("a", (2, 4))
    z = b.op("gemm", [a, b.weights("bm", (4, 3)), b.weights("c", (1, 3))], name="gemm", alpha=0.5, beta=2.0)
    z = b.op("leaky_relu", [z], name="leaky", alpha=0.2)
    g = check_pass("fuse", b.graph(y, z), "fuse_dense")
    assert kinds(g) == ["fully_connected", "fully_connected"]
    assert [op.attrs["activation"] for op in g.ops] == ["relu6", "leaky_relu"]


def test_gemm_variants():
    b = Builder()
    a = b.input("a", (2, 4))
    y1 = b.op("gemm", [a, b.weights("b1", (3, 4))], name="g1", trans_b=1)
    y2 = b.op("gemm", [a, b.weights("b2", (4, 3)), b.weights("c2", (2, 3))], name="g2")  # C not a row: kept
    y3 = b.op("gemm", [b.input("at", (4, 2)), b.weights("b3", (4, 3))], name="g3", trans_a=1)  # kept
    y4 = b.op("gemm", [a, b.weights("b4", (4, 3)), b.weights("c4", (3,))], name="g4", beta=0.0)
    g = check_pass("fuse", b.graph(y1, y2, y3, y4))
    assert kinds(g) == ["fully_connected", "gemm", "gemm", "fully_connected"]


def test_no_fusion_across_shared_values_or_after_activation():
    b = Builder()
    x = b.input("x", (1, 2, 4, 4))
    y = b.op("conv", [x, b.weights("w", (3, 2, 1, 1))], name="conv", **CONV)
    r = b.op("relu", [y], name="relu")  # y is also an output: not fusable
    z = b.op("conv", [x, b.weights("w2", (3, 2, 1, 1))], name="conv2", activation="relu", **CONV)
    z = b.op("add", [z, b.weights("bias", (3, 1, 1))], name="late_bias")  # after the activation
    s = b.op("add", [z, b.weights("spatial", (1, 1, 4, 4))], name="not_a_bias")
    g = check_pass("fuse", b.graph(y, r, s))
    assert kinds(g) == ["conv", "relu", "conv", "add", "add"]


def test_pad_into_pools():
    b = Builder()
    x = b.input("x", (1, 2, 5, 5))
    p0 = b.op("pad", [x], name="p0", pads=[0, 0, 1, 2, 0, 0, 1, 0])
    avg = b.op("average_pool", [p0], name="avg", **POOL)
    p1 = b.op("pad", [x], name="p1", pads=[0, 0, 1, 1, 0, 0, 1, 1], value=-math.inf)
    mx = b.op("max_pool", [p1], name="max", dilations=[1, 1], **POOL)
    p2 = b.op("pad", [x], name="p2", pads=[0, 0, 1, 1, 0, 0, 1, 1], value=1.0)  # not 0: kept
    c = b.op("conv", [p2, b.weights("w", (1, 2, 3, 3))], name="conv", **CONV)
    p3 = b.op("pad", [x], name="p3", pads=[0, 1, 0, 0, 0, 0, 0, 0])  # pads channels: kept
    c3 = b.op("conv", [p3, b.weights("w3", (1, 3, 3, 3))], name="conv3", **CONV)
    g = check_pass("fuse", b.graph(avg, mx, c, c3))
    assert kinds(g) == ["average_pool", "max_pool", "pad", "conv", "pad", "conv"]
    assert g.ops[0].attrs["count_include_pad"] == 1 and g.ops[0].attrs["pads"] == [1, 2, 1, 0]


# ---- quantized -------------------------------------------------------------------------------
def qconv(b, x, name, **extra):
    w = b.weights(f"{name}_w", (4, 3, 3, 3), "i8", q([0.01, 0.02, 0.015, 0.03], 0, axis=0))
    bias = b.weights(f"{name}_b", (4,), "i32", q([0.01 * 0.05, 0.02 * 0.05, 0.015 * 0.05, 0.03 * 0.05], 0, axis=0))
    return b.op("conv", [x, w, bias], name=name, **dict(CONV, **extra))


def test_quantized_chains_golden():
    """conv(q) -> float -> relu -> quantize fuses; conv -> q -> relu -> q only with the same quant."""
    b = Builder("qchains")
    x = b.input("x", (1, 3, 6, 6), "i8", q(0.05, -10))
    y = qconv(b, x, "c1", dtype="f32")
    y = b.op("relu", [y], name="r1")
    y = b.op("quantize", [y], name="q1", dtype="i8", quant=q(0.1, -128))
    d = b.op("dequantize", [y], name="d1", dtype="f32")
    p = b.op("pad", [d], name="pad", pads=[0, 0, 1, 1, 0, 0, 1, 1])  # dequantize moves below the pad
    z = b.op("conv", [p, b.weights("c2_w", (4, 4, 3, 3), "i8", q(0.01))], name="c2", quant=q(0.2, 5),
             dtype="i8", **CONV)
    z = b.op("relu", [z], name="r2", quant=q(0.2, 5))  # same quant: clamp in the quantized domain
    u = qconv(b, x, "c3", quant=q(0.2, 5), dtype="i8")
    u = b.op("relu", [u], name="r3", quant=q(0.1, -128))  # requantizes: stays
    # c1 rounds its result once, from float64, where the unfused graph rounded to float32 first
    g = check_pass("fuse", b.graph(z, u), "fuse_quantized", codes=1)
    assert kinds(g) == ["conv", "conv", "conv", "relu"]
    assert g.ops[0].result.type.quant == q(0.1, -128) and g.ops[0].attrs["activation"] == "relu"
    assert g.ops[1].attrs["pads"] == [1, 1, 1, 1] and g.ops[1].attrs["activation"] == "relu"


def test_clamps_in_the_quantized_domain_are_exact():
    b = Builder()
    x = b.input("x", (1, 3, 6, 6), "i8", q(0.05, -10))
    outs = []
    for i, (kind, attrs) in enumerate([("relu", {}), ("clip", dict(min=-0.3, max=0.5)), ("clip", dict(min=0.0))]):
        y = qconv(b, x, f"c{i}", quant=q(0.01, 7), dtype="i8")
        outs.append(b.op(kind, [y], name=f"act{i}", quant=q(0.01, 7), **attrs))
    g = check_pass("fuse", b.graph(*outs), seeds=range(6))
    assert kinds(g) == ["conv"] * 3
    assert [(op.attrs["activation"], op.attrs["act_params"]) for op in g.ops] == \
        [("relu", []), ("clip", [-0.3, 0.5]), ("relu", [])]


def test_qdq_cleanup_golden():
    """QDQ model shapes: dequantize dropped into readers, quantize absorbed or moved up past
    data movement, quantize(dequantize(x)) with equal quant gone; a dequantize that is a graph
    output stays."""
    b = Builder("qdq")
    x = b.input("x", (1, 8), "i8", q(0.1, 0))
    d = b.op("dequantize", [x], name="dx", dtype="f32")
    r = b.op("reshape", [d], name="flat", shape=[2, 4])
    qr = b.op("quantize", [r], name="qr", dtype="i8", quant=q(0.1, 0))
    dr = b.op("dequantize", [qr], name="dr", dtype="f32")
    w = b.op("dequantize", [b.weights("w", (4, 3), "i8", q(0.02))], name="dw", dtype="f32")
    bias = b.op("dequantize", [b.weights("bias", (3,), "i32", q(0.002))], name="db", dtype="f32")
    y = b.op("matmul", [dr, w], name="mm")
    y = b.op("add", [y, bias], name="bias_add")
    y = b.op("quantize", [y], name="qy", dtype="i8", quant=q(0.05, 3))
    s = b.op("softmax", [b.op("dequantize", [y], name="dy", dtype="f32")], name="softmax", axis=1)
    t = b.op("transpose", [s], name="t", perm=[1, 0])
    t = b.op("quantize", [t], name="qt", dtype="u8", quant=q(1 / 256, 0))
    g = check_pass("fuse", b.graph(t, d), "fuse_qdq")
    assert kinds(g) == ["dequantize", "reshape", "fully_connected", "softmax", "transpose"]
    assert g.outputs[1].producer.kind == "dequantize"


def test_quantized_pads():
    b = Builder()
    x = b.input("x", (1, 3, 5, 5), "i8", q(0.05, -10))
    p = b.op("pad", [x], name="p", pads=[0, 0, 1, 1, 0, 0, 1, 1], value=-math.inf, quant=q(0.05, -10))
    m = b.op("max_pool", [p], name="max", dilations=[1, 1], quant=q(0.05, -10), **POOL)
    p2 = b.op("pad", [x], name="p2", pads=[0, 0, 1, 1, 0, 0, 1, 1], quant=q(0.05, -10))
    a = b.op("average_pool", [p2], name="avg", quant=q(0.05, -10), **POOL)
    p3 = b.op("pad", [x], name="p3", pads=[0, 0, 1, 1, 0, 0, 1, 1], quant=q(0.1, -10))  # requantizes: kept
    c = qconv(b, p3, "c", dtype="i8", quant=q(0.3, 0))
    g = check_pass("fuse", b.graph(m, a, c))
    assert kinds(g) == ["max_pool", "average_pool", "pad", "conv"]


def test_residual_add_relu_stays_quantized():
    """add(q, q) -> float -> relu -> q: the add rounds to relu's quantization, relu clamps integers."""
    b = Builder("residual")
    a = b.input("a", (1, 4, 3, 3), "i8", q(0.05, -3))
    c = b.input("c", (1, 4, 3, 3), "i8", q(0.07, 10))
    s = b.op("add", [a, c], name="add", dtype="f32")
    r = b.op("relu", [s], name="relu", dtype="i8", quant=q(0.1, -128))
    g = check_pass("fuse", b.graph(r), "fuse_residual", codes=1, seeds=range(4))
    assert kinds(g) == ["add", "relu"]
    assert g.ops[0].result.type.quant == g.ops[1].result.type.quant == q(0.1, -128)
