"""Adaptive overlap: after each answer, is an item settled, does it need another
reviewer, or does it go to an expert?

Policy (``min_reviews``, ``max_reviews``, ``confidence``; defaults 1, 1, 0.95):

* fewer than ``min_reviews`` answers (or none) — ``"another"``;
* the top label's posterior >= ``confidence`` — ``"settled"``;
* otherwise, at ``max_reviews`` answers — ``"expert"`` (no consensus), except with
  ``max_reviews == 1`` (no overlap asked for), where the single answer stands
  (``"settled"``);
* otherwise — ``"another"``.

Posteriors come from the reviewers' confusion matrices (``skills[r, t, l]`` = P(answer
``l`` | truth ``t``), e.g. from :func:`~loopwise.consensus.aggregate` or gold items) and a
class prior, under Dawid–Skene's independence assumption.

>>> import numpy as np
>>> good = np.array([[0.9, 0.1], [0.1, 0.9]])
>>> skills = np.stack([good, good, np.full((2, 2), 0.5)])
>>> v = decide_item([1], [0], skills, max_reviews=3)
>>> v.status, v.label, round(v.confidence, 3)
('another', 1, 0.9)
>>> decide_item([1, 1], [0, 1], skills, max_reviews=3).status
'settled'
>>> decide_item([1, 0, 1], [0, 1, 2], skills, max_reviews=3).status
'expert'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from loopwise.consensus.answers import (
    FloatArray,
    IntArray,
    IntLike,
    Seed,
    argmax_random,
    as_answers,
    as_float_matrix,
)
from loopwise.consensus.dawid_skene import posteriors_given_skills

SETTLED, ANOTHER, EXPERT = "settled", "another", "expert"


@dataclass(frozen=True, eq=False)
class Verdicts:
    """Per item: ``status`` ("settled" | "another" | "expert"), the current ``label``
    (ties at random), its posterior ``confidence``, and ``n_answers``."""

    status: npt.NDArray[np.str_]
    label: IntArray
    confidence: FloatArray
    n_answers: IntArray


@dataclass(frozen=True, eq=False)
class Verdict:
    """One item's verdict, with its ``posterior`` ``(k,)``."""

    status: str
    label: int
    confidence: float
    posterior: FloatArray
    n_answers: int


def _check_skills(skills: npt.ArrayLike) -> FloatArray:
    s = np.asarray(skills, dtype=np.float64)
    if s.ndim != 3 or s.shape[1] != s.shape[2]:
        raise ValueError(f"skills must have shape (n_reviewers, k, k), got {s.shape}")
    if not np.isfinite(s).all() or (s < 0).any():
        raise ValueError("skills must be finite and >= 0")
    rows = s.sum(axis=2, keepdims=True)
    if (rows <= 0).any():
        raise ValueError("every row of skills needs a positive sum")
    return np.asarray(s / rows, dtype=np.float64)


def item_posteriors(
    items: IntLike,
    reviewers: IntLike,
    labels: IntLike,
    skills: npt.ArrayLike,
    *,
    prior: npt.ArrayLike | None = None,
    n_items: int | None = None,
) -> FloatArray:
    """``(n_items, k)`` posteriors from answers and known confusion matrices (one E-step).

    ``prior`` ``(k,)`` defaults to uniform; items without answers get the prior.
    """
    s = _check_skills(skills)
    k = s.shape[1]
    answers = as_answers(
        items, reviewers, labels, n_items=n_items, n_reviewers=s.shape[0], n_classes=k
    )
    p = np.full(k, 1.0 / k) if prior is None else as_float_matrix("prior", prior, (k,))
    if (p < 0).any() or not np.isclose(p.sum(), 1.0):
        raise ValueError("prior must be probabilities summing to 1")
    post, _ = posteriors_given_skills(answers, s, p)
    return np.ascontiguousarray(post)


def decide(
    posteriors: npt.ArrayLike,
    n_answers: IntLike,
    *,
    min_reviews: int = 1,
    max_reviews: int = 1,
    confidence: float = 0.95,
    random_state: Seed = None,
) -> Verdicts:
    """Apply the policy to many items at once: ``posteriors`` ``(n_items, k)``,
    ``n_answers`` ``(n_items,)``."""
    if not 1 <= min_reviews <= max_reviews:
        raise ValueError(f"need 1 <= min_reviews <= max_reviews, got {min_reviews}, {max_reviews}")
    if not 0.0 < confidence <= 1.0:
        raise ValueError(f"confidence must be in (0, 1], got {confidence}")
    post = np.asarray(posteriors, dtype=np.float64)
    n = np.asarray(n_answers, dtype=np.int64)
    if post.ndim != 2 or n.shape != (post.shape[0],):
        raise ValueError(f"posteriors {post.shape} and n_answers {n.shape} do not match")
    label = argmax_random(post, np.random.default_rng(random_state))
    conf = post[np.arange(post.shape[0]), label]
    status = np.full(post.shape[0], ANOTHER, dtype="<U7")
    done = (n >= min_reviews) & (conf >= confidence)
    out_of_reviews = ~done & (n >= max_reviews)
    status[done] = SETTLED
    status[out_of_reviews] = SETTLED if max_reviews == 1 else EXPERT
    return Verdicts(status, label, conf, n)


def decide_item(
    labels: IntLike,
    reviewers: IntLike,
    skills: npt.ArrayLike,
    *,
    prior: npt.ArrayLike | None = None,
    min_reviews: int = 1,
    max_reviews: int = 1,
    confidence: float = 0.95,
    random_state: Seed = None,
) -> Verdict:
    """The verdict for one item from its answers so far (``labels[j]`` by
    ``reviewers[j]``, an index into ``skills``)."""
    lb = np.asarray(labels)
    post = item_posteriors(
        np.zeros(lb.size, dtype=np.int64), reviewers, lb, skills, prior=prior, n_items=1
    )
    v = decide(
        post,
        [lb.size],
        min_reviews=min_reviews,
        max_reviews=max_reviews,
        confidence=confidence,
        random_state=random_state,
    )
    return Verdict(str(v.status[0]), int(v.label[0]), float(v.confidence[0]), post[0], lb.size)
