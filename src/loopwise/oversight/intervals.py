"""Confidence intervals for rates and for comparisons of two rates. A rate over nothing is
undefined (``nan``, with a reason), never 0.

* :func:`wilson` — one proportion (Wilson score interval).
* :func:`newcombe` — difference of two independent proportions (Newcombe's hybrid score
  interval, method 10 of Newcombe 1998: the two Wilson intervals combined by MOVER).
* :func:`katz` — ratio of two independent proportions (Katz log interval; when a count is
  0, the interval uses 0.5 added to each cell of the 2 x 2 table).
* :func:`mover_difference` — the difference of any two independent estimates from their
  own intervals (MOVER, Zou & Donner 2008); ``newcombe`` is its Wilson case.

Counts may be fractional (weighted counts at their effective sample size).

>>> wilson(0, 0).estimate
nan
>>> r = wilson(2, 100)
>>> round(r.estimate, 3), round(r.low, 4), round(r.high, 4)
(0.02, 0.0055, 0.07)
>>> d = newcombe(56, 70, 48, 80)                      # Newcombe (1998), example (a)
>>> round(d.estimate, 4), round(d.low, 4), round(d.high, 4)
(0.2, 0.0524, 0.3339)
>>> r = katz(20, 100, 10, 100)      # exp(log 2 ± 1.96 sqrt(1/20 - 1/100 + 1/10 - 1/100))
>>> round(r.estimate, 3), round(r.low, 3), round(r.high, 3)
(2.0, 0.987, 4.054)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy.stats import norm


@dataclass(frozen=True)
class Interval:
    """An estimate with its two-sided interval and the n behind it.

    ``reason`` says why the estimate is undefined (``nan``), or why the interval is
    approximate; ``None`` when there is nothing to say.
    """

    estimate: float
    low: float
    high: float
    n: float
    level: float = 0.95
    reason: str | None = None

    def to_dict(self) -> dict[str, float | list[float] | str | None]:
        """JSON-ready (``nan`` → ``None``); ``reason`` only when there is one."""

        def f(x: float) -> float | None:
            return None if math.isnan(x) else float(x)

        d: dict[str, float | list[float] | str | None] = {
            "estimate": f(self.estimate),
            "ci": [f(self.low), f(self.high)],  # type: ignore[list-item]
            "n": float(self.n),
            "level": self.level,
        }
        if self.reason is not None:
            d["reason"] = self.reason
        return d


def undefined(n: float, reason: str, level: float = 0.95) -> Interval:
    """An undefined estimate (``nan`` everywhere) with its reason."""
    return Interval(math.nan, math.nan, math.nan, n, level, reason)


@lru_cache(maxsize=32)
def z_value(level: float) -> float:
    """Two-sided standard normal quantile: ``z_value(0.95) ≈ 1.96``."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    return float(norm.ppf(0.5 + level / 2))


def wilson(k: float, n: float, level: float = 0.95) -> Interval:
    """Wilson score interval for ``k`` successes in ``n`` trials (``n`` may be fractional)."""
    if n <= 0:
        return undefined(n, "no observations (denominator 0)", level)
    z = z_value(level)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(0.0, p * (1 - p)) / n + z * z / (4 * n * n)) / denom
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), n, level)


def mover_difference(a: Interval, b: Interval) -> Interval:
    """Interval for ``a - b`` of two independent estimates from their own intervals (MOVER).

    ``n`` of the result is ``a.n + b.n``; undefined when either side is.
    """
    if math.isnan(a.estimate) or math.isnan(b.estimate):
        return undefined(a.n + b.n, a.reason or b.reason or "undefined rate", a.level)
    d = a.estimate - b.estimate
    low = d - math.hypot(a.estimate - a.low, b.high - b.estimate)
    high = d + math.hypot(a.high - a.estimate, b.estimate - b.low)
    return Interval(d, low, high, a.n + b.n, a.level)


