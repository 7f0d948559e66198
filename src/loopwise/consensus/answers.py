"""Answers in long form — one row per (item, reviewer, label) — validated once.

Every function of :mod:`loopwise.consensus` takes answers as three int arrays of equal
length: ``items`` (ids ``0..n_items-1``), ``reviewers`` (ids ``0..n_reviewers-1``) and
``labels`` (``0..n_classes-1``). Sizes default to ``max id + 1``; pass them to include
items or reviewers without answers.

>>> a = as_answers([0, 0, 1], [0, 1, 1], [2, 2, 0])
>>> a.n_items, a.n_reviewers, a.n_classes, a.n_answers.tolist()
(2, 2, 3, [2, 1])
>>> as_answers([0, 1], [0], [1, 1])
Traceback (most recent call last):
...
ValueError: items, reviewers and labels must have the same length, got 2, 1, 2
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
from scipy import sparse

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Seed = int | np.random.Generator | None
IntLike = npt.ArrayLike
Gold = Mapping[int, int] | npt.ArrayLike | None


@dataclass(frozen=True, eq=False)
class Answers:
    """Validated answers; ``matrix`` is the sparse one-hot answer matrix
    ``(n_items, n_reviewers * n_classes)`` whose column ``r * n_classes + l`` counts
    reviewer ``r`` answering ``l`` on that item."""

    items: IntArray
    reviewers: IntArray
    labels: IntArray
    n_items: int
    n_reviewers: int
    n_classes: int

    @cached_property
    def matrix(self) -> sparse.csr_matrix:
        cols = self.reviewers * self.n_classes + self.labels
        data = np.ones(self.items.size)
        shape = (self.n_items, self.n_reviewers * self.n_classes)
        return sparse.csr_matrix((data, (self.items, cols)), shape=shape)

    @cached_property
    def votes(self) -> FloatArray:
        """``(n_items, n_classes)`` count of each label per item."""
        flat = np.bincount(
            self.items * self.n_classes + self.labels, minlength=self.n_items * self.n_classes
        )
        return flat.reshape(self.n_items, self.n_classes).astype(np.float64)

    @cached_property
    def n_answers(self) -> IntArray:
        """``(n_items,)`` answers per item."""
        return np.bincount(self.items, minlength=self.n_items).astype(np.int64)


def _int_array(name: str, values: IntLike) -> IntArray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    integral = np.issubdtype(arr.dtype, np.integer) or (
        np.issubdtype(arr.dtype, np.floating) and bool(np.all(arr == np.round(arr)))
    )
    if arr.size and not integral:
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if out.size and out.min() < 0:
        raise ValueError(f"{name} must be >= 0, got {int(out.min())}")
    return out


def _size(name: str, given: int | None, ids: IntArray, plural: str) -> int:
    seen = int(ids.max()) + 1 if ids.size else 0
    if given is None:
        return seen
    if given < seen:
        raise ValueError(f"{name}={given} but {plural} go up to {seen - 1}")
    return int(given)


def as_answers(
    items: IntLike,
    reviewers: IntLike,
    labels: IntLike,
    *,
    n_items: int | None = None,
    n_reviewers: int | None = None,
    n_classes: int | None = None,
) -> Answers:
    """Validate answers (equal lengths, non-negative ints, ids below the given sizes)."""
    it = _int_array("items", items)
    rv = _int_array("reviewers", reviewers)
    lb = _int_array("labels", labels)
    if not it.size == rv.size == lb.size:
        raise ValueError(
            "items, reviewers and labels must have the same length, "
            f"got {it.size}, {rv.size}, {lb.size}"
        )
    k = _size("n_classes", n_classes, lb, "labels")
    if k < 1:
        raise ValueError("n_classes must be >= 1 (give it when there are no answers)")
    return Answers(
        it,
        rv,
        lb,
        _size("n_items", n_items, it, "item ids"),
        _size("n_reviewers", n_reviewers, rv, "reviewer ids"),
        k,
    )


def gold_labels(gold: Gold, n_items: int, n_classes: int) -> IntArray:
    """Known labels as an ``(n_items,)`` array, ``-1`` where unknown.

    ``gold`` is a mapping ``item -> label`` or an ``(n_items,)`` array with ``-1`` for
    unknown items.

    >>> gold_labels({1: 2}, 3, 4).tolist()
    [-1, 2, -1]
    """
    out = np.full(n_items, -1, dtype=np.int64)
    if gold is None:
        return out
    if isinstance(gold, Mapping):
        if gold:
            keys = np.fromiter(gold.keys(), dtype=np.int64, count=len(gold))
            vals = np.fromiter(gold.values(), dtype=np.int64, count=len(gold))
            if keys.min() < 0 or keys.max() >= n_items:
                raise ValueError(f"gold item ids must be in [0, {n_items}), got {keys.tolist()}")
            out[keys] = vals
    else:
        arr = np.asarray(gold)
        if arr.shape != (n_items,):
            raise ValueError(f"gold must be a mapping or have shape ({n_items},), got {arr.shape}")
        out = arr.astype(np.int64)
    known = out[out != -1]
    if known.size and (known.min() < 0 or known.max() >= n_classes):
        raise ValueError(f"gold labels must be in [0, {n_classes}) or -1 for unknown")
    return out


def argmax_random(scores: FloatArray, rng: np.random.Generator) -> IntArray:
    """Row-wise argmax with ties broken uniformly at random (never "first seen").

    Scores within ``1e-12`` (relative) of the row maximum count as tied.

    >>> rng = np.random.default_rng(0)
    >>> picks = [int(argmax_random(np.array([[1.0, 3.0, 3.0]]), rng)[0]) for _ in range(200)]
    >>> sorted(set(picks))
    [1, 2]
    """
    if scores.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    top = scores.max(axis=1, keepdims=True)
    tied = scores >= top - 1e-12 * np.maximum(np.abs(top), 1e-300)
    noise = rng.random(scores.shape)
    return np.asarray(np.where(tied, noise, -1.0).argmax(axis=1), dtype=np.int64)


def as_float_matrix(name: str, values: npt.ArrayLike, shape: Sequence[int]) -> FloatArray:
    """A float array of exactly ``shape``, or a ValueError naming it."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
    return arr


def long_form(matrix: npt.ArrayLike, missing: int = -1) -> tuple[IntArray, IntArray, IntArray]:
    """``items, raters, labels`` from a wide ``(n_items, n_raters)`` table whose cells hold
    a label or ``missing``.

    >>> [x.tolist() for x in long_form([[1, -1], [0, 1]])]
    [[0, 1, 1], [0, 0, 1], [1, 0, 1]]
    """
    m = np.asarray(matrix)
    if m.ndim != 2:
        raise ValueError(f"matrix must be 2-d (n_items, n_raters), got shape {m.shape}")
    items, raters = np.nonzero(m != missing)
    return items.astype(np.int64), raters.astype(np.int64), m[items, raters].astype(np.int64)
