"""Agreement between raters, each figure with a bootstrap interval over items.

* :func:`percent_agreement` — the share of agreeing pairs of ratings within an item,
  averaged over items with two or more ratings (Fleiss' ``P-bar``; not corrected for
  chance, so it is 1 when everyone gives the same label).
* :func:`cohen_kappa` — two raters (Cohen 1960).
* :func:`fleiss_kappa` — many raters, any number per item (Fleiss 1971; with a varying
  number ``n_i`` of ratings, ``P_i = sum_c n_ic (n_ic - 1) / (n_i (n_i - 1))`` is averaged
  over items and chance agreement uses the pooled label shares; equal to Fleiss' formula
  when ``n_i`` is constant).
* :func:`krippendorff_alpha` — nominal, missing ratings allowed (Krippendorff 2011:
  coincidences of pairable values).

Multi-rater functions take answers in long form — ``items``, ``raters``, ``labels`` —
with one rating per (item, rater). Items with fewer than two ratings carry no information
on agreement and are left out; ``n`` in the result counts the items used.

A figure that the data cannot define is ``nan`` with a ``reason`` — no item with two
ratings, a single rater, a single category in use (chance agreement 1) — never a silent
0 or 1. The interval is the percentile bootstrap over items (``n_boot`` resamples of the
items used, with ``random_state``); resamples where the figure is undefined are dropped.

>>> r = fleiss_kappa([0, 0, 1, 1, 2, 2], [0, 1, 0, 1, 0, 1], [1, 1, 0, 0, 1, 0],
...                  random_state=0)
>>> round(r.value, 3), r.n, r.reason
(0.333, 3, '')
>>> r = fleiss_kappa([0, 0, 1, 1], [0, 1, 0, 1], [2, 2, 2, 2])
>>> r.value, r.reason
(nan, 'only one category was used, so agreement expected by chance is 1')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from loopwise.consensus.answers import FloatArray, IntLike, Seed, as_answers

NO_PAIRS = "no item has two or more ratings"
ONE_RATER = "only one rater"
ONE_CATEGORY = "only one category was used, so agreement expected by chance is 1"
NO_COMMON = "no item rated by both raters"

Statistic = Callable[[FloatArray], FloatArray]


@dataclass(frozen=True)
class Agreement:
    """An agreement figure: ``value`` with its bootstrap interval ``[low, high]`` at
    ``level``, the number ``n`` of items it rests on, and — when ``value`` is ``nan`` —
    the ``reason``."""

    value: float
    low: float
    high: float
    n: int
    reason: str = ""
    level: float = 0.95
    n_boot: int = 0

    def to_dict(self) -> dict[str, object]:
        def f(x: float) -> float | None:
            return None if math.isnan(x) else x

        return {
            "value": f(self.value),
            "ci": [f(self.low), f(self.high)],
            "n": self.n,
            "reason": self.reason or None,
            "level": self.level,
        }


def _resamples(n: int, n_boot: int, rng: np.random.Generator) -> Iterator[FloatArray]:
    """``(b, n)`` count matrices of bootstrap resamples, in blocks of bounded size."""
    block = max(1, min(n_boot, 2_000_000 // max(n, 1)))
    done = 0
    while done < n_boot:
        b = min(block, n_boot - done)
        picks = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        yield np.bincount(picks.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        done += b


def _with_interval(
    stat: Statistic, n: int, n_boot: int, level: float, random_state: Seed
) -> Agreement:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    value = float(stat(np.ones((1, n)))[0])
    if math.isnan(value) or n_boot == 0:
        return Agreement(value, math.nan, math.nan, n, level=level, n_boot=n_boot)
    rng = np.random.default_rng(random_state)
    reps = np.concatenate([stat(w) for w in _resamples(n, n_boot, rng)])
    reps = reps[~np.isnan(reps)]
    if reps.size == 0:
        return Agreement(value, math.nan, math.nan, n, level=level, n_boot=n_boot)
    low, high = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
    return Agreement(value, float(low), float(high), n, level=level, n_boot=n_boot)


def _nan(reason: str, n: int, level: float, n_boot: int) -> Agreement:
    return Agreement(math.nan, math.nan, math.nan, n, reason, level, n_boot)


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    out: FloatArray = np.divide(num, den, out=np.full(num.shape, np.nan), where=np.abs(den) > 1e-12)
    return out


def _table(
    items: IntLike, raters: IntLike, labels: IntLike, n_classes: int | None
) -> tuple[FloatArray, str]:
    """``(n_used, k)`` label counts of the items with two or more ratings, and a reason
    when there are none."""
    if np.asarray(labels).size == 0:
        return np.zeros((0, n_classes or 1)), NO_PAIRS
    a = as_answers(items, raters, labels, n_classes=n_classes)
    pair = a.items * max(a.n_reviewers, 1) + a.reviewers
    if np.unique(pair).size != pair.size:
        raise ValueError("a rater rated the same item more than once")
    counts = a.votes[a.n_answers >= 2]
    if counts.shape[0] == 0:
        return counts, ONE_RATER if np.unique(a.reviewers).size == 1 else NO_PAIRS
    return counts, ""


def percent_agreement(
    items: IntLike,
    raters: IntLike,
    labels: IntLike,
    *,
    n_classes: int | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    random_state: Seed = None,
) -> Agreement:
    """Mean share of agreeing rating pairs within items (items with >= 2 ratings)."""
    counts, reason = _table(items, raters, labels, n_classes)
    if reason:
        return _nan(reason, 0, level, n_boot)
    m = counts.sum(axis=1)
    p_item = (counts * (counts - 1)).sum(axis=1) / (m * (m - 1))

    def stat(w: FloatArray) -> FloatArray:
        return np.asarray(w @ p_item / w.sum(axis=1))

    return _with_interval(stat, counts.shape[0], n_boot, level, random_state)


def fleiss_kappa(
    items: IntLike,
    raters: IntLike,
    labels: IntLike,
    *,
    n_classes: int | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    random_state: Seed = None,
) -> Agreement:
    """Fleiss' kappa, any number of ratings per item."""
    counts, reason = _table(items, raters, labels, n_classes)
    if reason:
        return _nan(reason, 0, level, n_boot)
    m = counts.sum(axis=1)
    p_item = (counts * (counts - 1)).sum(axis=1) / (m * (m - 1))
    if (counts.sum(axis=0) > 0).sum() < 2:
        return _nan(ONE_CATEGORY, counts.shape[0], level, n_boot)

    def stat(w: FloatArray) -> FloatArray:
        observed = w @ p_item / w.sum(axis=1)
        shares = (w @ counts) / (w @ m)[:, None]
        chance = (shares**2).sum(axis=1)
        return _ratio(observed - chance, 1.0 - chance)

    return _with_interval(stat, counts.shape[0], n_boot, level, random_state)


