"""Float32 softmax and log_softmax C kernels along any axis (contiguous and strided runs),
including inputs large enough that an unshifted expf would overflow."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from edgecc.backends.c.runner import have_cc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_cases import Case, kernel_tests, onnx_ref  # noqa: E402

pytestmark = pytest.mark.skipif(not have_cc(), reason="needs a C compiler")
rng = np.random.default_rng(6)



def log_softmax_ref(x, axis):
    """x - max - log(sum(exp(x - max))) in float64: onnx's reference takes the log of the softmax,
    -inf where it underflows."""
    shifted = x.astype(np.float64) - x.max(axis=axis, keepdims=True)
    return [(shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))).astype(np.float32)]


CASES = []
for kind in ("softmax", "log_softmax"):
    for i, (x_shape, axis) in enumerate([((2, 12), 1), ((2, 3, 5), 1), ((2, 3, 5), 0), ((4, 16), 1), ((7,), 0),
                                         ((2, 3, 4, 5), 2), ((1, 4, 16, 16), 3), ((3, 10), 1)]):
        x = (rng.standard_normal(x_shape) * (60 if i == 7 else 5)).astype(np.float32)
        expected = onnx_ref("Softmax", [x], dict(axis=axis)) if kind == "softmax" else log_softmax_ref(x, axis)
        CASES.append(Case(f"{kind}{i}", kind, dict(axis=axis), [x], expected, atol=1e-5))

results, test_softmax, test_softmax_sanitized = kernel_tests(CASES)
