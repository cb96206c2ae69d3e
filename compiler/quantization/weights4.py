"""4-bit weights that keep each layer's output close to the float model's on the calibration data.

Per output channel, symmetric, codes in [-8, 7]: 16 levels leave no room for min-max's waste (one outlier
weight sets the step of the whole channel), so the step and the codes are chosen by the error they cause
in the layer's output. For a layer y = w . x + b and weights w' = s q (s the channel's step, q its codes),
the output's error on the calibration inputs is d . x with d = w - w'; its mean goes into the bias (a
shift of mu . d, which leaves exactly the variance), and what is left is the quadratic form

    E(d) = d^T C d,   C = the covariance of the layer's input patches (the receptive fields of a conv)

which only needs C, measured once over the calibration samples (`InputMoments`). For each channel:

  - the step: a search over clipping ranges, s = a * max|w| / 7 for a in CLIP_RATIOS (and the same over
    8 for the negative side), each scored by E;
  - the codes at each step: rounding to nearest, and rounding that adapts to the data (GPTQ: the codes
    are fixed one input at a time, in order of the input's variance, and the error each one makes is
    spread over the weights not fixed yet, through the Cholesky factor of C^-1, so that the later codes
    compensate it); the better of the two by E.

The channel keeps the (step, codes) of least E, and the bias its shift.

The layers are chosen in graph order (compiler/passes/quantize_int8.py), each on the inputs x the 4-bit
layers before it produce, which are not the float model's x_ref. The output to keep is still the float
model's, w . x_ref: the layer first takes the weights V (and offset c) that best give it from x on the
calibration data, V = w Cov(x_ref, x) Cov(x)^-1 (`InputMoments.target`), and the search above rounds V.
So each layer makes up, as far as its weights can, for what the layers before it lost: on ten trained
variants of the digits CNN of tests/models, +1.2 to +2.7 dB of end-to-end SQNR on 597 held-out images
(bench/quantize_variants.py).

Groups (depthwise and grouped
convs) have their own input patches, so their own C. Weights of [M, C/group, KH, KW] (convs, channels
first: the pass runs before layout) or [N, K] (fully connected).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

QMIN, QMAX = -8, 7
CLIP_RATIOS = np.linspace(0.5, 1.0, 26)  # steps tried, as fractions of the min-max step
DAMPING = 0.01  # of the mean input variance, added to C's diagonal before inverting (GPTQ's)


@dataclass
class Weights4:
    """A layer's 4-bit weights: codes (the weight's shape, int8 in [-8, 7]), a step per output channel
    (float32 values) and the shift of the bias per output channel (float64; zero where mu . d is)."""

    codes: np.ndarray
    scales: np.ndarray
    bias_shift: np.ndarray
    error: np.ndarray  # E per output channel (the calibration inputs' output variance lost)


class InputMoments:
    """Running sums of a layer's input patches, per group: count, sum and sum of outer products; and, when the
    patches the layer reads differ from the float model's (earlier layers already 4-bit), the float model's sum
    and the cross products, so that the output the layer aims at stays the float model's."""

    def __init__(self):
        self.n = 0
        self.sum = self.outer = None
        self.ref_sum = self.cross = None  # of the float model's patches; None while they are the same

    def add(self, patches: np.ndarray, reference: np.ndarray | None = None) -> None:
        """patches: [G, P, K] float64, what the layer reads; reference: the float model's, the same shape."""
        if self.sum is None:
            g, _, k = patches.shape
            self.sum, self.outer = np.zeros((g, k)), np.zeros((g, k, k))
        if reference is not None and self.ref_sum is None:  # until now both were the same
            self.ref_sum, self.cross = self.sum.copy(), self.outer.copy()
        self.n += patches.shape[1]
        self.sum += patches.sum(axis=1)
        self.outer += np.einsum("gpk,gpl->gkl", patches, patches)
        if self.ref_sum is not None:
            reference = patches if reference is None else reference
            self.ref_sum += reference.sum(axis=1)
            self.cross += np.einsum("gpk,gpl->gkl", patches, reference)

    def mean(self) -> np.ndarray:
        return self.sum / max(self.n, 1)

    def covariance(self) -> np.ndarray:
        mu = self.mean()
        return self.outer / max(self.n, 1) - mu[:, :, None] * mu[:, None, :]

    def target(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(V, c) for weights w [G, M, K]: V x + c, x the patches the layer reads, is the least-squares fit of the
        float output w x_ref on the calibration data (V = w where both read the same); with E and the rounding
        aimed at V, the layer's output error against the float model is E + what no weights of x can fit."""
        mu = self.mean()
        if self.ref_sum is None:
            return w, np.zeros(w.shape[:2])
        n = max(self.n, 1)
        mu_ref = self.ref_sum / n
        cov = self.covariance()
        cross = self.cross / n - mu[:, :, None] * mu_ref[:, None, :]  # Cov(x, x_ref) [G, K, K]
        diag = np.diagonal(cov, axis1=1, axis2=2)
        damped = cov + DAMPING * np.maximum(diag.mean(axis=1), 1e-12)[:, None, None] * np.eye(cov.shape[-1])
        # V = w Cov(x_ref, x) Cov(x)^-1 = w + w (Cov(x_ref, x) - Cov(x)) Cov(x)^-1: w itself where x_ref = x
        v = w + np.swapaxes(np.linalg.solve(damped, np.einsum("gkl,gml->gkm", cross - cov, w)), 1, 2)
        c = np.einsum("gmk,gk->gm", w, mu_ref) - np.einsum("gmk,gk->gm", v, mu)
        return v, c


def conv_patches(x: np.ndarray, attrs: dict, w_shape) -> np.ndarray:
    """The receptive fields of a channels-first conv's outputs, [G, N * outputs, CG * KH * KW] in the order of
    the weights [M, CG, *k] flattened (zero padding included, as the conv sees it)."""
    x = np.asarray(x, np.float64)
    nd = x.ndim - 2
    if nd == 1:  # a 1-D conv as a 2-D one of height 1
        x = x[:, :, None, :]
        attrs = dict(attrs, strides=[1, *attrs["strides"]], dilations=[1, *attrs["dilations"]],
                     pads=[0, attrs["pads"][0], 0, attrs["pads"][1]])
        w_shape = (w_shape[0], w_shape[1], 1, w_shape[2])
    n, c, _, _ = x.shape
    g = attrs["group"]
    kh, kw = w_shape[2], w_shape[3]
    (sh, sw), (dh, dw), p = attrs["strides"], attrs["dilations"], attrs["pads"]
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])))
    span_h, span_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    win = np.lib.stride_tricks.sliding_window_view(xp, (span_h, span_w), axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    oh, ow = win.shape[2], win.shape[3]
    win = win.reshape(n, g, c // g, oh, ow, kh, kw).transpose(1, 0, 3, 4, 2, 5, 6)
    return win.reshape(g, n * oh * ow, (c // g) * kh * kw)


def rows_patches(x: np.ndarray, k: int) -> np.ndarray:
    """A fully connected layer's input rows, [1, rows, K]."""
    return np.asarray(x, np.float64).reshape(1, -1, k)


def _codes(w: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Round to nearest at steps s (broadcast against w), saturated to [-8, 7]."""
    return np.clip(np.rint(w / s), QMIN, QMAX)


def _error(d: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """E per row: d [..., M, K] with cov [..., K, K] -> [..., M]."""
    return np.einsum("...mk,...kl,...ml->...m", d, cov, d)


def _gptq(w: np.ndarray, s: np.ndarray, chol: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Codes [G, M, K] fixed input by input in `order` (per group), each error spread over the inputs after it.
    w: [G, M, K]; s: [G, M, 1]; chol: the upper Cholesky factor of C^-1 in that order, [G, K, K]."""
    work = np.take_along_axis(w, order[:, None, :], axis=2).copy()
    codes = np.zeros_like(work)
    for i in range(work.shape[2]):
        col = work[:, :, i]
        q = np.clip(np.rint(col / s[:, :, 0]), QMIN, QMAX)
        codes[:, :, i] = q
        err = (col - q * s[:, :, 0]) / chol[:, i, i][:, None]
        work[:, :, i + 1:] -= err[:, :, None] * chol[:, i, i + 1:][:, None, :]
    back = np.argsort(order, axis=1)
    return np.take_along_axis(codes, back[:, None, :], axis=2)


def _inverse_factor(cov: np.ndarray):
    """(the order of the inputs, largest variance first, and the upper Cholesky factor of the damped C^-1 in that
    order) per group, as GPTQ takes them; inputs that never vary keep their place and a unit variance."""
    k = cov.shape[-1]
    diag = np.diagonal(cov, axis1=1, axis2=2)
    order = np.argsort(-diag, axis=1, kind="stable")
    damped = cov + DAMPING * np.maximum(diag.mean(axis=1), 1e-12)[:, None, None] * np.eye(k)
    damped = np.take_along_axis(np.take_along_axis(damped, order[:, :, None], axis=1), order[:, None, :], axis=2)
    inv = np.linalg.inv(damped)
    inv = (inv + np.swapaxes(inv, 1, 2)) / 2
    return order, np.swapaxes(np.linalg.cholesky(inv), 1, 2)


def choose(weights: np.ndarray, moments: InputMoments) -> Weights4:
    """The 4-bit weights of a layer (see the module docstring). weights: [M, ...], output channels first, the rest
    flattening to the input patches' order; moments: of its input patches, one group per weight group."""
    w = np.asarray(weights, np.float64)
    m = w.shape[0]
    cov, mu = moments.covariance(), moments.mean()
    groups, k = cov.shape[0], cov.shape[-1]
    wg, fit = moments.target(w.reshape(groups, m // groups, k))
    amax = np.abs(wg).max(axis=2, keepdims=True)
    pos, neg = np.maximum(wg.max(axis=2, keepdims=True), 0), np.maximum(-wg.min(axis=2, keepdims=True), 0)
    base = np.stack([amax / QMAX, np.maximum(pos / QMAX, neg / -QMIN)])  # both ends of the grid
    base = np.where(base > 0, base, 1.0)
    order, chol = _inverse_factor(cov)
    best_err = np.full(wg.shape[:2], np.inf)
    best_codes, best_scale = np.zeros_like(wg), np.ones(wg.shape[:2])
    for b in base:
        for ratio in CLIP_RATIOS:
            s = (b * ratio).astype(np.float32).astype(np.float64)
            for codes in (_codes(wg, s), _gptq(wg, s, chol, order)):
                err = _error(wg - codes * s, cov)
                better = err < best_err
                best_err = np.where(better, err, best_err)
                best_codes = np.where(better[:, :, None], codes, best_codes)
                best_scale = np.where(better, s[:, :, 0], best_scale)
    shift = np.einsum("gmk,gk->gm", wg - best_codes * best_scale[:, :, None], mu) + fit
    return Weights4(best_codes.reshape(w.shape).astype(np.int8), best_scale.reshape(m).astype(np.float32),
                    shift.reshape(m), best_err.reshape(m))
