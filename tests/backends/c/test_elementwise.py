"""C elementwise kernels: Pow with an integer base (the result keeps the base's type; the exponent may
be an integer or a float).

Expected values come from Python's integers, not from a double: a whole exponent gives the exact power
wrapped to the base's type, which a double holds only up to 2^53 (beyond it numpy's and libm's pow
round apart, so a double reference makes the test depend on the machine). A fractional exponent is
computed in double (math.pow) and truncated; NaN and out-of-range results give the type's minimum.
The same cases also run through onnxruntime, which computes in double: where its double is exact and
in range, ours must equal it."""
from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest

from edgecc.backends.c.runner import have_cc
from edgecc.ir.interp import BINARY_FNS

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_cases import Arg, Case, check, kernel_tests, ort_ref, random_data, run_cases  # noqa: E402

pytestmark = pytest.mark.skipif(not have_cc(), reason="needs a C compiler")
rng = np.random.default_rng(11)
CASES = []


def exact_pow(base: int, exponent, dtype) -> int:
    """One element of integer Pow, in Python's unbounded integers."""
    info = np.iinfo(dtype)
    whole = float(exponent).is_integer() if isinstance(exponent, float) else True
    if whole:
        e = int(exponent)
        bits = info.bits
        if e < 0:
            power = info.min if base == 0 else (base if e % 2 else 1) if abs(base) == 1 else 0
            power %= 1 << bits
        else:
            power = pow(base, e, 1 << bits)  # wrapped, as integer multiplication in the type does
        return power - (1 << bits) if info.min < 0 and power > info.max else power
    try:
        real = math.pow(base, exponent)
    except ValueError:  # a negative base to a fractional power: NaN
        return info.min
    return int(real) if info.min <= real < info.max + 1 else info.min


def pow_expected(base: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    if base.dtype == np.float32:
        return np.power(base, exponent).astype(np.float32)
    b, e = np.broadcast_arrays(base, exponent)
    flat = [exact_pow(int(x), float(y) if e.dtype.kind == "f" else int(y), base.dtype)
            for x, y in zip(b.ravel(), e.ravel())]
    return np.array(flat, dtype=base.dtype).reshape(b.shape)


def pow_case(name, base, exponent, const_exponent=False):
    CASES.append(Case(name, "pow", {}, [base, Arg(exponent, const=const_exponent)], [pow_expected(base, exponent)]))


small = rng.integers(-6, 7, (3, 4)).astype(np.int32)
pow_case("pow_i32_i32", small, rng.integers(0, 6, (3, 4)).astype(np.int32))
pow_case("pow_i32_f32", np.abs(small), rng.uniform(-1.5, 4.5, (3, 4)).astype(np.float32))
pow_case("pow_i32_f32_whole", small, np.array([0.0, 1.0, 2.0, 3.0], np.float32))
# bases to 11 pass 2^53: the exact integer, not the nearest double; -40..40 to 0.5 are NaN for negatives
pow_case("pow_i64_f32_bcast", rng.integers(-40, 41, (2, 3, 4)).astype(np.int64), np.array([0.5, 3.0, 7.0, 11.0],
                                                                                          np.float32))
pow_case("pow_i64_i64_const", rng.integers(-9, 10, (5,)).astype(np.int64), np.array(13, np.int64),
         const_exponent=True)
# past the type's range (wraps), negative exponents (truncated reciprocals; 0 to one of them), 2^53 + 1
pow_case("pow_i32_i32_wrap", np.array([50000, -3, 7, 0, 1, -1, 2, -2], np.int32),
         np.array([2, 21, 13, -1, -5, -3, -1, 31], np.int32))
pow_case("pow_i64_i64_wrap", np.array([3, 2**53 + 1, -7, 0, -1, 5], np.int64), np.array([41, 1, 23, -2, -7, 30], np.int64))
pow_case("pow_i32_f32_wrap", np.array([50000, -3, 0, 5, 3], np.int32), np.array([2.0, 21.0, -1.0, 1e10, 0.25], np.float32))
pow_case("pow_i8_i32", rng.integers(-5, 6, (6,)).astype(np.int8), np.array([0, 1, 2, 3, 2, 1], np.int32))
pow_case("pow_u8_f32", rng.integers(0, 16, (6,)).astype(np.uint8), np.full(6, 2.0, np.float32))
pow_case("pow_f32_i32", random_data(rng, (4,)), np.array([0, 1, 2, 3], np.int32))

results, test_elementwise, test_elementwise_sanitized = kernel_tests(CASES)
INT_CASES = [c for c in CASES if c.operands[0].dtype != np.float32]


@pytest.mark.parametrize("c", INT_CASES, ids=lambda c: c.name)
def test_interpreter_pow_matches(c):
    """The interpreter (constant folding) computes the same integers as the C."""
    base, exponent = c.operands[0], c.operands[1].data
    np.testing.assert_array_equal(BINARY_FNS["pow"](base, exponent), c.expected[0])


ORT_CASES = [c for c in INT_CASES if c.operands[0].dtype in (np.int32, np.int64)]  # ONNX Pow's integer bases


@pytest.mark.parametrize("c", ORT_CASES, ids=lambda c: c.name)
def test_pow_agrees_with_onnxruntime(c, results):
    """Where onnxruntime's double is exact (|x| <= 2^53) and inside the type, it and we agree."""
    base, exponent = c.operands[0], c.operands[1].data
    theirs = ort_ref("Pow", [base, exponent], {}, [base.dtype])[0]
    ours = results[c.name][0]
    b, e = np.broadcast_arrays(base.astype(np.float64), exponent.astype(np.float64))
    with np.errstate(all="ignore"):
        real = np.power(b, e)
    info = np.iinfo(base.dtype)
    exact_in_double = np.isfinite(real) & (np.abs(real) <= 2.0 ** 53) & (np.abs(b) < 2.0 ** 53)
    comparable = exact_in_double & (real >= info.min) & (real <= info.max)
    assert comparable.any()
    np.testing.assert_array_equal(ours[comparable], theirs[comparable])


@pytest.mark.parametrize("name", ["pow_i32_i32", "pow_i32_f32"])
def test_pow_alone_builds_warning_free(name):
    """A model whose integer Pow has only whole (or only float) exponents defines only the helpers it calls:
    an unused static function fails -Wall -Werror (the ONNX node case pow_types_int32_int32 did)."""
    case = next(c for c in CASES if c.name == name)
    check(case, run_cases([case])[name])
