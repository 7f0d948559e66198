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

