"""Simulated crowds for tests, benchmarks and demos: reviewers of known kinds answer items
of known truth.

Kinds of reviewer (``k`` classes; accuracies drawn per reviewer):

* ``reliable`` — right with probability U(0.8, 0.95), errors spread evenly;
* ``noisy`` — right with probability U(0.35, 0.55);
* ``confuser`` — reliable (U(0.8, 0.9)) except that two classes are mixed up 50/50;
* ``biased`` — answers one favourite class 60% of the time, else reliable;
* ``spammer`` — answers from one fixed distribution whatever the truth;
* ``adversarial`` — answers a fixed wrong class (a shift of the truth) 80% of the time.

:func:`adaptive_overlap` runs the overlap policy against such a crowd.

>>> crowd = simulate_crowd(100, {"reliable": 5, "spammer": 2}, n_classes=3, random_state=0)
>>> crowd.items.size, crowd.confusions.shape, sorted(set(crowd.kinds))
(300, (7, 3, 3), ['reliable', 'spammer'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from loopwise.consensus.answers import FloatArray, IntArray, Seed
from loopwise.consensus.overlap import ANOTHER, Verdicts, decide, item_posteriors

KINDS = ("reliable", "noisy", "confuser", "biased", "spammer", "adversarial")


def _even(acc: float, k: int) -> FloatArray:
    m = np.full((k, k), (1.0 - acc) / (k - 1))
    np.fill_diagonal(m, acc)
    return m


def reviewer_confusion(kind: str, n_classes: int, rng: np.random.Generator) -> FloatArray:
    """One ``(k, k)`` confusion matrix (rows: truth, columns: answer) of the given kind."""
    k = n_classes
    if k < 2:
        raise ValueError("a crowd needs at least 2 classes")
    if kind == "reliable":
        m = _even(rng.uniform(0.8, 0.95), k)
    elif kind == "noisy":
        m = _even(rng.uniform(0.35, 0.55), k)
    elif kind == "confuser":
        m = _even(rng.uniform(0.8, 0.9), k)
        a, b = rng.choice(k, 2, replace=False)
        rest = 0.1 / (k - 2) if k > 2 else 0.0
        m[[a, b]] = rest
        m[np.ix_([a, b], [a, b])] = 0.45 if k > 2 else 0.5
    elif kind == "biased":
        m = 0.4 * _even(rng.uniform(0.75, 0.9), k)
        m[:, rng.integers(k)] += 0.6
    elif kind == "spammer":
        m = np.tile(rng.dirichlet(np.ones(k)), (k, 1))
    elif kind == "adversarial":
        shift = (np.arange(k) + 1 + rng.integers(k - 1)) % k
        m = np.full((k, k), 0.2 / (k - 1))
        m[np.arange(k), shift] += 0.8 - 0.2 / (k - 1)
    else:
        raise ValueError(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")
    return np.asarray(m / m.sum(axis=1, keepdims=True), dtype=np.float64)


def sample_labels(
    truth: IntArray, reviewers: IntArray, confusions: FloatArray, rng: np.random.Generator
) -> IntArray:
    """The answer of ``reviewers[j]`` on an item whose true class is ``truth[j]``."""
    cum = np.cumsum(confusions[reviewers, truth], axis=1)
    drawn = (rng.random(truth.size)[:, None] > cum).sum(axis=1)
    return np.asarray(np.minimum(drawn, confusions.shape[2] - 1), dtype=np.int64)


def distinct_reviewers(
    n_items: int, n_reviewers: int, per_item: int, rng: np.random.Generator
) -> IntArray:
    """``(n_items, per_item)`` reviewers drawn without replacement for each item."""
    if not 1 <= per_item <= n_reviewers:
        raise ValueError(f"per_item must be in [1, {n_reviewers}], got {per_item}")
    picks = np.empty((n_items, per_item), dtype=np.int64)
    for start in range(0, n_items, 50_000):  # bounded memory: argsort of a random block
        block = rng.random((min(50_000, n_items - start), n_reviewers))
        picks[start : start + block.shape[0]] = np.argpartition(block, per_item - 1, axis=1)[
            :, :per_item
        ]
    return picks


@dataclass(frozen=True, eq=False)
class Crowd:
    """Answers in long form with the truth and the reviewers' real confusion matrices."""

    items: IntArray
    reviewers: IntArray
    labels: IntArray
    truth: IntArray
    confusions: FloatArray
    kinds: tuple[str, ...]
    prior: FloatArray


