"""Float32 normalization C kernels: batch_normalization (constant statistics folded at compile
time, or runtime ones), instance_normalization, layer_normalization (any axis, broadcast scale and
bias, its optional mean and inv_std_dev results) and lrn (3-D and 4-D)."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from edgecc.backends.c.runner import have_cc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_cases import Case, const, kernel_tests, onnx_ref  # noqa: E402

pytestmark = pytest.mark.skipif(not have_cc(), reason="needs a C compiler")
rng = np.random.default_rng(4)


def data(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def lrn_ref(x, size, alpha, beta, bias):
    """ONNX LRN: sum of squares over channels [c - floor((size-1)/2), c + ceil((size-1)/2)]. (onnx's
    reference takes 4-D data only, and walks the batch axis where it means the channel axis.)"""
    c = x.shape[1]
    sq = np.zeros(x.shape)
    for ch in range(c):
        lo, hi = max(0, ch - (size - 1) // 2), min(c - 1, ch + size - 1 - (size - 1) // 2)
        sq[:, ch] = (x[:, lo:hi + 1].astype(np.float64) ** 2).sum(1)
    return (x / (bias + alpha / size * sq) ** beta).astype(np.float32)


CASES = []
for i, (x_shape, constant) in enumerate([((2, 3, 4, 5), True), ((2, 3, 4, 5), False), ((3, 10), True),
                                         ((3, 10), False), ((1, 16, 7), True), ((1, 8, 3, 3, 2), True)]):
    x, c = data(*x_shape), x_shape[1]
    scale, bias, mean = data(c), data(c), data(c)
    var = (np.abs(data(c)) + 0.5).astype(np.float32)
    expected = onnx_ref("BatchNormalization", [x, scale, bias, mean, var], dict(epsilon=1e-3))
    params = [const(v) if constant else v for v in (scale, bias, mean, var)]
    CASES.append(Case(f"batch_norm{i}", "batch_normalization", dict(epsilon=1e-3), [x] + params, expected,
                      atol=1e-4))

for i, x_shape in enumerate([(2, 3, 4, 5), (1, 4, 17), (1, 2, 3, 4, 5), (1, 8, 16, 16)]):
    x, c = data(*x_shape), x_shape[1]
    scale, bias = data(c), data(c)
    expected = onnx_ref("InstanceNormalization", [x, scale, bias], dict(epsilon=1e-4))
    CASES.append(Case(f"instance_norm{i}", "instance_normalization", dict(epsilon=1e-4),
                      [x, const(scale) if i % 2 else scale, bias], expected, atol=1e-4))

for i, (x_shape, axis, affine_shape, has_bias, n_results, constant) in enumerate([
        ((2, 3, 16), 2, (16,), True, 1, True), ((2, 3, 16), 2, (16,), False, 3, False),
        ((2, 3, 4, 5), 1, (3, 4, 5), True, 3, False), ((4, 10), 1, (10,), True, 2, True),
        ((2, 3, 4), 1, (1, 4), True, 1, True), ((1, 16, 32), 2, (32,), True, 1, True)]):
    x, scale, bias = data(*x_shape), data(*affine_shape), data(*affine_shape)
    expected = onnx_ref("LayerNormalization", [x, scale] + ([bias] if has_bias else []),
                        dict(axis=axis, epsilon=1e-5), n_outputs=n_results, opset=17)
    operands = [x, const(scale) if constant else scale] + ([const(bias) if constant else bias] if has_bias else [])
    CASES.append(Case(f"layer_norm{i}", "layer_normalization", dict(axis=axis, epsilon=1e-5), operands, expected,
                      atol=1e-4))

for i, (x_shape, size) in enumerate([((2, 5, 3, 4), 3), ((1, 10, 17), 4), ((1, 3, 8, 8), 5), ((1, 16, 2, 2), 1)]):
    x = data(*x_shape)
    attrs = dict(alpha=1e-3, beta=0.7, bias=1.5, size=size)
    CASES.append(Case(f"lrn{i}", "lrn", attrs, [x], [lrn_ref(x, size, 1e-3, 0.7, 1.5)]))

results, test_norm, test_norm_sanitized = kernel_tests(CASES)
