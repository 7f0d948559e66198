"""The result of an aggregation: labels, posteriors, reviewer confusion matrices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from loopwise.consensus.answers import Answers, BoolArray, FloatArray, IntArray, argmax_random


@dataclass(frozen=True, eq=False)
class Aggregation:
    """What :func:`~loopwise.consensus.aggregate` returns.

    * ``labels`` ``(n_items,)`` — the most probable label, ties broken at random.
    * ``posteriors`` ``(n_items, n_classes)`` — rows sum to 1; an item without answers
      gets ``prior`` (and ``unanswered`` is True for it); a gold item is one-hot on its
      known label.
    * ``skills`` ``(n_reviewers, n_classes, n_classes)`` — ``skills[r, t, l]`` is the
      estimated probability that reviewer ``r`` answers ``l`` when the truth is ``t`` (rows
      sum to 1); ``None`` for methods that estimate none (majority vote).
    * ``prior`` ``(n_classes,)`` — class frequencies the method used or estimated.
    * ``n_iter``, ``converged``, ``log_likelihood`` — for iterative methods (``0``,
      ``True`` and ``nan`` for votes).
    """

    labels: IntArray
    posteriors: FloatArray
    skills: FloatArray | None
    prior: FloatArray
    unanswered: BoolArray
    method: str
    n_iter: int = 0
    converged: bool = True
    log_likelihood: float = float("nan")


def finish(
    answers: Answers,
    posteriors: FloatArray,
    prior: FloatArray,
    skills: FloatArray | None,
    method: str,
    rng: np.random.Generator,
    gold: IntArray,
    *,
    n_iter: int = 0,
    converged: bool = True,
    log_likelihood: float = float("nan"),
) -> Aggregation:
    """Fill unanswered rows with the prior, pin gold items, pick labels (random tie-break)."""
    unanswered = answers.n_answers == 0
    posteriors[unanswered] = prior
    pin_gold(posteriors, gold)
    return Aggregation(
        labels=argmax_random(posteriors, rng),
        posteriors=posteriors,
        skills=skills,
        prior=prior,
        unanswered=unanswered,
        method=method,
        n_iter=n_iter,
        converged=converged,
        log_likelihood=log_likelihood,
    )


def pin_gold(posteriors: FloatArray, gold: IntArray) -> None:
    """Set the rows of gold items (``gold != -1``) to one-hot on their label, in place."""
    known = np.flatnonzero(gold >= 0)
    if known.size:
        posteriors[known] = 0.0
        posteriors[known, gold[known]] = 1.0
