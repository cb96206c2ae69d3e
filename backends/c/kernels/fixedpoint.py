"""Integer requantization that gives exactly the float32 result, found at compile time.

onnxruntime requantizes an int32 accumulator as q = clamp(rint(float(acc) * m) + zp) with m a float32
(requant.py). On a Cortex-M that is 8 instructions an output (to float, multiply, round, back, add,
saturate, store); the integer form q = clamp((acc * 2^L * M + Bh * 2^32) >> (32 + R)) is 4: LSL, SMMLA
(Bh + the high word of the product), SSAT with its shift, STRB (and loads of M and Bh per channel).

It cannot be the same function for every int32: the float product is rounded to 24 bits first, and near
a tie that moves a result by one. But the accumulators a layer can produce are bounded (by its weights,
bias and the input range), and over a bounded range both functions are non-decreasing step functions,
fixed by the least accumulator that reaches each output value (its threshold). The float thresholds are
computed here exactly (bisection on the float32 formula), and an integer (M, B) reproduces them all if
the line acc -> (k 2^S - B) / M passes between T_k - 1 and T_k for every k: a two-variable linear
feasibility problem, solved for the slope interval, then checked exactly in integers. Where no line fits
(a few channels in a hundred), the caller keeps the float formula.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .requant import F32

HEADROOM = 30  # the largest M of a layer is scaled to about 2^30: an int32 operand of SMMLA, with room


def float_requant(acc, m) -> np.ndarray:
    """rint(float32(acc) * m) in float32, as int64 (no clamp)."""
    with np.errstate(over="ignore", invalid="ignore"):
        v = (np.asarray(acc, np.int64).astype(F32) * F32(m)).astype(F32)
        return np.rint(np.clip(v, F32(-2.0 ** 40), F32(2.0 ** 40))).astype(np.int64)


def thresholds(m: float, ks: np.ndarray) -> np.ndarray:
    """T_k: the least accumulator whose float requantization is >= k, for each k (vectorized bisection)."""
    guess = np.ceil((ks - 0.5) / float(m)).astype(np.int64)
    pad = 8 + (np.abs(guess) >> 16)  # float32(acc) is exact to 2^24, then off by a relative 2^-24
    lo, hi = guess - pad, guess + pad  # f(lo) < k <= f(hi)
    while np.any(float_requant(lo, m) >= ks):
        lo = np.where(float_requant(lo, m) >= ks, lo - pad, lo)
    while np.any(float_requant(hi, m) < ks):
        hi = np.where(float_requant(hi, m) < ks, hi + pad, hi)
    while np.any(hi - lo > 1):
        mid = (lo + hi) // 2
        up = float_requant(mid, m) >= ks
        hi, lo = np.where(up, mid, hi), np.where(up, lo, mid)
    return hi


@lru_cache(maxsize=None)
def channel(m: float, lo: int, hi: int, acc_min: int, acc_max: int, S: int, grain: int = 1, offset: int = 0):
    """(M, B) with clamp((acc * M + B) >> S, lo, hi) == clamp(rint(float32(acc + offset) * m), lo, hi) for
    every acc in [acc_min, acc_max] (lo, hi relative to the zero point) and B a multiple of `grain`, or None.
    An offset (a bias the accumulator leaves out) only moves the thresholds: B takes it in.
    (Cached: a layer's kernel is chosen more than once.)"""
    if not m > 0 or S > 52:  # k 2^S and M T_k stay well inside int64
        return None
    ks = np.arange(lo + 1, hi + 1, dtype=np.int64)
    T = thresholds(m, ks) - offset
    inside = (T > acc_min) & (T <= acc_max)
    below = ks[T <= acc_min]  # reached by every accumulator
    above = ks[T > acc_max]  # reached by none
    ks, T = ks[inside], T[inside]
    if ks.size == 0:  # the same value for every accumulator: M = 0
        return 0, int(below.max() if below.size else lo) << S  # a multiple of any grain up to 2^S
    # slope interval: for k < j, (T_j - T_i - 1) / (j - i) < alpha < (T_j - T_i + 1) / (j - i), alpha = 2^S / M
    i, j = np.triu_indices(ks.size, 1)
    dk, dT = (ks[j] - ks[i]).astype(np.float64), (T[j] - T[i]).astype(np.float64)
    a_lo = max(np.max((dT - 1) / dk, initial=0.0), 0.0)
    a_hi = np.min((dT + 1) / dk, initial=np.inf)
    if not a_lo < a_hi:
        return None
    nominal = 2.0 ** S * float(m)
    m_lo = int(np.floor(2.0 ** S / a_hi)) + 1 if np.isfinite(a_hi) else 1
    m_hi = int(np.ceil(2.0 ** S / a_lo)) - 1 if a_lo > 0 else 2 ** 31 - 1
    m_lo, m_hi = max(m_lo, 1), min(m_hi, 2 ** 31 - 1)
    candidates = sorted({min(max(int(round(nominal)), m_lo), m_hi)} |
                        set(np.linspace(m_lo, m_hi, 33).astype(np.int64).tolist()), key=lambda c: abs(c - nominal))
    k2 = ks << S
    for M in candidates:
        if not m_lo <= M <= m_hi:
            continue
        # every threshold: T_k - 1 < (k 2^S - B) / M <= T_k
        b_min = int(np.max(k2 - M * T))
        b_max = int(np.min(k2 - M * (T - 1))) - 1
        if below.size:  # g(acc_min) >= max(below)
            b_min = max(b_min, (int(below.max()) << S) - M * acc_min)
        if above.size:  # g(acc_max) < min(above)
            b_max = min(b_max, (int(above.min()) << S) - M * acc_max - 1)
        b = -(-b_min // grain) * grain
        if b <= b_max and _exact(M, b, S, ks, T, below, above, acc_min, acc_max):
            return M, b
    return None


def _exact(M, B, S, ks, T, below, above, acc_min, acc_max) -> bool:
    """The integer formula's thresholds, in exact integer arithmetic, are the float ones."""
    if not (np.all((T * M + B) >> S >= ks) and np.all(((T - 1) * M + B) >> S < ks)):
        return False
    if below.size and (acc_min * M + B) >> S < int(below.max()):
        return False
    if above.size and (acc_max * M + B) >> S >= int(above.min()):
        return False
    return True


def layer(scales, lo: int, hi: int, zp: int, acc_min, acc_max, offset=None):
    """The integer requantization of a layer: a dict with per output channel M and Bh (zero point
    included; both int32), the layer's L and R (immediates of the instructions) and whether each channel
    has an exact integer form (else M = Bh = 0), such that
        clamp(((acc * 2^L * M + Bh * 2^32) >> 32) >> R) == clamp(rint(float32(acc + offset) * m) + zp);
    or None when it cannot be set up. acc_min, acc_max: per channel, the accumulators it can reach;
    offset: per channel, what the accumulator leaves out and Bh takes in (a bias; None: 0).
    (A shift per channel, loaded at run time, found more channels a form but cost more than it saved.)"""
    scales = np.asarray(scales, F32).reshape(-1)
    acc_min, acc_max = np.asarray(acc_min, np.int64), np.asarray(acc_max, np.int64)
    offset = np.zeros_like(acc_min) if offset is None else np.broadcast_to(np.asarray(offset, np.int64), acc_min.shape)
    # a channel whose every reachable accumulator gives one value gets M = 0 and does not bound L (its
    # acc * 2^L may wrap: the generated C shifts it as unsigned); the others' acc * 2^L stays an int32
    ends = np.clip(np.stack([float_requant(acc_min + offset, scales), float_requant(acc_max + offset, scales)]) + zp,
                   lo, hi)
    varying = ends[0] != ends[1]
    reach = int(max(np.max(np.abs(acc_min[varying]), initial=1), np.max(np.abs(acc_max[varying]), initial=1)))
    L = max(0, 30 - reach.bit_length())
    S = max(int(np.floor(np.log2(2.0 ** HEADROOM / float(np.max(scales))))), 32 - L)
    R = S - 32 + L
    if float(np.max(scales)) * 2.0 ** S >= 2.0 ** 31 or R > 31:
        return None
    grain = 1 << (32 - L)  # B = Bh * 2^32 / 2^L
    Ms, Bs, exact = [], [], []
    for c, m in enumerate(scales):
        r = channel(float(m), lo - zp, hi - zp, int(acc_min[c]), int(acc_max[c]), S, grain, int(offset[c]))
        bh = (r[1] // grain + (zp << R)) if r else 0
        ok = r is not None and -2 ** 31 <= bh < 2 ** 31
        exact.append(ok)
        Ms.append(r[0] if ok else 0)
        Bs.append(bh if ok else 0)
    return dict(mult=np.array(Ms, np.int32), add=np.array(Bs, np.int32), L=L, R=R, exact=np.array(exact))