def krippendorff_alpha(
    items: IntLike,
    raters: IntLike,
    labels: IntLike,
    *,
    n_classes: int | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    random_state: Seed = None,
) -> Agreement:
    """Krippendorff's alpha for nominal data; items with one rating are not pairable."""
    counts, reason = _table(items, raters, labels, n_classes)
    if reason:
        return _nan(reason, 0, level, n_boot)
    if (counts.sum(axis=0) > 0).sum() < 2:
        return _nan(ONE_CATEGORY, counts.shape[0], level, n_boot)
    m = counts.sum(axis=1)
    disagree = (m**2 - (counts**2).sum(axis=1)) / (m - 1)

    def stat(w: FloatArray) -> FloatArray:
        n_c = w @ counts
        n = n_c.sum(axis=1)
        expected = n**2 - (n_c**2).sum(axis=1)
        return 1.0 - _ratio((n - 1) * (w @ disagree), expected)

    return _with_interval(stat, counts.shape[0], n_boot, level, random_state)


def cohen_kappa(
    labels_a: IntLike,
    labels_b: IntLike,
    *,
    n_classes: int | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    random_state: Seed = None,
) -> Agreement:
    """Cohen's kappa of two raters; ``labels_a[i]`` and ``labels_b[i]`` rate item ``i``,
    ``-1`` where that rater did not."""
    a = np.asarray(labels_a)
    b = np.asarray(labels_b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"labels_a {a.shape} and labels_b {b.shape} must be equal 1-d shapes")
    both = (a >= 0) & (b >= 0)
    x, y = a[both].astype(np.int64), b[both].astype(np.int64)
    n = int(both.sum())
    if n == 0:
        return _nan(NO_COMMON, 0, level, n_boot)
    k = int(max(x.max(), y.max())) + 1 if n_classes is None else n_classes
    if max(x.max(), y.max()) >= k:
        raise ValueError(f"labels must be < n_classes={k}")
    if np.unique(np.r_[x, y]).size < 2:
        return _nan(ONE_CATEGORY, n, level, n_boot)
    onehot = np.zeros((n, k * k))
    onehot[np.arange(n), x * k + y] = 1.0

    def stat(w: FloatArray) -> FloatArray:
        joint = (w @ onehot).reshape(-1, k, k)
        total = joint.sum(axis=(1, 2))
        observed = np.trace(joint, axis1=1, axis2=2) / total
        chance = (joint.sum(axis=2) * joint.sum(axis=1)).sum(axis=1) / total**2
        return _ratio(observed - chance, 1.0 - chance)

    return _with_interval(stat, n, n_boot, level, random_state)
