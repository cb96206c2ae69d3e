"""C elementwise kernels: integer Pow (the result keeps the base's type; the exponent may be an
integer or a float), against onnx's reference implementation."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from edgecc.backends.c.runner import have_cc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_cases import Arg, Case, kernel_tests, onnx_ref, random_data  # noqa: E402

pytestmark = pytest.mark.skipif(not have_cc(), reason="needs a C compiler")
rng = np.random.default_rng(11)
CASES = []


def pow_case(name, base, exponent, const_exponent=False):
    expected = onnx_ref("Pow", [base, exponent], {})[0]
    CASES.append(Case(name, "pow", {}, [base, Arg(exponent, const=const_exponent)], [expected]))


small = rng.integers(-6, 7, (3, 4)).astype(np.int32)
pow_case("pow_i32_i32", small, rng.integers(0, 6, (3, 4)).astype(np.int32))
# a float exponent: computed in double, truncated toward zero into the base's type (2 ** -1 is 0); not
# negative bases, whose fractional powers are NaN, which no integer holds (each engine stores its own)
pow_case("pow_i32_f32", np.abs(small), rng.uniform(-1.5, 4.5, (3, 4)).astype(np.float32))
pow_case("pow_i32_f32_whole", small, np.array([0.0, 1.0, 2.0, 3.0], np.float32))
pow_case("pow_i64_f32_bcast", rng.integers(-40, 41, (2, 3, 4)).astype(np.int64), np.array([0.5, 3.0, 7.0, 11.0],
                                                                                          np.float32))
pow_case("pow_i64_i64_const", rng.integers(-9, 10, (5,)).astype(np.int64), np.array(13, np.int64),
         const_exponent=True)
pow_case("pow_i8_i32", rng.integers(-5, 6, (6,)).astype(np.int8), np.array([0, 1, 2, 3, 2, 1], np.int32))
pow_case("pow_u8_f32", rng.integers(0, 16, (6,)).astype(np.uint8), np.full(6, 2.0, np.float32))
pow_case("pow_f32_i32", random_data(rng, (4,)), np.array([0, 1, 2, 3], np.int32))

results, test_elementwise, test_elementwise_sanitized = kernel_tests(CASES)
