"""Disparities between groups: each group against a reference group, and max − min.

For a rate ``m`` (see :mod:`loopwise.oversight.groups`) and the groups of one attribute:

* **versus the reference** — for every group ``g``: ``m[g] - m[ref]`` with Newcombe's
  interval and ``m[g] / m[ref]`` with Katz's log interval (:mod:`.intervals`);
* **between groups** — ``<m>_difference`` = max − min over the groups where ``m`` is
  defined (fairlearn's ``between_groups``), with the Newcombe interval of the difference of
  the two extreme groups, and ``<m>_ratio`` = min / max with the Katz interval. These
  intervals are for the pair at the extremes *as if it had been chosen in advance*: they
  do not widen for the choice, so read them as a lower bound on the uncertainty;
* the named disparities of fairlearn: ``demographic_parity_*`` (selection rate),
  ``equal_opportunity_*`` (TPR), ``equalized_odds_*`` (the worse of TPR and FPR);
* the **four-fifths band**: a group's selection rate over the reference's, judged
  ``within`` when its whole interval lies in [0.8, 1.25], ``outside`` when it lies wholly
  outside, ``uncertain`` when it straddles an edge, ``undefined`` when there is no ratio.

Groups whose attribute is unknown are compared with the reference but left out of
max − min and of the choice of reference. A disparity involving an insufficient group is
marked ``insufficient``. Balanced accuracy is not a single proportion: its differences use
MOVER on its own interval; its ratios carry no interval (the reason says so).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loopwise.oversight.intervals import Interval, katz, mover_difference, undefined

FOUR_FIFTHS = (0.8, 1.25)
NOT_A_PROPORTION = frozenset({"balanced_accuracy"})


@dataclass(frozen=True)
class Disparity:
    """One disparity: ``value`` with its interval, between ``groups`` = (first, second)
    (difference = first − second, ratio = first / second); ``insufficient`` when either
    group is too small to say anything."""

    metric: str
    kind: str
    value: Interval
    groups: tuple[str, str] | None
    insufficient: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``nan`` → ``None``)."""
        return {
            "metric": self.metric,
            "kind": self.kind,
            **self.value.to_dict(),
            "groups": None if self.groups is None else list(self.groups),
            "insufficient": self.insufficient,
        }


@dataclass(frozen=True)
class Comparison:
    """A group against the reference group for one rate: difference and ratio."""

    difference: Interval
    ratio: Interval

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``nan`` → ``None``)."""
        return {"difference": self.difference.to_dict(), "ratio": self.ratio.to_dict()}


def ratio(metric: str, a: Interval, b: Interval) -> Interval:
    """``a / b`` with Katz's interval for proportions (counts ``estimate * n``)."""
    if math.isnan(a.estimate) or math.isnan(b.estimate):
        return undefined(a.n + b.n, a.reason or b.reason or "undefined rate", a.level)
    if metric in NOT_A_PROPORTION:
        if b.estimate == 0:
            return undefined(a.n + b.n, "reference rate is 0: the ratio is undefined", a.level)
        return Interval(
            a.estimate / b.estimate,
            math.nan,
            math.nan,
            a.n + b.n,
            a.level,
            f"no interval for a ratio of {metric} (not a single proportion)",
        )
    return katz(a.estimate * a.n, a.n, b.estimate * b.n, b.n, a.level)


def compare(metric: str, a: Interval, b: Interval) -> Comparison:
    """Group rate ``a`` against reference rate ``b``."""
    return Comparison(mover_difference(a, b), ratio(metric, a, b))


def four_fifths(c: Comparison) -> str:
    """``within`` / ``outside`` / ``uncertain`` / ``undefined`` for a selection-rate ratio."""
    r = c.ratio
    if math.isnan(r.estimate) or math.isnan(r.low):
        return "undefined"
    lo, hi = FOUR_FIFTHS
    if lo <= r.low and r.high <= hi:
        return "within"
    if r.high < lo or r.low > hi:
        return "outside"
    return "uncertain"


def between_groups(
    metric: str,
    rates: Mapping[str, Interval],
    insufficient: Mapping[str, bool],
    level: float,
) -> tuple[Disparity, Disparity]:
    """``<metric>_difference`` (max − min) and ``<metric>_ratio`` (min / max) over
    the groups of ``rates`` whose rate is defined."""
    defined = {g: r for g, r in rates.items() if not math.isnan(r.estimate)}
    if len(defined) < 2:
        why = f"{metric} is defined in fewer than two groups"
        none = undefined(float(sum(r.n for r in rates.values())), why, level)
        return (
            Disparity(metric, "difference", none, None, False),
            Disparity(metric, "ratio", none, None, False),
        )
    hi = max(defined, key=lambda g: defined[g].estimate)  # ties: the first group
    lo = min(defined, key=lambda g: defined[g].estimate)
    if lo == hi:  # every group has the same rate
        lo = next(g for g in defined if g != hi)
    small = insufficient[hi] or insufficient[lo]
    return (
        Disparity(
            metric, "difference", mover_difference(defined[hi], defined[lo]), (hi, lo), small
        ),
        Disparity(metric, "ratio", ratio(metric, defined[lo], defined[hi]), (lo, hi), small),
    )


def worst_case(options: Sequence[Disparity], kind: str) -> Disparity:
    """The worst of ``options`` (largest difference, smallest ratio); undefined ones are
    skipped."""
    defined = [d for d in options if not math.isnan(d.value.estimate)]
    if not defined:
        if len(options) == 1:
            return options[0]
        metric = " and ".join(d.metric for d in options)
        why = "; ".join(f"{d.metric}: {d.value.reason}" for d in options)
        first = options[0].value
        return Disparity(metric, kind, undefined(first.n, why, first.level), None, False)
    pick = max if kind == "difference" else min
    return pick(defined, key=lambda x: x.value.estimate)


def summarise(
    rates: Mapping[str, Mapping[str, Interval]],
    insufficient: Mapping[str, bool],
    level: float,
) -> dict[str, Disparity]:
    """Every ``<metric>_difference`` / ``<metric>_ratio`` and the named fairlearn ones.

    ``rates`` maps metric → group → rate, over the groups taking part (known groups).
    """
    out: dict[str, Disparity] = {}
    for metric, by_group in rates.items():
        diff, rat = between_groups(metric, by_group, insufficient, level)
        out[f"{metric}_difference"] = diff
        out[f"{metric}_ratio"] = rat
    named = {
        "demographic_parity": ("selection_rate",),
        "equal_opportunity": ("tpr",),
        "equalized_odds": ("tpr", "fpr"),
    }
    for name, metrics in named.items():
        if all(m in rates for m in metrics):
            for kind in ("difference", "ratio"):
                out[f"{name}_{kind}"] = worst_case([out[f"{m}_{kind}"] for m in metrics], kind)
    return out
