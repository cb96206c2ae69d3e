"""Float32 fully_connected, matmul and gemm C kernels: constant (packed) and runtime right-hand
sides, batched and broadcast matmul, 1-D operands, gemm's alpha, beta, transposes and every shape
of C, fused activations, column counts that leave remainder tiles."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from edgecc.backends.c.kernels import Unsupported
from edgecc.backends.c.kernels.matmul import matmul
from edgecc.backends.c.runner import have_cc
from edgecc.ir import Op, TensorType, Value
from edgecc.ir.types import Quant

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_cases import Case, const, kernel_tests, onnx_ref  # noqa: E402

pytestmark = pytest.mark.skipif(not have_cc(), reason="needs a C compiler")
rng = np.random.default_rng(3)


def data(*shape):
    return rng.standard_normal(shape).astype(np.float32)


CASES = []
# ---- fully_connected: y = x w^T + bias, then the activation -------------------------------
for i, (x_shape, n, w_const, bias, act, params) in enumerate([
        ((3, 20), 12, True, "const", "relu", []),
        ((2, 5, 33), 7, True, None, "none", []),
        ((4, 16), 24, False, "runtime", "none", []),
        ((1, 640), 128, True, "const", "relu", []),
        ((16, 64), 40, True, "const", "clip", [-1.0, 1.0]),
        ((2, 9), 3, False, "const", "sigmoid", []),
        ((5, 8), 17, True, "runtime", "leaky_relu", [0.1])]):
    x, w, b = data(*x_shape), data(n, x_shape[-1]), data(n)
    y = x.astype(np.float64) @ w.T + (b if bias else 0)
    y = {"none": y, "relu": np.maximum(y, 0), "clip": np.clip(y, -1, 1), "sigmoid": 1 / (1 + np.exp(-y)),
         "leaky_relu": np.where(y < 0, 0.1 * y, y)}[act]
    operands = [x, const(w) if w_const else w] + ([] if bias is None else [const(b) if bias == "const" else b])
    CASES.append(Case(f"fc{i}", "fully_connected", dict(activation=act, act_params=params), operands,
                      [y.astype(np.float32)], atol=1e-4))

# ---- matmul: batched, broadcast, 1-D ------------------------------------------------------
for i, (a_shape, b_shape, b_const) in enumerate([
        ((3, 4), (4, 5), False), ((2, 3, 4), (4, 5), True), ((2, 1, 3, 4), (5, 4, 9), False),
        ((4,), (2, 4, 3), True), ((2, 3, 4), (4,), False), ((4,), (4,), False), ((7, 9), (9, 17), True),
        ((1, 16, 32), (1, 32, 16), False), ((3, 1, 5), (1, 5, 12), True)]):
    a, b = data(*a_shape), data(*b_shape)
    CASES.append(Case(f"matmul{i}", "matmul", {}, [a, const(b) if b_const else b],
                      [np.matmul(a.astype(np.float64), b).astype(np.float32)], atol=1e-4))

# ---- gemm: y = alpha * A' B' + beta * C ---------------------------------------------------
for i, (ta, tb, c_shape, c_const, alpha, beta) in enumerate([
        (0, 0, None, False, 1.0, 1.0), (1, 0, (5,), True, 1.0, 1.0), (0, 1, (1, 5), True, 0.5, 2.0),
        (1, 1, (3, 5), False, 1.0, 0.5), (0, 1, (3, 1), True, 2.0, 1.0), (0, 0, (), True, 1.0, 1.0),
        (0, 1, (5,), False, 1.0, 1.0), (1, 0, (3, 5), True, 0.0, 3.0)]):
    a = data(4, 3) if ta else data(3, 4)
    b = data(5, 4) if tb else data(4, 5)
    c = None if c_shape is None else data(*c_shape)
    attrs = dict(alpha=alpha, beta=beta, trans_a=ta, trans_b=tb)
    expected = onnx_ref("Gemm", [a, b] + ([] if c is None else [c]),
                        dict(alpha=alpha, beta=beta, transA=ta, transB=tb))
    operands = [a, const(b) if i % 2 else b] + ([] if c is None else [const(c) if c_const else c])
    CASES.append(Case(f"gemm{i}", "gemm", attrs, operands, expected, atol=1e-4))

results, test_matmul, test_matmul_sanitized = kernel_tests(CASES)


def test_integer_and_quantized_matmul_are_not_float_kernels():
    a, b, y = (Value(n, TensorType((2, 2), "i32")) for n in "aby")
    with pytest.raises(Unsupported, match="i32"):
        matmul(Op("matmul", [a, b], [y], {}, "m"))
    q = Quant((0.5,), (0,))
    a, b, y = (Value(n, TensorType((2, 2), "i8", q)) for n in "aby")
    with pytest.raises(Unsupported, match="quantized"):
        matmul(Op("matmul", [a, b], [y], {}, "m"))
