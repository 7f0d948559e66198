"""One entry point for every aggregation method.

>>> import numpy as np
>>> items = [0, 0, 0, 1, 1, 1, 2, 2, 2]
>>> reviewers = [0, 1, 2, 0, 1, 2, 0, 1, 2]
>>> labels = [1, 1, 0, 0, 0, 1, 2, 2, 2]
>>> res = aggregate(items, reviewers, labels, method="dawid_skene", n_classes=3,
...                 n_items=4, random_state=0)
>>> res.labels[:3].tolist(), res.posteriors.shape, res.skills.shape, res.unanswered.tolist()
([1, 0, 2], (4, 3), (3, 3, 3), [False, False, False, True])
>>> aggregate(items, reviewers, labels, method="majority", max_iter=5)
Traceback (most recent call last):
...
ValueError: method 'majority' does not take max_iter (it takes gold)
"""

from __future__ import annotations

from typing import Any, Literal

import numpy.typing as npt

from loopwise.consensus.answers import Gold, IntLike, Seed, as_answers
from loopwise.consensus.dawid_skene import dawid_skene, one_coin_dawid_skene
from loopwise.consensus.mace import mace
from loopwise.consensus.result import Aggregation
from loopwise.consensus.voting import majority, weighted_majority

Method = Literal["majority", "weighted_majority", "dawid_skene", "one_coin_dawid_skene", "mace"]

_EM = ("gold", "smoothing", "init_skills", "prior_counts", "max_iter", "tol")
OPTIONS: dict[str, tuple[str, ...]] = {
    "majority": ("gold",),
    "weighted_majority": ("gold", "weights", "skills"),
    "dawid_skene": _EM,
    "one_coin_dawid_skene": _EM,
    "mace": ("gold", "smoothing", "max_iter", "tol"),
}
METHODS = tuple(OPTIONS)


def aggregate(
    items: IntLike,
    reviewers: IntLike,
    labels: IntLike,
    *,
    method: Method = "dawid_skene",
    n_classes: int | None = None,
    n_items: int | None = None,
    n_reviewers: int | None = None,
    gold: Gold = None,
    weights: npt.ArrayLike | None = None,
    skills: npt.ArrayLike | None = None,
    smoothing: float | None = None,
    init_skills: npt.ArrayLike | None = None,
    prior_counts: npt.ArrayLike | None = None,
    max_iter: int | None = None,
    tol: float | None = None,
    random_state: Seed = None,
) -> Aggregation:
    """Aggregate answers given one row per answer (ids from 0; see :mod:`.answers`).

    Methods and the options each takes:

    * ``"majority"`` — vote shares; ``gold``.
    * ``"weighted_majority"`` — ``weights`` ``(n_reviewers,)`` or ``skills``
      ``(n_reviewers, k, k)``, or neither (agreement with the majority); ``gold``.
    * ``"dawid_skene"``, ``"one_coin_dawid_skene"`` — EM; ``gold`` (mapping item -> label,
      or ``(n_items,)`` with -1 unknown), ``smoothing`` (pseudo-answers per true class,
      default 2), ``init_skills`` (warm start, ``nan`` = unknown reviewer),
      ``prior_counts`` (stored confusion counts), ``max_iter`` (100), ``tol`` (1e-5:
      stop when the log-likelihood per answer changes by less; crowd-kit's default).
    * ``"mace"`` — EM; ``gold``, ``smoothing``, ``max_iter``, ``tol``.

    ``random_state`` (int or Generator) breaks ties between equally likely labels.
    Passing an option the method does not use is an error, not silently ignored.
    """
    if method not in OPTIONS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    given: dict[str, Any] = {
        name: value
        for name, value in {
            "gold": gold,
            "weights": weights,
            "skills": skills,
            "smoothing": smoothing,
            "init_skills": init_skills,
            "prior_counts": prior_counts,
            "max_iter": max_iter,
            "tol": tol,
        }.items()
        if value is not None
    }
    extra = sorted(set(given) - set(OPTIONS[method]))
    if extra:
        raise ValueError(
            f"method {method!r} does not take {', '.join(extra)} "
            f"(it takes {', '.join(OPTIONS[method])})"
        )
    answers = as_answers(
        items, reviewers, labels, n_items=n_items, n_reviewers=n_reviewers, n_classes=n_classes
    )
    if method == "majority":
        return majority(answers, random_state=random_state, **given)
    if method == "weighted_majority":
        return weighted_majority(answers, random_state=random_state, **given)
    if method == "dawid_skene":
        return dawid_skene(answers, random_state=random_state, **given)
    if method == "one_coin_dawid_skene":
        return one_coin_dawid_skene(answers, random_state=random_state, **given)
    return mace(answers, random_state=random_state, **given)
