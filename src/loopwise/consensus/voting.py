"""Majority and weighted-majority vote.

Posteriors are vote shares; the label is the most voted, ties broken uniformly at random
through ``random_state`` (never by the order answers arrived).

Weighted majority weighs reviewer ``r`` by the log-odds of their accuracy,
``w = max(0, log((k - 1) acc / (1 - acc)))`` — the optimal weight when wrong answers are
spread evenly (Nitzan & Paroush 1982), zero for a reviewer at or below chance. The
accuracy is the mean diagonal of ``skills`` when given, else each reviewer's agreement
with the plain majority (as Wawa does). ``weights`` may also be given directly. An item
whose reviewers all weigh zero falls back to its plain vote shares.

>>> import numpy as np
>>> from loopwise.consensus.answers import as_answers
>>> a = as_answers([0, 0, 1, 1], [0, 1, 0, 1], [0, 1, 1, 1])
>>> majority(a, random_state=0).posteriors.tolist()
[[0.5, 0.5], [0.0, 1.0]]
>>> weighted_majority(a, weights=[1.0, 3.0]).labels.tolist()
[1, 1]
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from loopwise.consensus.answers import Answers, FloatArray, Gold, Seed, gold_labels
from loopwise.consensus.result import Aggregation, finish


def _shares(answers: Answers, weights: FloatArray | None) -> FloatArray:
    k = answers.n_classes
    votes = answers.votes
    if weights is not None:
        flat = np.bincount(
            answers.items * k + answers.labels,
            weights=weights[answers.reviewers],
            minlength=answers.n_items * k,
        )
        weighted = flat.reshape(answers.n_items, k)
        has_weight = weighted.sum(axis=1) > 0
        votes = np.where(has_weight[:, None], weighted, votes)
    total = votes.sum(axis=1, keepdims=True)
    shares: FloatArray = np.divide(votes, total, out=np.full_like(votes, 1.0 / k), where=total > 0)
    return shares


def _prior(answers: Answers, post: FloatArray) -> FloatArray:
    answered = answers.n_answers > 0
    if not answered.any():
        return np.full(answers.n_classes, 1.0 / answers.n_classes)
    return np.asarray(post[answered].mean(axis=0), dtype=np.float64)


def majority(answers: Answers, *, gold: Gold = None, random_state: Seed = None) -> Aggregation:
    """Plain majority vote."""
    post = _shares(answers, None)
    g = gold_labels(gold, answers.n_items, answers.n_classes)
    rng = np.random.default_rng(random_state)
    return finish(answers, post, _prior(answers, post), None, "majority", rng, g)


def log_odds_weights(accuracy: FloatArray, n_classes: int) -> FloatArray:
    """``max(0, log((k - 1) acc / (1 - acc)))``, accuracy clipped to ``[1e-6, 1 - 1e-6]``.

    >>> log_odds_weights(np.array([0.5, 0.9, 0.1]), 2).round(3).tolist()
    [0.0, 2.197, 0.0]
    """
    acc = np.clip(accuracy, 1e-6, 1.0 - 1e-6)
    return np.asarray(np.maximum(0.0, np.log((n_classes - 1) * acc / (1.0 - acc))))


def weighted_majority(
    answers: Answers,
    *,
    weights: npt.ArrayLike | None = None,
    skills: npt.ArrayLike | None = None,
    gold: Gold = None,
    random_state: Seed = None,
) -> Aggregation:
    """Weighted vote: ``weights`` ``(n_reviewers,)`` >= 0, or ``skills``
    ``(n_reviewers, k, k)`` confusion matrices, or neither (agreement with the majority)."""
    k, n_r = answers.n_classes, answers.n_reviewers
    if weights is not None and skills is not None:
        raise ValueError("give weights or skills, not both")
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (n_r,) or not np.isfinite(w).all() or (w < 0).any():
            raise ValueError(f"weights must be {n_r} finite values >= 0, got shape {w.shape}")
    elif skills is not None:
        s = np.asarray(skills, dtype=np.float64)
        if s.shape != (n_r, k, k):
            raise ValueError(f"skills must have shape {(n_r, k, k)}, got {s.shape}")
        w = log_odds_weights(np.trace(s, axis1=1, axis2=2) / k, k)
    else:
        plain = _shares(answers, None)
        agree = np.bincount(
            answers.reviewers,
            weights=plain[answers.items, answers.labels],
            minlength=n_r,
        )
        count = np.bincount(answers.reviewers, minlength=n_r)
        acc = np.divide(agree, count, out=np.full(n_r, 1.0 / k), where=count > 0)
        w = log_odds_weights(acc, k)
    post = _shares(answers, w)
    g = gold_labels(gold, answers.n_items, k)
    rng = np.random.default_rng(random_state)
    return finish(answers, post, _prior(answers, post), None, "weighted_majority", rng, g)