def newcombe(k1: float, n1: float, k2: float, n2: float, level: float = 0.95) -> Interval:
    """Newcombe's hybrid score interval for ``k1/n1 - k2/n2`` (independent samples)."""
    return mover_difference(wilson(k1, n1, level), wilson(k2, n2, level))


def katz(k1: float, n1: float, k2: float, n2: float, level: float = 0.95) -> Interval:
    """Katz log interval for the ratio ``(k1/n1) / (k2/n2)`` of independent proportions.

    Undefined when either denominator is 0 or when ``k2 == 0`` (the ratio is infinite or
    0/0). When ``k1 == 0`` the estimate is 0, the lower end 0, and the upper end comes from
    the table with 0.5 added to each cell; the same correction is used when ``k1 == n1``
    or ``k2 == n2`` makes the log standard error degenerate.
    """
    if n1 <= 0 or n2 <= 0:
        return undefined(n1 + n2, "no observations (denominator 0)", level)
    if k2 <= 0:
        return undefined(n1 + n2, "reference rate is 0: the ratio is undefined", level)
    estimate = (k1 / n1) / (k2 / n2)
    a, m, b, r = k1, n1, k2, n2
    if k1 <= 0 or k1 >= n1 or k2 >= n2:
        a, m, b, r = k1 + 0.5, n1 + 1.0, k2 + 0.5, n2 + 1.0
    centre = math.log((a / m) / (b / r))
    se = math.sqrt(1 / a - 1 / m + 1 / b - 1 / r)
    z = z_value(level)
    low = 0.0 if k1 <= 0 else math.exp(centre - z * se)
    return Interval(estimate, low, math.exp(centre + z * se), n1 + n2, level)


def effective_n(k1: float, d1: float, k2: float, d2: float, rows: float) -> float:
    """Effective sample size of a weighted proportion ``p = k1 / d1``.

    ``k1, d1``: sums of weights over the numerator and denominator rows; ``k2, d2``: sums
    of squared weights. The linearised variance of the ratio estimator is
    ``Σ w² (x − p)² / (Σw)²``, and ``n_eff = p (1 − p) / variance`` (at most ``rows``); when
    ``p`` is 0 or 1 that is undefined and Kish's ``(Σw)² / Σw²`` is used.

    >>> effective_n(3, 10, 3, 10, 10)          # unit weights: the rows
    10.0
    >>> # weights 10 (x = 1), 10 and ten 1s (x = 0): Kish would say 900 / 210 = 4.29
    >>> round(effective_n(10, 30, 100, 210, 12), 2)
    3.53
    """
    p = k1 / d1
    resid = k2 * (1 - 2 * p) + p * p * d2  # Σ w² (x − p)² with x in {0, 1}
    if 0 < p < 1 and resid > 0:
        return float(min(p * (1 - p) * d1 * d1 / resid, rows))
    return float(min(d1 * d1 / d2, rows))


def weighted_wilson(hits: npt.ArrayLike, weights: npt.ArrayLike, level: float = 0.95) -> Interval:
    """A weighted proportion (Hájek: ``Σ w·hit / Σ w``) with the Wilson interval at its
    :func:`effective_n` — e.g. labels weighted by their inverse inclusion probability.

    >>> r = weighted_wilson([True, False, True], [10.0, 1.0, 1.0])
    >>> round(r.estimate, 3), r.n <= 3
    (0.917, True)
    >>> weighted_wilson([], []).reason
    'no rows'
    """
    x = np.asarray(hits, dtype=bool).ravel()
    w = np.asarray(weights, dtype=np.float64).ravel()
    if x.size == 0 or w.sum() <= 0:
        return undefined(0.0, "no rows", level)
    k1, d1 = float(w[x].sum()), float(w.sum())
    n_eff = effective_n(k1, d1, float((w[x] ** 2).sum()), float((w**2).sum()), float(x.size))
    return wilson(k1 / d1 * n_eff, n_eff, level)