def simulate_crowd(
    n_items: int,
    reviewers: Mapping[str, int] | Sequence[str],
    *,
    n_classes: int = 5,
    per_item: int = 3,
    prior: npt.ArrayLike | None = None,
    random_state: Seed = None,
) -> Crowd:
    """A crowd: ``reviewers`` maps kind -> count (or lists kinds); each item gets
    ``per_item`` distinct reviewers at random; truth drawn from ``prior`` (default: a
    skewed ``0.35, 0.25, ...`` for 5 classes, else uniform)."""
    rng = np.random.default_rng(random_state)
    kinds = (
        tuple(kind for kind, count in reviewers.items() for _ in range(count))
        if isinstance(reviewers, Mapping)
        else tuple(reviewers)
    )
    k = n_classes
    if prior is None:
        p = np.array([0.35, 0.25, 0.2, 0.12, 0.08]) if k == 5 else np.full(k, 1.0 / k)
    else:
        p = np.asarray(prior, dtype=np.float64)
    conf = np.stack([reviewer_confusion(kind, k, rng) for kind in kinds])
    truth = rng.choice(k, size=n_items, p=p).astype(np.int64)
    who = distinct_reviewers(n_items, len(kinds), per_item, rng).ravel()
    items = np.repeat(np.arange(n_items, dtype=np.int64), per_item)
    labels = sample_labels(truth[items], who, conf, rng)
    return Crowd(items, who, labels, truth, conf, kinds, p)


@dataclass(frozen=True, eq=False)
class OverlapRun:
    """An adaptive-overlap simulation: the answers asked for, the final verdicts, the
    truth."""

    items: IntArray
    reviewers: IntArray
    labels: IntArray
    truth: IntArray
    verdicts: Verdicts


def adaptive_overlap(
    truth: IntArray,
    confusions: FloatArray,
    skills: FloatArray,
    *,
    prior: npt.ArrayLike | None = None,
    min_reviews: int = 1,
    max_reviews: int = 5,
    confidence: float = 0.95,
    random_state: Seed = None,
) -> OverlapRun:
    """Ask random reviewers (never the same one twice on an item) one at a time until
    :func:`~loopwise.consensus.overlap.decide` settles each item or sends it to an expert.

    Reviewers answer from their real ``confusions``; verdicts use the estimated
    ``skills`` and ``prior`` (both ``(n_reviewers, k, k)`` / ``(k,)``).
    """
    rng = np.random.default_rng(random_state)
    n, n_r = truth.size, confusions.shape[0]
    queue = distinct_reviewers(n, n_r, min(max_reviews, n_r), rng)
    asked = np.zeros(n, dtype=np.int64)
    items: list[IntArray] = []
    reviewers: list[IntArray] = []
    labels: list[IntArray] = []
    open_ = np.arange(n)
    while True:
        who = queue[open_, asked[open_]]
        items.append(open_)
        reviewers.append(who)
        labels.append(sample_labels(truth[open_], who, confusions, rng))
        asked[open_] += 1
        it, rv, lb = np.concatenate(items), np.concatenate(reviewers), np.concatenate(labels)
        post = item_posteriors(it, rv, lb, skills, prior=prior, n_items=n)
        verdicts = decide(
            post,
            asked,
            min_reviews=min_reviews,
            max_reviews=min(max_reviews, n_r),
            confidence=confidence,
            random_state=rng,
        )
        open_ = np.flatnonzero(verdicts.status == ANOTHER)
        if open_.size == 0:
            return OverlapRun(it, rv, lb, truth, verdicts)
