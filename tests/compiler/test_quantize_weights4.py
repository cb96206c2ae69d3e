"""compiler/quantization/weights4.py: the 4-bit steps and codes that keep a layer's output close to the float
one's, measured on inputs with a structure (correlated, offset), against min-max rounding."""
from __future__ import annotations

import numpy as np
import pytest

from edgecc.compiler.quantization import weights4 as w4
from edgecc.compiler.quantization.scheme import weights4_and_bias
from edgecc.ir.interp import run
from edgecc.ir import Graph, Op, TensorType, Value
from edgecc.ir.ops import fill_defaults

rng = np.random.default_rng(7)


def correlated_inputs(n, k, groups=1):
    """[G, n, K] patches with correlated, offset entries (as a relu's outputs are)."""
    mix = rng.standard_normal((groups, k, k)) / np.sqrt(k) + np.eye(k)
    x = np.einsum("gnk,gkl->gnl", rng.standard_normal((groups, n, k)), mix)
    return np.maximum(x + 0.5, 0.0)


def moments(patches):
    m = w4.InputMoments()
    for part in np.array_split(patches, 3, axis=1):  # in several samples, as calibration adds them
        m.add(part)
    return m


def output_error(w, codes, scales, shift, patches):
    """Mean squared error of the layer's outputs (bias shift included) over the patches, per channel."""
    g, _, k = patches.shape
    wg = w.reshape(g, -1, k)
    q = (codes.reshape(g, -1, k) * scales.reshape(g, -1, 1))
    err = np.einsum("gnk,gmk->gnm", patches, wg - q) - shift.reshape(g, 1, -1)
    return np.mean(err ** 2, axis=1).reshape(-1)


def minmax(w):
    s = (np.abs(w).max(axis=1) / 7).astype(np.float32).astype(np.float64)
    return np.clip(np.rint(w / s[:, None]), -8, 7), s


def test_codes_steps_and_the_error_they_save():
    patches = correlated_inputs(600, 24)
    w = rng.standard_normal((16, 24)) * rng.uniform(0.2, 2.0, (16, 1))
    w[3, 5] = 9.0  # an outlier: min-max would waste the channel's levels on it
    chosen = w4.choose(w, moments(patches))
    assert chosen.codes.dtype == np.int8 and chosen.codes.min() >= -8 and chosen.codes.max() <= 7
    assert np.array_equal(chosen.scales, chosen.scales.astype(np.float32))
    codes, s = minmax(w)
    ours = output_error(w, chosen.codes, chosen.scales, chosen.bias_shift, patches)
    theirs = output_error(w, codes, s, np.zeros(16), patches)
    assert np.all(ours <= theirs * 1.0001)
    assert ours.sum() < 0.5 * theirs.sum()  # rounding to the data and clipping: well below min-max


def test_adaptive_rounding_beats_rounding_to_nearest_at_the_same_step():
    patches = correlated_inputs(800, 32)
    m = moments(patches)
    w = rng.standard_normal((1, 8, 32))
    s = np.full((1, 8, 1), np.float32(np.abs(w).max() / 7), np.float64)
    order, chol = w4._inverse_factor(m.covariance())
    cov = m.covariance()
    nearest = w4._error(w - w4._codes(w, s) * s, cov).sum()
    adaptive = w4._error(w - w4._gptq(w, s, chol, order) * s, cov).sum()
    assert adaptive < 0.8 * nearest


def test_the_bias_shift_takes_the_mean_error():
    patches = correlated_inputs(500, 12)
    w = rng.standard_normal((4, 12))
    chosen = w4.choose(w, moments(patches))
    real = chosen.codes * chosen.scales.astype(np.float64)[:, None]
    err = np.einsum("nk,mk->nm", patches[0], w - real) - chosen.bias_shift
    np.testing.assert_allclose(err.mean(axis=0), 0.0, atol=1e-9)


def test_groups_have_their_own_inputs():
    patches = correlated_inputs(400, 9, groups=4)
    w = rng.standard_normal((8, 1, 3, 3))  # 4 groups of 2 output channels
    chosen = w4.choose(w, moments(patches))
    assert chosen.codes.shape == w.shape and chosen.scales.shape == (8,)
    ours = output_error(w.reshape(8, 9), chosen.codes.reshape(8, 9), chosen.scales, chosen.bias_shift, patches)
    codes, s = minmax(w.reshape(8, 9))
    assert np.all(ours <= output_error(w.reshape(8, 9), codes, s, np.zeros(8), patches) * 1.0001)


