"""Range estimators: from the values a tensor took on the calibration samples to the real interval
[lo, hi] its int8 codes will cover.

  minmax      the smallest and largest value seen: nothing saturates, but one outlier stretches
              the step for all the other values;
  percentile  the interval holding all but (100 - p) % of the values (p = 99.99 by default), split
              between the two tails of a signed tensor; one-sided for a tensor that never goes
              below zero (after a relu): its lower end stays at the minimum;
  entropy     TensorRT's calibration: the clipping threshold t whose int8 histogram loses the least
              information, measured as the KL divergence between the histogram of |x| clipped at t
              (outliers piled into the last bin) and the same histogram squeezed into the number of
              int8 steps that will cover [0, t] (255 for a tensor >= 0, 128 per side for a signed one).

Both histogram methods need the full range first, so they take two passes over the samples: one
for min/max (MinMax), one to fill a Histogram of fixed bins.
"""
from __future__ import annotations

import numpy as np

BINS = 2048
ENTROPY_STRIDE = 2  # candidate thresholds every 2 bins: 1/1024 of the range, plenty for 8 bits
SMOOTH = 1e-4  # probability given to empty bins of the squeezed histogram (KL must stay finite)


class MinMax:
    """Running minimum and maximum per tensor name."""

    def __init__(self):
        self.lo: dict = {}
        self.hi: dict = {}

    def add(self, name: str, x: np.ndarray) -> None:
        if x.size == 0:
            return
        lo, hi = float(np.min(x)), float(np.max(x))
        self.lo[name] = min(lo, self.lo.get(name, lo))
        self.hi[name] = max(hi, self.hi.get(name, hi))

    def range(self, name: str) -> tuple:
        return self.lo[name], self.hi[name]


class Histogram:
    """Counts of values in BINS equal bins over [lo, hi] (entropy: of |x| over [0, max |x|])."""

    def __init__(self, lo: float, hi: float, absolute: bool):
        self.absolute = absolute
        self.data_lo, self.data_hi = lo, hi
        if absolute:
            lo, hi = 0.0, max(abs(lo), abs(hi))
        self.lo, self.hi = lo, hi if hi > lo else lo + 1.0
        self.counts = np.zeros(BINS, np.int64)

    def add(self, x: np.ndarray) -> None:
        x = np.abs(x) if self.absolute else x
        self.counts += np.histogram(x, bins=BINS, range=(self.lo, self.hi))[0]

    @property
    def width(self) -> float:
        return (self.hi - self.lo) / BINS

    def percentile_range(self, p: float) -> tuple:
        """The interval leaving out (100 - p) % of the values: all of it above for a tensor that
        never goes negative, half below and half above for a signed one."""
        total = self.counts.sum()
        if total == 0:
            return self.data_lo, self.data_hi
        cum = np.cumsum(self.counts)
        tail = (100.0 - p) / 100.0 * total
        signed = self.data_lo < 0
        upper_tail = tail / 2 if signed else tail
        # the upper end: the right edge of the first bin by which all but upper_tail values are counted
        k = int(np.searchsorted(cum, total - upper_tail, side="left"))
        hi = min(self.data_hi, self.lo + (k + 1) * self.width)
        lo = self.data_lo
        if signed:
            j = int(np.searchsorted(cum, tail / 2, side="right"))
            lo = max(self.data_lo, self.lo + j * self.width)
        return lo, hi

    def entropy_range(self) -> tuple:
        """The KL-optimal clipping of |x| (see the module docstring), as an interval within the data's."""
        levels = 128 if self.data_lo < 0 else 255
        t = kl_threshold(self.counts, levels) * self.width
        return max(self.data_lo, -t), min(self.data_hi, t)


def kl_threshold(counts: np.ndarray, levels: int) -> float:
    """The number of bins (as a float, in bin widths) to keep so that squeezing them into `levels`
    steps changes the distribution least (KL divergence), TensorRT style."""
    counts = np.asarray(counts, np.float64)
    n = len(counts)
    if n <= levels or counts.sum() == 0:
        return float(n)
    best_i, best_kl = n, np.inf
    suffix = np.concatenate([np.cumsum(counts[::-1])[::-1], [0.0]])  # suffix[i] = sum(counts[i:])
    for i in list(range(levels, n, ENTROPY_STRIDE)) + [n]:
        kept = counts[:i]
        p = kept.copy()
        p[-1] += suffix[i]  # outliers are clipped into the last kept bin
        nonzero = kept > 0
        group = np.arange(i) * levels // i  # the int8 step each bin falls in
        total = np.bincount(group, weights=kept, minlength=levels)
        used = np.bincount(group, weights=nonzero, minlength=levels)
        q = np.where(nonzero, (total / np.maximum(used, 1))[group], 0.0)
        kl = _kl(p, q)
        if kl < best_kl:
            best_i, best_kl = i, kl
    return float(best_i)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    p = p / p.sum()
    qs = q.sum()
    if qs == 0:
        return np.inf
    q = q / qs
    empty = (q == 0) & (p > 0)
    if empty.any():  # smooth: the squeezed histogram lost a value the original has
        q = np.where(empty, SMOOTH, q * (1 - SMOOTH * empty.sum()))
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))
