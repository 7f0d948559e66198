"""Active-learning queries: which pool items people should label next.

:func:`select` returns ``n`` distinct indices into the pool, best first, for one of the
:data:`STRATEGIES`:

=================== ==================================================================
``random``          uniform without replacement
``margin``          smallest gap between the two most probable classes (the default)
``least_confident`` smallest top probability
``entropy``         largest entropy of the class probabilities
``committee``       largest vote entropy of a bootstrap committee (ties: consensus margin)
``kcenter``         greedy k-center (core-set): farthest from the labeled and chosen items
``badge``           BADGE: k-means++ over gradient embeddings, for large diverse batches
=================== ==================================================================

Uncertainty scores are computed chunk by chunk and the best found with a partition, not
a sort. Ties are broken uniformly at random (never by position in the pool). With
``proba=None`` (no model yet), every strategy that needs a model's view gives the cold
start: k-means++ seeding over the standardised pool, spread across its mass and away
from any labeled items. ``epsilon`` mixes in random picks: each slot of the batch is,
with probability ``epsilon``, a uniform draw from the rest of the pool.

>>> import numpy as np
>>> proba = np.array([[0.9, 0.1], [0.55, 0.45], [0.7, 0.3], [0.5, 0.5]])
>>> select("margin", proba=proba, n=2, random_state=0).tolist()
[3, 1]
>>> X = np.array([[0.0], [0.1], [10.0], [10.1]])
>>> sorted(select("margin", proba=None, X_pool=X, n=2, random_state=0).tolist()) in (
...     [0, 2], [0, 3], [1, 2], [1, 3])
True
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from loopwise.errors import InvalidInput
from loopwise.learning.committee import bootstrap_committee, committee_scores, member_scores
from loopwise.learning.diversity import SAMPLE_SIZE, badge, kcenter_greedy, kmeans_pp, pool_space
from loopwise.learning.uncertainty import (
    CHUNK_SIZE,
    UNCERTAINTY_KINDS,
    check_proba,
    uncertainty,
)

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
Seed = int | np.random.Generator | None

STRATEGIES: tuple[str, ...] = (
    "random",
    "margin",
    "least_confident",
    "entropy",
    "committee",
    "kcenter",
    "badge",
)
"""The strategies :func:`select` knows."""

DEFAULT_STRATEGY = "margin"
"""The strategy of a policy that names none."""


def _invalid(field: str, msg: str) -> InvalidInput:
    return InvalidInput(f"{field}: {msg}", errors=[{"loc": [field], "msg": msg}])


def _count(value: Any, field: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise _invalid(field, f"must be an integer >= {low}, got {value!r}")
    return int(value)


def _choose(
    idx: IntArray, keys: Sequence[FloatArray], n: int, rng: np.random.Generator
) -> IntArray:
    """The ``n`` members of ``idx`` with the largest keys, compared lexicographically;
    items equal on every key are drawn uniformly at random."""
    if n >= len(idx):
        return idx
    if not keys:
        return rng.choice(idx, size=n, replace=False)
    score = keys[0][idx]
    kth = len(idx) - n
    cut = np.partition(score, kth)[kth]  # the n-th largest value
    above = idx[score > cut]
    ties = idx[score == cut]
    return np.concatenate([above, _choose(ties, keys[1:], n - len(above), rng)])


def best_first(keys: Sequence[npt.ArrayLike], n: int, *, random_state: Seed = None) -> IntArray:
    """Indices of the ``n`` largest items, best first.

    Parameters
    ----------
    keys : one or more (N,) score arrays; the first decides, the next ones break its ties,
        and items equal on every key are ordered uniformly at random.
    n : how many, 1 <= n <= N.

    >>> best_first([[0.1, 0.9, 0.5, 0.9], [0.0, 1.0, 0.0, 2.0]], 3).tolist()
    [3, 1, 2]
    """
    rng = np.random.default_rng(random_state)
    arrays = [np.asarray(k, dtype=np.float64) for k in keys]
    chosen = _choose(np.arange(len(arrays[0]), dtype=np.int64), arrays, n, rng)
    order = np.lexsort((rng.random(len(chosen)), *(-a[chosen] for a in reversed(arrays))))
    return chosen[order].astype(np.int64)


def _pool_size(
    proba: npt.NDArray[np.floating] | None,
    committee_proba: npt.ArrayLike | None,
    X_pool: npt.ArrayLike | None,
) -> int:
    sizes: dict[str, int] = {}
    if proba is not None:
        sizes["proba"] = proba.shape[0]
    if committee_proba is not None:
        cp = np.asarray(committee_proba)
        sizes["committee_proba"] = cp.shape[1] if cp.ndim == 3 else -1
    if X_pool is not None:
        sizes["X_pool"] = len(np.asarray(X_pool))
    if not sizes:
        raise _invalid("X_pool", "the pool is unknown: pass proba or X_pool")
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{k} {v}" for k, v in sizes.items())
        raise _invalid("X_pool", f"the pool's arrays disagree on its size: {shown} rows")
    return next(iter(sizes.values()))


def select(
    strategy: str = DEFAULT_STRATEGY,
    *,
    n: int,
    proba: npt.ArrayLike | None = None,
    X_pool: npt.ArrayLike | None = None,
    X_labeled: npt.ArrayLike | None = None,
    y_labeled: npt.ArrayLike | None = None,
    estimator: Any = None,
    committee_proba: npt.ArrayLike | None = None,
    n_committee: int = 5,
    epsilon: float = 0.0,
    standardize: bool = True,
    sample_size: int = SAMPLE_SIZE,
    chunk_size: int = CHUNK_SIZE,
    random_state: Seed = None,
) -> IntArray:
    """The ``n`` pool items whose labels should teach the model most, best first.

    Parameters
    ----------
    strategy : one of :data:`STRATEGIES`.
    n : batch size, 1 <= n <= pool size.
    proba : (N, k) the current model's class probabilities for the pool; ``None`` when
        there is no model yet (cold start, see the module's docstring).
    X_pool : (N, d) features or embeddings of the pool; needed by ``kcenter``, ``badge``,
        the cold start, and ``committee`` with an ``estimator``.
    X_labeled : (L, d) the labeled items in the same space: the centers ``kcenter`` and the
        cold start keep away from, and the committee's training data.
    y_labeled : (L,) their labels (``committee`` with an ``estimator``).
    estimator : unfitted scikit-learn classifier with ``predict_proba``: ``committee``
        fits ``n_committee`` clones on stratified bootstraps of the labeled data.
    committee_proba : (m, N, k) the probabilities of an existing committee instead
        (e.g. the trees of a random forest).
    epsilon : share of the batch, in expectation, drawn uniformly from the pool instead.
    standardize : measure ``kcenter``/``badge``/cold-start distances on features scaled to
        unit variance over the pool; ``False`` for embeddings.
    sample_size : ``kcenter``, ``badge`` and the cold start look at a uniform sample of at
        most this many pool items (all of them on a smaller pool).
    chunk_size : pool rows scored at a time; bounds memory, never changes the result.
    random_state : seed or ``numpy.random.Generator``; the same seed gives the same batch.

    Returns
    -------
    (n,) int64 distinct indices into the pool, the most informative first (for
    ``kcenter`` and ``badge``: in the order chosen).

    Raises
    ------
    InvalidInput (a ValueError) for an unknown strategy (the message lists the known
    ones), ``n`` out of range, or arrays of the wrong shape or with bad values.
    """
    if strategy not in STRATEGIES:
        raise _invalid(
            "strategy", f"unknown strategy {strategy!r}; known ones are {', '.join(STRATEGIES)}"
        )
    chunk_size = _count(chunk_size, "chunk_size", 1)
    sample_size = _count(sample_size, "sample_size", 1)
    n_committee = _count(n_committee, "n_committee", 2)
    if not isinstance(epsilon, numbers.Real) or not 0.0 <= float(epsilon) <= 1.0:
        raise _invalid("epsilon", f"must be a number in [0, 1], got {epsilon!r}")
    p = None if proba is None else check_proba(proba, chunk_size=chunk_size)
    size = _pool_size(p, committee_proba, X_pool)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= size:
        raise _invalid("n", f"must be an integer from 1 to the pool size {size}, got {n!r}")
    rng = np.random.default_rng(random_state)
    n_random = int(rng.binomial(int(n), float(epsilon))) if epsilon > 0 else 0
    n_best = int(n) - n_random
    best = np.empty(0, dtype=np.int64)
    if n_best:
        query = _Query(
            proba=p,
            X_pool=X_pool,
            X_labeled=X_labeled,
            y_labeled=y_labeled,
            estimator=estimator,
            committee_proba=committee_proba,
            n_committee=n_committee,
            standardize=standardize,
            sample_size=sample_size,
            chunk_size=chunk_size,
            rng=rng,
        )
        best = query.run(strategy, n_best, size)
    if not n_random:
        return best
    draw = rng.choice(size, size=min(size, n_random + len(best)), replace=False)
    extra = draw[~np.isin(draw, best)][:n_random]
    random_slot = np.zeros(int(n), dtype=bool)
    random_slot[rng.choice(int(n), size=n_random, replace=False)] = True
    out = np.empty(int(n), dtype=np.int64)
    out[random_slot] = extra
    out[~random_slot] = best
    return out


@dataclass(frozen=True)
class _Query:
    """One call's inputs, shared by the strategies."""

    proba: npt.NDArray[np.floating] | None
    X_pool: npt.ArrayLike | None
    X_labeled: npt.ArrayLike | None
    y_labeled: npt.ArrayLike | None
    estimator: Any
    committee_proba: npt.ArrayLike | None
    n_committee: int
    standardize: bool
    sample_size: int
    chunk_size: int
    rng: np.random.Generator

    def run(self, strategy: str, n: int, size: int) -> IntArray:
        """``n`` distinct pool indices by ``strategy``, best first."""
        if strategy == "random":
            return self.rng.choice(size, size=n, replace=False).astype(np.int64)
        if strategy == "kcenter":
            rows, Z, Z_lab = self._space(strategy, n)
            picks = kcenter_greedy(
                Z, n, centers=Z_lab, random_state=self.rng, chunk_size=self.chunk_size
            )
            return rows[picks]
        if strategy == "committee" and self.committee_proba is not None:
            votes, consensus = committee_scores(self.committee_proba, chunk_size=self.chunk_size)
            return best_first([votes, consensus], n, random_state=self.rng)
        if strategy == "committee" and self.estimator is not None:
            return self._bootstrap_committee(n)
        if self.proba is None:
            rows, Z, Z_lab = self._space("the cold start (proba=None)", n)
            picks = kmeans_pp(
                Z, n, centers=Z_lab, random_state=self.rng, chunk_size=self.chunk_size
            )
            return rows[picks]
        if strategy in UNCERTAINTY_KINDS:
            scores = uncertainty(self.proba, strategy, chunk_size=self.chunk_size, validate=False)
            return best_first([scores], n, random_state=self.rng)
        if strategy == "badge":
            rows, Z, _ = self._space(strategy, n)
            return rows[badge(Z, self.proba[rows], n, random_state=self.rng)]
        raise _invalid(
            "committee_proba",
            "committee needs committee_proba (m, N, k), or an estimator with X_pool, "
            "X_labeled and y_labeled",
        )

    def _space(self, what: str, n: int) -> tuple[IntArray, Float32Array, Float32Array]:
        if self.X_pool is None:
            raise _invalid("X_pool", f"{what} needs X_pool, the pool's features")
        return pool_space(
            self.X_pool,
            self.X_labeled,
            sample_size=max(self.sample_size, n),
            standardize=self.standardize,
            random_state=self.rng,
        )

    def _bootstrap_committee(self, n: int) -> IntArray:
        if self.X_pool is None or self.X_labeled is None or self.y_labeled is None:
            raise _invalid(
                "X_labeled", "committee with an estimator needs X_pool, X_labeled and y_labeled"
            )
        members = bootstrap_committee(
            self.estimator,
            self.X_labeled,
            self.y_labeled,
            n_members=self.n_committee,
            random_state=self.rng,
        )
        classes = np.unique(np.asarray(self.y_labeled))
        votes, consensus = member_scores(members, self.X_pool, classes, chunk_size=self.chunk_size)
        return best_first([votes, consensus], n, random_state=self.rng)
