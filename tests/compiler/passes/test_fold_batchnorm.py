"""fold_batchnorm: BN into the producer's weights and bias, or into mul + add."""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pass_cases import Builder, check_pass, kinds, q  # noqa: E402

CONV = dict(strides=[1, 1], pads=[1, 1, 1, 1], dilations=[1, 1])


def bn(b, x, c, name="bn"):
    rng = np.random.default_rng(len(b.g.ops))
    params = [b.const(f"{name}_{p}", v) for p, v in
              [("scale", rng.uniform(0.5, 2, c)), ("bias", rng.standard_normal(c)),
               ("mean", rng.standard_normal(c)), ("var", rng.uniform(0.1, 2, c))]]
    return b.op("batch_normalization", [x, *params], name=name, epsilon=1e-3)


def test_conv_bn_golden():
    b = Builder("conv_bn")
    x = b.input("x", (1, 2, 4, 4))
    y = b.op("conv", [x, b.weights("w", (3, 2, 3, 3)), b.weights("b", (3,))], name="conv", **CONV)
    g = check_pass("fold_batchnorm", b.graph(bn(b, y, 3)), "fold_batchnorm_conv")
    assert kinds(g) == ["conv"]


def test_grouped_conv_without_bias_and_conv_transpose():
    b = Builder()
    x = b.input("x", (1, 4, 5, 5))
    y = b.op("conv", [x, b.weights("w", (6, 2, 3, 3))], name="dw", group=2, **CONV)
    y = bn(b, y, 6, "bn1")
    t = b.op("conv_transpose", [y, b.weights("wt", (6, 2, 2, 2)), b.weights("bt", (4,))], name="up",
             strides=[2, 2], pads=[0, 0, 0, 0], dilations=[1, 1], group=2, output_padding=[0, 0])
    g = check_pass("fold_batchnorm", b.graph(bn(b, t, 4, "bn2")))
    assert kinds(g) == ["conv", "conv_transpose"]


def test_dense_producers():
    b = Builder()
    x = b.input("x", (2, 5))
    y1 = b.op("gemm", [x, b.weights("b1", (4, 5)), b.weights("c1", (4,))], name="gemm", trans_b=1, alpha=0.5,
              beta=2.0)
    y2 = b.op("fully_connected", [x, b.weights("w2", (4, 5)), b.weights("c2", (4,))], name="fc")
    y3 = b.op("matmul", [x, b.weights("w3", (5, 4))], name="mm")
    g = check_pass("fold_batchnorm", b.graph(bn(b, y1, 4, "bn1"), bn(b, y2, 4, "bn2"), bn(b, y3, 4, "bn3")))
    assert kinds(g) == ["gemm", "fully_connected", "fully_connected"]


def test_standalone_bn_becomes_mul_add():
    b = Builder("bn_alone")
    x = b.input("x", (1, 3, 2, 2))
    r = b.op("relu", [x], name="r")  # not foldable: relu has no weights
    g = check_pass("fold_batchnorm", b.graph(bn(b, r, 3)), "fold_batchnorm_standalone")
    assert kinds(g) == ["relu", "mul", "add"]


def test_shared_or_fused_producer_is_not_folded():
    b = Builder()
    x = b.input("x", (1, 2, 4, 4))
    y = b.op("conv", [x, b.weights("w", (3, 2, 3, 3))], name="conv", **CONV)
    z = b.op("conv", [x, b.weights("w2", (3, 2, 3, 3))], name="convr", activation="relu", **CONV)
    g = check_pass("fold_batchnorm", b.graph(bn(b, y, 3, "bn1"), y, bn(b, z, 3, "bn2")))
    assert sorted(kinds(g)) == ["add", "add", "conv", "conv", "mul", "mul"]


def test_quantized_input_bn():
    b = Builder()
    x = b.input("x", (1, 3, 4, 4), "i8", q(0.05, -3))
    y = bn(b, x, 3)
    y.type = y.type.with_(dtype="i8", quant=q(0.1, 2))
    g = check_pass("fold_batchnorm", b.graph(y), codes=1)
    assert kinds(g) == ["mul", "add"] and g.ops[1].result.type.quant == q(0.1, 2)