@pytest.mark.parametrize("attrs, c, wshape, xshape", [
    (dict(strides=[1, 1], pads=[1, 1, 1, 1], dilations=[1, 1], group=1), 3, (5, 3, 3, 3), (2, 3, 7, 6)),
    (dict(strides=[2, 1], pads=[0, 1, 2, 0], dilations=[1, 2], group=2), 4, (6, 2, 3, 2), (1, 4, 9, 8)),
    (dict(strides=[1, 1], pads=[1, 1, 1, 1], dilations=[1, 1], group=4), 4, (4, 1, 3, 3), (1, 4, 5, 5)),
    (dict(strides=[2], pads=[1, 0], dilations=[1], group=1), 3, (4, 3, 3), (1, 3, 11)),
])
def test_patches_are_what_the_conv_reads(attrs, c, wshape, xshape):
    """patches x weights (per group) is the conv's output: the interpreter's conv on the same data."""
    x = rng.standard_normal(xshape).astype(np.float32)
    w = rng.standard_normal(wshape).astype(np.float32)
    xv, wv = Value("x", TensorType(xshape, "f32")), Value("w", TensorType(wshape, "f32"), w)
    from edgecc.ir.ops import infer_shapes
    op = Op("conv", [xv, wv], [], fill_defaults("conv", attrs), "c")
    yshape = infer_shapes(op)[0]
    yv = Value("y", TensorType(yshape, "f32"))
    op = Op("conv", [xv, wv], [yv], fill_defaults("conv", attrs), "c")
    (y,) = run(Graph("g", [xv], [yv], [op], [wv]), [x])
    p = w4.conv_patches(x, attrs, wshape)
    g = attrs["group"]
    out = np.einsum("gpk,gmk->gpm", p, w.reshape(g, wshape[0] // g, -1).astype(np.float64))
    n, spatial = xshape[0], tuple(yshape[2:])
    out = out.reshape(g, n, *spatial, wshape[0] // g)
    want = np.moveaxis(np.asarray(y, np.float64).reshape(n, g, wshape[0] // g, *spatial), 2, -1)
    np.testing.assert_allclose(np.moveaxis(out, 0, 1), want, rtol=1e-5, atol=1e-5)


def test_a_bias_too_large_for_the_accumulator_coarsens_the_step():
    w = rng.standard_normal((3, 5)) * 0.01
    chosen = w4.Weights4(np.clip(np.rint(w / 0.002), -8, 7).astype(np.int8), np.full(3, 0.002, np.float32),
                         np.zeros(3), np.zeros(3))
    bias = np.array([0.0, 1e5, 0.0])  # at 0.02 * 0.002 a step, 2.5e9 codes: beyond 2^30 / 16
    codes, wq, bcodes, bq = weights4_and_bias(w, chosen, bias, 0.02)
    assert wq.scale[0] == pytest.approx(0.002) and wq.scale[1] > 0.002
    assert abs(int(bcodes[1])) <= 2 ** 26 + 1
    np.testing.assert_array_equal(codes[1], np.clip(np.rint(w[1] / wq.scale[1]), -8, 7))
    np.testing.assert_array_equal(codes[0], chosen.codes[0])


def test_a_layer_aims_at_the_float_output_through_the_inputs_it_reads():
    """Earlier layers already 4-bit hand this one inputs off the float model's (here scaled and shifted, plus
    noise): chosen against the float model's output (InputMoments given both), its output error against that
    is well below that of weights chosen as if the inputs were the float model's."""
    ref = correlated_inputs(900, 16)
    got = 0.85 * ref + 0.05 + 0.02 * rng.standard_normal(ref.shape)
    w = rng.standard_normal((6, 16))
    aimed, naive = w4.InputMoments(), w4.InputMoments()
    for r, q in zip(np.array_split(ref, 3, axis=1), np.array_split(got, 3, axis=1)):
        aimed.add(q, r)
        naive.add(q)

    def error(chosen):
        real = chosen.codes * chosen.scales.astype(np.float64)[:, None]
        return np.mean((ref[0] @ w.T - got[0] @ real.T - chosen.bias_shift) ** 2)

    assert error(w4.choose(w, aimed)) < 0.5 * error(w4.choose(w, naive))


def test_the_same_inputs_aim_at_the_weights_themselves():
    """Given the float model's inputs as its own reference, the target is w itself: nothing to correct."""
    patches = correlated_inputs(300, 10)
    m = w4.InputMoments()
    m.add(patches, patches.copy())
    w = rng.standard_normal((1, 4, 10))
    v, c = m.target(w)
    np.testing.assert_allclose(v, w, atol=1e-9)
    np.testing.assert_allclose(c, 0.0, atol=1e-9)
