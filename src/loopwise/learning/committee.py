"""Query by committee: vote entropy over a bootstrap ensemble.

A committee of ``m`` models votes on each pool item (each member's most probable class);
the vote entropy ``-sum_c (v_c / m) log(v_c / m)`` is highest where the members disagree
most. Votes take few distinct values, so ties are broken by the margin uncertainty of the
committee's mean probabilities (its soft consensus).

The committee is either given as probabilities, ``committee_proba`` of shape (m, n, k), or
built here: :func:`bootstrap_committee` fits ``m`` clones of an estimator on stratified
bootstrap resamples of the labeled data (each class resampled within itself, so every
member sees every class).

>>> import numpy as np
>>> cp = np.array([[[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]],
...                [[0.8, 0.2], [0.3, 0.7], [0.1, 0.9]]])
>>> votes, consensus = committee_scores(cp)
>>> votes.round(3).tolist(), consensus.round(2).tolist()
([0.0, 0.693, 0.0], [0.3, 0.9, 0.3])
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import clone

from loopwise.errors import InvalidInput
from loopwise.learning.uncertainty import CHUNK_SIZE, check_proba

FloatArray = npt.NDArray[np.float64]
Seed = int | np.random.Generator | None


def _chunk_scores(cp: npt.NDArray[np.floating]) -> tuple[FloatArray, FloatArray]:
    """Vote entropy and consensus margin uncertainty of a (m, c, k) chunk."""
    m, c, k = cp.shape
    votes = cp.argmax(axis=2)  # (m, c)
    counts = np.zeros((c, k), dtype=np.float64)
    rows = np.arange(c)
    for member in votes:
        counts[rows, member] += 1.0
    share = counts / m
    entropy = 0.0 - (share * np.log(np.where(share > 0, share, 1.0))).sum(axis=1)
    mean = cp.mean(axis=0, dtype=np.float64)
    part = np.partition(mean, k - 2, axis=1)
    return entropy, 1.0 - (part[:, -1] - part[:, -2])


def _scores(chunks: Iterator[npt.NDArray[np.floating]], n: int) -> tuple[FloatArray, FloatArray]:
    votes = np.empty(n, dtype=np.float64)
    consensus = np.empty(n, dtype=np.float64)
    start = 0
    for cp in chunks:
        stop = start + cp.shape[1]
        votes[start:stop], consensus[start:stop] = _chunk_scores(cp)
        start = stop
    return votes, consensus


def committee_scores(
    committee_proba: npt.ArrayLike, *, chunk_size: int = CHUNK_SIZE
) -> tuple[FloatArray, FloatArray]:
    """Vote entropy and consensus margin uncertainty of a committee's probabilities.

    Parameters
    ----------
    committee_proba : (m, n, k) probabilities of m >= 2 members for n items.
    chunk_size : items scored at a time (the result does not depend on it).

    Returns
    -------
    (vote_entropy, consensus_uncertainty), each (n,) float64; higher = more informative.
    """
    cp = np.asarray(committee_proba)
    if cp.ndim != 3 or cp.shape[0] < 2:
        raise InvalidInput(
            f"committee_proba must have shape (m, n, k) with m >= 2 members, got {cp.shape}",
            errors=[{"loc": ["committee_proba"], "msg": "must have shape (m, n, k), m >= 2"}],
        )
    for member in cp:
        check_proba(member, chunk_size=chunk_size)
    n = cp.shape[1]
    return _scores((cp[:, s : s + chunk_size] for s in range(0, n, chunk_size)), n)


def _seed_params(estimator: Any, seed: int) -> dict[str, int]:
    """Every ``random_state`` parameter of ``estimator`` (nested ones too), set to ``seed``."""
    names = estimator.get_params(deep=True)
    return {p: seed for p in names if p == "random_state" or p.endswith("__random_state")}


def bootstrap_committee(
    estimator: Any,
    X_labeled: npt.ArrayLike,
    y_labeled: npt.ArrayLike,
    *,
    n_members: int = 5,
    random_state: Seed = None,
) -> list[Any]:
    """``n_members`` clones of ``estimator``, each fitted on a stratified bootstrap
    resample of the labeled data; each clone's ``random_state`` (if any) is drawn from
    ``random_state``.

    Parameters
    ----------
    estimator : an unfitted scikit-learn classifier (or pipeline) with ``predict_proba``.
    X_labeled : (L, d) features; y_labeled : (L,) labels with at least 2 classes.
    """
    y = np.asarray(y_labeled)
    X = np.asarray(X_labeled)
    classes = np.unique(y)
    if y.ndim != 1 or len(X) != len(y) or classes.size < 2:
        raise InvalidInput(
            "committee needs X_labeled and y_labeled of the same length with at least 2 "
            f"classes, got {len(X)} rows, {len(y)} labels, {classes.size} classes",
            errors=[{"loc": ["y_labeled"], "msg": "needs at least 2 classes"}],
        )
    rng = np.random.default_rng(random_state)
    by_class = [np.flatnonzero(y == c) for c in classes]
    members = []
    for _ in range(n_members):
        rows = np.concatenate([rng.choice(idx, size=idx.size, replace=True) for idx in by_class])
        member = clone(estimator)
        member.set_params(**_seed_params(member, int(rng.integers(2**31 - 1))))
        members.append(member.fit(X[rows], y[rows]))
    return members


def member_scores(
    members: list[Any],
    X_pool: npt.ArrayLike,
    classes: npt.ArrayLike,
    *,
    chunk_size: int = CHUNK_SIZE,
) -> tuple[FloatArray, FloatArray]:
    """:func:`committee_scores` of fitted ``members`` on ``X_pool``, predicted chunk by
    chunk; each member's columns are placed by its ``classes_`` among ``classes`` (k,)."""
    X = np.asarray(X_pool)
    labels = np.asarray(classes)
    cols = [np.searchsorted(labels, member.classes_) for member in members]

    def chunks() -> Iterator[npt.NDArray[np.floating]]:
        for start in range(0, len(X), chunk_size):
            part = X[start : start + chunk_size]
            cp = np.zeros((len(members), len(part), labels.size), dtype=np.float64)
            for j, member in enumerate(members):
                cp[j][:, cols[j]] = member.predict_proba(part)
            yield cp

    return _scores(chunks(), len(X))
