"""Confidence intervals for rates. A rate over nothing is undefined (``nan``), never 0.

>>> wilson(0, 0).estimate
nan
>>> r = wilson(2, 100)
>>> round(r.estimate, 3), round(r.low, 4), round(r.high, 4)
(0.02, 0.0055, 0.07)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import norm


@dataclass(frozen=True)
class Interval:
    """A rate with its two-sided interval and the n behind it."""

    estimate: float
    low: float
    high: float
    n: float
    level: float = 0.95

    def to_dict(self) -> dict[str, float | list[float] | None]:
        def f(x: float) -> float | None:
            return None if math.isnan(x) else x

        return {
            "estimate": f(self.estimate),
            "ci": [f(self.low), f(self.high)],  # type: ignore[list-item]
            "n": self.n,
            "level": self.level,
        }


def wilson(k: float, n: float, level: float = 0.95) -> Interval:
    """Wilson score interval for ``k`` successes in ``n`` trials (``n`` may be fractional)."""
    if n <= 0:
        return Interval(math.nan, math.nan, math.nan, n, level)
    z = float(norm.ppf(0.5 + level / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), n, level)


def weighted_rate(
    hits: npt.ArrayLike, inclusion_prob: npt.ArrayLike, level: float = 0.95
) -> Interval:
    """Rate of ``hits`` in a population sampled with known inclusion probabilities.

    Hájek (inverse-probability weighted) estimate; the Wilson interval uses Kish's
    effective sample size. With equal probabilities it is the plain Wilson interval.

    >>> weighted_rate([1, 0, 0, 0], [0.5, 0.5, 0.5, 0.5]).estimate
    0.25
    """
    h = np.asarray(hits, dtype=np.float64)
    pi = np.asarray(inclusion_prob, dtype=np.float64)
    if h.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0, level)
    if (pi <= 0).any() or (pi > 1).any():
        raise ValueError("inclusion probabilities must be in (0, 1]")
    w = 1.0 / pi
    p = float((w * h).sum() / w.sum())
    n_eff = float(w.sum() ** 2 / (w * w).sum())
    r = wilson(p * n_eff, n_eff, level)
    return Interval(p, r.low, r.high, float(h.size), level)
