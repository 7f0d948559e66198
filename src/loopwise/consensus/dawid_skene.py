"""Dawid–Skene and one-coin Dawid–Skene, by vectorised EM (Dawid & Skene 1979).

The model: item ``i`` has a hidden true class ``t_i ~ prior``; reviewer ``r`` answers ``l``
with probability ``skills[r, t_i, l]``, independently of the others. EM alternates

* **E-step** — ``log p(t | answers) = log prior[t] + sum over the item's answers of
  log skills[r, t, l]``: one sparse product ``A @ W`` where ``A`` is the
  ``(n_items, n_reviewers * k)`` one-hot answer matrix and ``W`` the stacked log skills;
* **M-step** — expected confusion counts ``A.T @ posteriors`` (one sparse product), plus
  Dirichlet pseudo-counts, normalised per row.

Both steps cost ``O(n_answers * k)``; there is no Python loop over items or reviewers.

Additions to the textbook algorithm:

* ``smoothing`` — each reviewer gets ``smoothing`` pseudo-answers per true class, spread
  like the pooled confusion of the whole crowd: a reviewer with few answers is pulled
  towards the crowd, one with many is judged on their own answers (0 gives plain maximum
  likelihood, as crowd-kit);
* ``gold`` — items with known labels keep a one-hot posterior throughout, so they anchor
  the confusion estimates;
* ``init_skills`` — a warm start from stored confusion matrices (``nan`` for reviewers
  without one); ``prior_counts`` — stored confusion *counts* added in every M-step, so a
  reviewer's history stays in the estimate instead of only seeding it.

The one-coin variant has one accuracy per reviewer; wrong answers are spread evenly over
the other classes.

>>> import numpy as np
>>> from loopwise.consensus.answers import as_answers
>>> a = as_answers([0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2], [1, 1, 0, 0, 0, 0])
>>> res = dawid_skene(a, random_state=0)
>>> res.labels.tolist(), res.posteriors.shape, res.skills.shape
([1, 0], (2, 2), (3, 2, 2))
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from loopwise.consensus.answers import (
    Answers,
    FloatArray,
    Gold,
    IntArray,
    Seed,
    as_float_matrix,
    gold_labels,
)
from loopwise.consensus.result import Aggregation, finish, pin_gold

_TINY = 1e-10
MStep = Callable[[FloatArray], tuple[FloatArray, FloatArray]]


def expected_counts(answers: Answers, posteriors: FloatArray) -> FloatArray:
    """``(n_reviewers, k, k)`` expected confusion counts: ``[r, t, l]`` is the posterior
    mass of true class ``t`` over the items where reviewer ``r`` answered ``l``."""
    k = answers.n_classes
    flat = np.asarray(posteriors.T @ answers.matrix)  # (k_true, n_reviewers * k_answered)
    return np.ascontiguousarray(flat.reshape(k, answers.n_reviewers, k).transpose(1, 0, 2))


def posteriors_given_skills(
    answers: Answers, skills: FloatArray, prior: FloatArray, gold: IntArray | None = None
) -> tuple[FloatArray, float]:
    """The E-step: ``(n_items, k)`` posteriors and the log-likelihood of the answers.

    Items without answers get ``prior``; gold items are pinned (their log-likelihood
    term is that of the known label). The softmax runs on the ``(k, n_items)``
    transpose, where reductions over classes are contiguous — for small ``k`` several
    times faster than row reductions, copies included.
    """
    k = answers.n_classes
    log_w = np.log(np.maximum(skills, _TINY)).transpose(0, 2, 1).reshape(-1, k)
    log_prior = np.log(np.maximum(prior, _TINY))
    scores = np.ascontiguousarray(np.asarray(answers.matrix @ log_w).T)  # (k, n_items)
    scores += log_prior[:, None]
    top = scores.max(axis=0)
    scores -= top
    np.exp(scores, out=scores)
    total = scores.sum(axis=0)
    scores /= total
    norm = top + np.log(total)
    post = np.ascontiguousarray(scores.T)
    if gold is None or not (gold >= 0).any():
        return post, float(norm.sum())
    known = np.flatnonzero(gold >= 0)
    known_ll = np.asarray(answers.matrix[known] @ log_w)[np.arange(known.size), gold[known]]
    ll = float(norm.sum() - norm[known].sum() + known_ll.sum() + log_prior[gold[known]].sum())
    pin_gold(post, gold)
    return post, ll


def _normalise_rows(counts: FloatArray) -> FloatArray:
    counts = counts + _TINY
    return np.asarray(counts / counts.sum(axis=-1, keepdims=True), dtype=np.float64)


def class_prior(answers: Answers, post: FloatArray, gold: IntArray, smoothing: float) -> FloatArray:
    """Mean posterior over items with answers or gold, plus ``smoothing`` per class."""
    seen = ((answers.n_answers > 0) | (gold >= 0)).astype(np.float64)
    # einsum's own loop: a BLAS product can stall on threads when the machine is busy
    mass = np.einsum("i,ij->j", seen, post) + smoothing
    return np.asarray(mass / mass.sum(), dtype=np.float64)


def _check_counts(name: str, values: npt.ArrayLike | None, answers: Answers) -> FloatArray | None:
    if values is None:
        return None
    k = answers.n_classes
    arr = as_float_matrix(name, values, (answers.n_reviewers, k, k))
    if name == "init_skills":
        known = ~np.isnan(arr).any(axis=(1, 2))
        if (arr[known] < 0).any() or not np.allclose(arr[known].sum(axis=2), 1.0, atol=1e-6):
            raise ValueError("init_skills rows must be probabilities summing to 1 (nan = unknown)")
    elif not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError(f"{name} must be finite and >= 0")
    return arr


def _skills_from_gold(answers: Answers, gold: IntArray, start: FloatArray) -> FloatArray:
    """Starting skills judged on gold answers, with ``start`` (from vote shares) counting
    as one pseudo-answer per row: a reviewer seen on gold items starts from what gold
    says about them, so EM cannot begin in a label-swapped mode the gold contradicts."""
    onehot = np.zeros((answers.n_items, answers.n_classes))
    pin_gold(onehot, gold)
    return _normalise_rows(expected_counts(answers, onehot) + start)


def run_em(
    answers: Answers,
    m_step: MStep,
    gold: IntArray,
    *,
    init_skills: FloatArray | None,
    max_iter: int,
    tol: float,
) -> tuple[FloatArray, FloatArray, FloatArray, int, bool, float]:
    """EM from majority-vote shares (skills judged on gold answers where there are any,
    or ``init_skills``) until the log-likelihood per answer changes by less than
    ``tol``. Returns posteriors, skills, prior, the number of iterations, whether it
    converged, and the final log-likelihood."""
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    if tol <= 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    votes = answers.votes
    totals = votes.sum(axis=1, keepdims=True)
    post = np.divide(
        votes, totals, out=np.full_like(votes, 1.0 / answers.n_classes), where=totals > 0
    )
    pin_gold(post, gold)
    skills, prior = m_step(post)
    if (gold >= 0).any():
        skills = _skills_from_gold(answers, gold, skills)
    if init_skills is not None:
        known = ~np.isnan(init_skills).any(axis=(1, 2))
        skills[known] = init_skills[known]
    n = max(answers.items.size, 1)
    last = -np.inf
    ll = -np.inf
    for it in range(1, max_iter + 1):
        post, ll = posteriors_given_skills(answers, skills, prior, gold)
        skills, prior = m_step(post)
        if abs(ll - last) < tol * n:
            return post, skills, prior, it, True, ll
        last = ll
    return post, skills, prior, max_iter, False, ll


def _pooled_rows(counts: FloatArray) -> FloatArray:
    return _normalise_rows(counts.sum(axis=0))


def dawid_skene(
    answers: Answers,
    *,
    gold: Gold = None,
    smoothing: float = 2.0,
    init_skills: npt.ArrayLike | None = None,
    prior_counts: npt.ArrayLike | None = None,
    max_iter: int = 100,
    tol: float = 1e-5,
    random_state: Seed = None,
) -> Aggregation:
    """Full-confusion Dawid–Skene (see the module docstring for the options)."""
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    g = gold_labels(gold, answers.n_items, answers.n_classes)
    history = _check_counts("prior_counts", prior_counts, answers)
    start = _check_counts("init_skills", init_skills, answers)

    def m_step(post: FloatArray) -> tuple[FloatArray, FloatArray]:
        counts = expected_counts(answers, post)
        if history is not None:
            counts += history
        if smoothing:
            counts += smoothing * _pooled_rows(counts)
        return _normalise_rows(counts), class_prior(answers, post, g, smoothing)

    post, skills, prior, it, ok, ll = run_em(
        answers, m_step, g, init_skills=start, max_iter=max_iter, tol=tol
    )
    return finish(
        answers,
        post,
        prior,
        skills,
        "dawid_skene",
        np.random.default_rng(random_state),
        g,
        n_iter=it,
        converged=ok,
        log_likelihood=ll,
    )


def one_coin_skills(accuracy: FloatArray, n_classes: int) -> FloatArray:
    """``(n_reviewers, k, k)`` confusion matrices with ``accuracy`` on the diagonal and
    the rest spread evenly.

    >>> one_coin_skills(np.array([0.7]), 3)[0].round(2).tolist()
    [[0.7, 0.15, 0.15], [0.15, 0.7, 0.15], [0.15, 0.15, 0.7]]
    """
    k = n_classes
    off = (1.0 - accuracy) / max(k - 1, 1)
    out = np.repeat(off[:, None, None], k, axis=1).repeat(k, axis=2)
    idx = np.arange(k)
    out[:, idx, idx] = accuracy[:, None]
    return out


def one_coin_dawid_skene(
    answers: Answers,
    *,
    gold: Gold = None,
    smoothing: float = 2.0,
    init_skills: npt.ArrayLike | None = None,
    prior_counts: npt.ArrayLike | None = None,
    max_iter: int = 100,
    tol: float = 1e-5,
    random_state: Seed = None,
) -> Aggregation:
    """One accuracy per reviewer; ``smoothing * k`` pseudo-answers at the crowd's pooled
    accuracy. ``init_skills`` / ``prior_counts`` contribute through their diagonals."""
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    k = answers.n_classes
    g = gold_labels(gold, answers.n_items, k)
    history = _check_counts("prior_counts", prior_counts, answers)
    start = _check_counts("init_skills", init_skills, answers)
    if start is not None:
        acc0 = np.trace(start, axis1=1, axis2=2) / k
        start = np.where(np.isnan(acc0)[:, None, None], np.nan, one_coin_skills(acc0, k))

    def m_step(post: FloatArray) -> tuple[FloatArray, FloatArray]:
        counts = expected_counts(answers, post)
        if history is not None:
            counts += history
        right = np.trace(counts, axis1=1, axis2=2)
        total = counts.sum(axis=(1, 2))
        pooled = right.sum() / max(total.sum(), _TINY)
        acc = (right + smoothing * k * pooled) / np.maximum(total + smoothing * k, _TINY)
        acc = np.where(total + smoothing * k > 0, acc, pooled)
        acc = np.clip(acc, _TINY, 1.0 - _TINY)
        return one_coin_skills(acc, k), class_prior(answers, post, g, smoothing)

    post, skills, prior, it, ok, ll = run_em(
        answers, m_step, g, init_skills=start, max_iter=max_iter, tol=tol
    )
    rng = np.random.default_rng(random_state)
    return finish(
        answers,
        post,
        prior,
        skills,
        "one_coin_dawid_skene",
        rng,
        g,
        n_iter=it,
        converged=ok,
        log_likelihood=ll,
    )
