"""Reviewer skill: confusion matrices, accuracy with an interval, a bias-corrected quality.

Confusion *counts* are additive — counts from new answers add to stored ones — so a
service keeps counts per reviewer and updates them as answers arrive, from gold items
(hard truth) or from consensus (posteriors, soft truth).

The quality score (Ipeirotis, Provost & Wang 2010) asks how much a reviewer's answer,
once corrected for their known biases, narrows down the truth. An answer ``l`` turns the
prior into the soft label ``s_t ∝ prior[t] * confusion[t, l]``, whose expected 0/1 cost
is ``1 - sum_t s_t**2``; ``quality = 1 - E[cost] / cost(prior)``: 1 for a reviewer
whose answers reveal the truth, 0 for one whose answers say nothing — such as a spammer
who always answers the majority class, however high their raw accuracy. A reviewer who
systematically swaps two classes is informative (their answers can be corrected), so
judge pausing on accuracy and quality together.

>>> import numpy as np
>>> counts = np.array([[[60.0, 0.0], [40.0, 0.0]],     # always answers class 0
...                    [[40.0, 20.0], [10.0, 30.0]]])  # honest, 70% right
>>> s = reviewer_skills(counts)
>>> s.accuracy.round(2).tolist(), s.quality.round(2).tolist()
([0.6, 0.7], [0.0, 0.16])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import norm

from loopwise.consensus.answers import FloatArray, IntLike, as_answers, as_float_matrix
from loopwise.consensus.dawid_skene import expected_counts


def confusion_counts(
    items: IntLike,
    reviewers: IntLike,
    labels: IntLike,
    truth: npt.ArrayLike,
    *,
    n_reviewers: int | None = None,
    n_classes: int | None = None,
) -> FloatArray:
    """``(n_reviewers, k, k)`` counts ``[r, t, l]``: answers ``l`` of reviewer ``r`` on
    items whose truth is ``t``.

    ``truth`` is ``(n_items,)`` known labels (``-1`` = unknown, e.g. not a gold item) or
    ``(n_items, k)`` posteriors (e.g. :attr:`Aggregation.posteriors`), counted softly.

    >>> confusion_counts([0, 1, 1], [0, 0, 1], [1, 1, 0], [1, -1])[0].tolist()
    [[0.0, 0.0], [0.0, 1.0]]
    """
    t = np.asarray(truth)
    k = n_classes
    if t.ndim == 2:
        k = t.shape[1] if k is None else k
    elif t.ndim == 1 and t.size and k is None:
        k = int(max(t.max(), np.asarray(labels, dtype=np.int64).max(initial=0))) + 1
    a = as_answers(
        items, reviewers, labels, n_items=t.shape[0], n_reviewers=n_reviewers, n_classes=k
    )
    if t.ndim == 2:
        post = as_float_matrix("truth", t, (a.n_items, a.n_classes))
    elif t.ndim == 1:
        known = t >= 0
        if (t[known] >= a.n_classes).any():
            raise ValueError(f"truth labels must be < n_classes={a.n_classes} (or -1)")
        post = np.zeros((a.n_items, a.n_classes))
        post[np.flatnonzero(known), t[known].astype(np.int64)] = 1.0
    else:
        raise ValueError(f"truth must be (n_items,) labels or (n_items, k), got {t.shape}")
    return expected_counts(a, post)


def quality_score(confusion: npt.ArrayLike, prior: npt.ArrayLike) -> FloatArray:
    """Bias-corrected quality ``(n_reviewers,)`` from confusion probabilities
    ``(n_reviewers, k, k)`` and the class prior ``(k,)`` (see the module docstring).

    >>> quality_score(np.array([np.eye(3), np.full((3, 3), 1 / 3)]), np.full(3, 1 / 3))
    array([1., 0.])
    """
    conf = np.asarray(confusion, dtype=np.float64)
    p = np.asarray(prior, dtype=np.float64)
    joint = p[None, :, None] * conf  # [r, t, l] = P(truth t, answer l)
    p_answer = joint.sum(axis=1)  # [r, l]
    sq = np.divide(
        (joint**2).sum(axis=1), p_answer, out=np.zeros_like(p_answer), where=p_answer > 0
    )
    cost = 1.0 - sq.sum(axis=1)
    cost_prior = 1.0 - float((p**2).sum())
    if cost_prior <= 0:
        return np.full(conf.shape[0], np.nan)
    return np.asarray(1.0 - cost / cost_prior)


@dataclass(frozen=True, eq=False)
class ReviewerSkills:
    """Per reviewer ``(n_reviewers,)``: ``n`` answers with known truth (fractional for
    soft truth), ``accuracy`` with its Wilson interval ``[low, high]`` at ``level``,
    ``quality`` (bias-corrected, see the module docstring); ``confusion``
    ``(n_reviewers, k, k)`` smoothed row-normalised matrices. Undefined figures
    (``n == 0``) are ``nan``."""

    n: FloatArray
    accuracy: FloatArray
    low: FloatArray
    high: FloatArray
    quality: FloatArray
    confusion: FloatArray
    level: float


def wilson_interval(
    correct: FloatArray, n: FloatArray, level: float = 0.95
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Vectorised Wilson score interval: estimate, low, high (``nan`` where ``n == 0``).

    >>> [round(float(x[0]), 4) for x in wilson_interval(np.array([0.0]), np.array([10.0]))]
    [0.0, 0.0, 0.2775]
    """
    z = float(norm.ppf(0.5 + level / 2))
    ok = n > 0
    safe = np.where(ok, n, 1.0)
    p = correct / safe
    denom = 1 + z * z / safe
    centre = (p + z * z / (2 * safe)) / denom
    half = z * np.sqrt(np.maximum(p * (1 - p), 0.0) / safe + z * z / (4 * safe * safe)) / denom
    nan = np.full(n.shape, math.nan)
    return (
        np.where(ok, p, nan),
        np.where(ok, np.maximum(0.0, centre - half), nan),
        np.where(ok, np.minimum(1.0, centre + half), nan),
    )


def reviewer_skills(
    counts: npt.ArrayLike,
    *,
    prior: npt.ArrayLike | None = None,
    smoothing: float = 1.0,
    level: float = 0.95,
) -> ReviewerSkills:
    """Skills from confusion counts ``(n_reviewers, k, k)``.

    ``prior`` defaults to the truth's class shares in ``counts``; ``smoothing`` adds
    that many pseudo-answers per true class, spread evenly, before the confusion rows
    are normalised (a reviewer with few answers is not scored as certain).
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 3 or c.shape[1] != c.shape[2]:
        raise ValueError(f"counts must have shape (n_reviewers, k, k), got {c.shape}")
    if not np.isfinite(c).all() or (c < 0).any():
        raise ValueError("counts must be finite and >= 0")
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    k = c.shape[1]
    if prior is None:
        mass = c.sum(axis=(0, 2))
        p = mass / mass.sum() if mass.sum() > 0 else np.full(k, 1.0 / k)
    else:
        p = as_float_matrix("prior", prior, (k,))
    n = c.sum(axis=(1, 2))
    acc, low, high = wilson_interval(np.trace(c, axis1=1, axis2=2), n, level)
    rows = c + smoothing / k
    row_sums = rows.sum(axis=2, keepdims=True)
    conf = np.divide(rows, row_sums, out=np.full_like(rows, 1.0 / k), where=row_sums > 0)
    quality = np.where(n > 0, quality_score(conf, p), np.nan)
    return ReviewerSkills(n, acc, low, high, quality, conf, level)
