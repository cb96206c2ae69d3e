"""sparsity: density, zeroed output channels and the N:M pattern along the reduction axis, float and int8."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from edgecc.compiler.passes import PassContext, get_pass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pass_cases import Builder, q  # noqa: E402

CONV = dict(strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1], group=1)
RNG = np.random.default_rng(7)


def nm_weights(shape, n, m, axis):
    """Random non-zero weights with exactly n non-zeros in every m along `axis`."""
    w = np.moveaxis(RNG.choice([-3.0, -1.0, 2.0, 5.0], size=shape), axis, -1).copy()
    for idx in np.ndindex(w.shape[:-1]):
        for start in range(0, w.shape[-1], m):
            keep = RNG.choice(m, size=n, replace=False)
            group = np.zeros(m)
            group[keep] = 1
            w[idx + (slice(start, start + m),)] *= group[:len(w[idx + (slice(start, start + m),)])]
    return np.moveaxis(w, -1, axis)


def analysed(w, kind="conv", dtype="f32", quant=None):
    b = Builder("s")
    if kind == "conv":
        x = b.input("x", (1, w.shape[1], 4, 4))
        y = b.op("conv", [x, b.const("w", w.astype(np.int8) if dtype == "i8" else w.astype(np.float32), dtype, quant)],
                 name="layer", **CONV)
    else:
        x = b.input("x", (1, w.shape[1]))
        y = b.op("fully_connected", [x, b.const("w", w.astype(np.float32), dtype)], name="layer")
    g = get_pass("sparsity")(b.graph(y), PassContext())
    return g.meta["sparsity"]["layer"]


@pytest.mark.parametrize("n, m", [(1, 16), (1, 8), (1, 4), (2, 4)])
def test_n_of_m_along_the_input_channels_of_a_conv(n, m):
    w = nm_weights((8, 32, 3, 3), n, m, axis=1)
    entry = analysed(w)
    assert entry["pattern"] == f"{n}:{m}"
    assert entry["density"] == pytest.approx(n / m)


def test_zeros_in_the_wrong_place_are_unstructured():
    w = np.ones((4, 8, 1, 1))
    w[:, 0:3, 0, 0] = 0  # three zeros then five non-zeros: the second 4 inputs hold 4 non-zeros
    assert analysed(w)["pattern"] == "unstructured"
    w = nm_weights((8, 3, 3, 32), 2, 4, axis=1)  # 2:4 along the kernel rows, not the input channels
    assert analysed(np.moveaxis(w, 3, 1))["pattern"] == "unstructured"


def test_whole_zero_output_channels_and_int8_zero_points():
    w = RNG.integers(1, 100, size=(6, 16, 1, 1))
    w[[1, 4]] = 0
    entry = analysed(w, dtype="i8", quant=q([0.1] * 6, 0, axis=0))
    assert entry == dict(density=pytest.approx(4 / 6, abs=1e-6), pattern="channels", zero_output_channels=2)


def test_dense_zero_and_fully_connected():
    assert analysed(np.ones((5, 12)), kind="fc")["pattern"] == "dense"
    assert analysed(np.zeros((5, 12)), kind="fc") == dict(density=0.0, pattern="zero", zero_output_channels=5)
    w = nm_weights((5, 12), 2, 4, axis=1)
    assert analysed(w, kind="fc")["pattern"] == "2:4"
