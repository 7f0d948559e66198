"""Oversight statistics (pure numpy / scipy): intervals, group metrics, drift.

* :mod:`~loopwise.oversight.intervals` — Wilson, Newcombe (difference), Katz (ratio).
* :mod:`~loopwise.oversight.groups` — :func:`group_metrics`: per-group rates of
  predictions, reviewers, decisions and routing, per attribute and intersection.
* :mod:`~loopwise.oversight.disparities` — differences and ratios between groups.
* :mod:`~loopwise.oversight.drift` — PSI, Jensen–Shannon, normalised Wasserstein, and a
  :class:`DriftMonitor` that decides on effect sizes.
"""

from loopwise.oversight.disparities import Comparison, Disparity
from loopwise.oversight.drift import (
    DriftMonitor,
    DriftReport,
    FeatureDrift,
    drift_report,
    feature_drift,
    jensen_shannon,
    psi,
    rate_drift,
    wasserstein,
)
from loopwise.oversight.groups import (
    UNKNOWN,
    Breakdown,
    GroupReport,
    GroupStats,
    group_metrics,
)
from loopwise.oversight.intervals import Interval, katz, newcombe, weighted_wilson, wilson

__all__ = [
    "UNKNOWN",
    "Breakdown",
    "Comparison",
    "Disparity",
    "DriftMonitor",
    "DriftReport",
    "FeatureDrift",
    "GroupReport",
    "GroupStats",
    "Interval",
    "drift_report",
    "feature_drift",
    "group_metrics",
    "jensen_shannon",
    "katz",
    "newcombe",
    "psi",
    "rate_drift",
    "wasserstein",
    "weighted_wilson",
    "wilson",
]
