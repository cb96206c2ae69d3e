"""The exact integer requantization (backends/c/kernels/fixedpoint.py): wherever it finds an integer form,
that form gives onnxruntime's float32 result for every accumulator the layer can reach, checked here by
brute force over the whole range, in the integer arithmetic the generated C does."""
import numpy as np

from edgecc.backends.c.kernels import fixedpoint

F32 = np.float32


def float_result(acc, m, zp, lo, hi):
    """onnxruntime: rint(float32(acc) * m) + zp, saturated."""
    return np.clip(fixedpoint.float_requant(acc, m) + zp, lo, hi)


def integer_result(acc, found, c, lo, hi):
    """What the C computes: ((acc * 2^L * M + Bh * 2^32) >> 32) >> R, saturated (q_macros.store_fixed)."""
    a = acc * (1 << found["L"])
    if found["mult"][c]:
        assert np.all(np.abs(a) < 2 ** 31)  # the operand of SMMLA stays an int32
    a = (a + 2 ** 31) % 2 ** 32 - 2 ** 31  # where M is 0 it may wrap, as the C's unsigned shift does
    t = (a * int(found["mult"][c]) + int(found["add"][c]) * 2 ** 32) >> 32
    return np.clip(t >> found["R"], lo, hi)


def check_layer(scales, zp, lo, hi, acc_min, acc_max):
    found = fixedpoint.layer(scales, lo, hi, zp, acc_min, acc_max)
    assert found is not None
    for c, m in enumerate(scales):
        if not found["exact"][c]:
            continue
        lo_acc, hi_acc = int(acc_min[c]), int(acc_max[c])
        if hi_acc - lo_acc < 2 ** 21:
            acc = np.arange(lo_acc, hi_acc + 1, dtype=np.int64)
        else:  # too many to try all: the ends and a random sample
            acc = np.concatenate([np.arange(lo_acc, lo_acc + 1000), np.arange(hi_acc - 999, hi_acc + 1),
                                  np.random.default_rng(c).integers(lo_acc, hi_acc, 2 ** 20)])
        np.testing.assert_array_equal(integer_result(acc, found, c, lo, hi), float_result(acc, F32(m), zp, lo, hi),
                                      err_msg=f"channel {c}, m = {m!r}")
    return found


def test_random_layers_are_exact_where_an_integer_form_is_found():
    rng = np.random.default_rng(5)
    exact = total = 0
    for _ in range(6):
        n = 8
        scales = (10 ** rng.uniform(-3.3, -1.5, n)).astype(F32)
        reach = rng.integers(20000, 300000, n)
        bias = rng.integers(-3000, 3000, n)
        found = check_layer(scales, int(rng.integers(-128, 0)), -128, 127, bias - reach, bias + reach)
        exact += int(found["exact"].sum())
        total += n
    assert exact >= 0.9 * total  # most channels have one (the MLPerf models: 98 %)


def test_relu_bounds_and_tiny_or_dead_channels():
    """A relu lower bound above the type's minimum; a channel whose multiplier is so small that every
    reachable accumulator gives the same value (M = 0), with a range so wide that it must not bound L."""
    scales = np.array([0.004, 1e-12, 0.02], F32)
    found = check_layer(scales, -20, -20, 127, np.array([-40000, -2 ** 30, -9000]), np.array([40000, 2 ** 30, 9000]))
    assert found["exact"][1] and found["mult"][1] == 0 and found["L"] > 10


def test_exactly_representable_multipliers():
    """Multipliers with few significant bits: products exactly at ties (round half to even)."""
    scales = np.array([0.25, 0.125, 0.0625, 0.5], F32)
    check_layer(scales, 3, -128, 127, np.array([-1000] * 4), np.array([1000] * 4))
