"""Watching the promise: the error of automatic decisions, estimated from random audits.

Each automatic decision ``i`` of a window was audited independently with a known
probability ``pi_i`` (the gate's ``audit_rate`` at the time). From the audited ones:

* **Estimate** — Horvitz–Thompson ``sum(error_i / pi_i over audited) / n_auto``, exactly
  unbiased for the window's error rate whatever the ``pi_i`` (pending audits are left out
  of the estimate and counted by the interval, see below).
* **Exact interval** for the error rate ``R`` of automatic decisions (each wrong with
  probability ``R``, independently). An automatic decision is an *observed* error with
  probability ``pi_i * R``, so the observed error count is a sum of independent Bernoulli
  variables, stochastically between ``Binomial(n_auto, pi_min R)`` and
  ``Binomial(n_auto, pi_max R)``. The Clopper–Pearson bounds for ``pi R`` divided by
  ``pi_max`` (lower) and ``pi_min`` (upper) therefore cover ``R`` with probability at least
  ``level`` — exact when every ``pi_i`` is the same, conservative otherwise. Audits still
  without a label count as correct for the lower bound and as errors for the upper one,
  so pending work can only widen the interval.
* **The promise is broken** when the interval's lower end is above ``target_error``
  (:func:`promise_broken`); with ``level = 0.95`` a kept promise raises a false alarm on
  one window with probability ``<= 2.5 %`` (repeated looks add up: alarm rules should ask
  for a sustained breach or use a higher level).

>>> import numpy as np
>>> n = 10_000
>>> audited = np.zeros(n, dtype=bool); audited[:200] = True         # 2% audited
>>> errors = np.zeros(n, dtype=int); errors[:12] = 1                   # 12 wrong audits
>>> est = audit_error(errors, audited, np.full(n, 0.02))
>>> round(est.estimate, 3), round(est.low, 3), round(est.high, 3), est.n_audited
(0.06, 0.031, 0.105, 200)
>>> promise_broken(est, target_error=0.02), promise_broken(est, target_error=0.05)
(True, False)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import beta


@dataclass(frozen=True)
class AuditEstimate:
    """Error of automatic decisions, estimated from audits.

    Attributes
    ----------
    estimate : Horvitz–Thompson error rate (``nan`` when there is no automatic decision).
    low, high : exact (conservative) interval at ``level``; ``nan`` when undefined.
    n_auto : automatic decisions in the window.
    n_audited : of those, audited; ``n_labeled`` of them have a label, ``n_errors`` wrong.
    level : two-sided confidence level.
    """

    estimate: float
    low: float
    high: float
    n_auto: int
    n_audited: int
    n_labeled: int
    n_errors: int
    level: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``nan`` → ``None``)."""
        d = asdict(self)
        for key in ("estimate", "low", "high"):
            if math.isnan(d[key]):
                d[key] = None
        return d


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact two-sided binomial interval for ``k`` successes in ``n`` trials.

    >>> tuple(round(x, 4) for x in clopper_pearson(0, 230, 0.8))
    (0.0, 0.01)
    """
    if n <= 0:
        return math.nan, math.nan
    a = (1 - level) / 2
    low = 0.0 if k <= 0 else float(beta.ppf(a, k, n - k + 1))
    high = 1.0 if k >= n else float(beta.ppf(1 - a, k + 1, n - k))
    return low, high


def audit_error(
    errors: npt.ArrayLike,
    audited: npt.ArrayLike,
    inclusion_prob: npt.ArrayLike,
    *,
    level: float = 0.95,
) -> AuditEstimate:
    """Estimate the error of automatic decisions from the audited ones.

    Parameters
    ----------
    errors : (n,) int over *all* automatic decisions of the window: 1 wrong, 0 right,
        -1 no label yet; read only where ``audited``.
    audited : (n,) bool, sampled for review.
    inclusion_prob : (n,) float in (0, 1], each decision's audit probability.
    level : two-sided confidence level of the interval.

    Returns
    -------
    AuditEstimate
    """
    e = np.asarray(errors, dtype=np.float64).ravel()
    a = np.asarray(audited, dtype=bool).ravel()
    pi = np.asarray(inclusion_prob, dtype=np.float64).ravel()
    if not e.shape == a.shape == pi.shape:
        raise ValueError("errors, audited and inclusion_prob must have the same length")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    n = int(a.size)
    if n == 0:
        return AuditEstimate(math.nan, math.nan, math.nan, 0, 0, 0, 0, level)
    if np.any(~np.isfinite(pi)) or np.any(pi <= 0) or np.any(pi > 1):
        raise ValueError("inclusion probabilities must be in (0, 1]")
    labeled = a & (e >= 0)
    wrong = labeled & (e > 0.5)
    pending = a & ~labeled
    estimate = float(np.sum(1.0 / pi[wrong]) / n)
    k_low = int(wrong.sum())
    k_high = k_low + int(pending.sum())
    lo, _ = clopper_pearson(k_low, n, level)
    _, hi = clopper_pearson(k_high, n, level)
    pi_max, pi_min = float(pi.max()), float(pi.min())
    return AuditEstimate(
        estimate=estimate,
        low=min(1.0, lo / pi_max),
        high=min(1.0, hi / pi_min),
        n_auto=n,
        n_audited=int(a.sum()),
        n_labeled=int(labeled.sum()),
        n_errors=k_low,
        level=level,
    )


def promise_broken(estimate: AuditEstimate, target_error: float) -> bool:
    """True when the interval's lower end is above ``target_error`` (undefined → False)."""
    return bool(math.isfinite(estimate.low) and estimate.low > target_error)
