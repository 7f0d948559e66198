"""Diverse batches in a feature space: greedy k-center (core-set), k-means++ seeding
(the cold start), and BADGE's k-means++ over gradient embeddings.

Each works on a float32 matrix ``Z`` of (standardised) features or embeddings held in
memory — :func:`pool_space` draws it from the pool, a uniform random sample of at most
``sample_size`` items on a large pool — and returns row indices of ``Z`` in the order
chosen, never one twice. Distances to a set of centers (the labeled items) are computed
in blocks of at most ``BLOCK`` floats, so memory stays bounded whatever the sizes.

>>> import numpy as np
>>> Z = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0], [10.0, 0.0]], np.float32)
>>> kcenter_greedy(Z, 2, centers=Z[:1]).tolist()   # farthest first, then the far corner
[4, 2]
>>> sorted(kmeans_pp(Z[[0, 2, 4]], 3, random_state=0).tolist())
[0, 1, 2]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from loopwise.errors import InvalidInput

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
Seed = int | np.random.Generator | None

BLOCK = 1 << 22
"""Most floats in one block of pairwise distances (16 MiB in float32)."""

SAMPLE_SIZE = 50_000
"""Most pool items the diversity strategies look at (a uniform sample beyond that)."""


def pool_space(
    X_pool: npt.ArrayLike,
    X_labeled: npt.ArrayLike | None,
    *,
    sample_size: int = SAMPLE_SIZE,
    standardize: bool = True,
    random_state: Seed = None,
) -> tuple[IntArray, Float32Array, Float32Array]:
    """The pool items the diversity strategies consider, in the space they measure.

    Parameters
    ----------
    X_pool : (N, d) features or embeddings; X_labeled : (L, d) or None.
    sample_size : at most this many pool items (a sorted uniform sample without
        replacement when N is larger; all of them otherwise, with no randomness).
    standardize : scale every feature to mean 0 and standard deviation 1 over the
        considered pool items (a constant feature is only centred); ``False`` for
        embeddings whose distances already mean something.

    Returns
    -------
    (rows, Z, Z_labeled): rows (S,) int64 indices into the pool, Z (S, d) float32 and
    Z_labeled (L, d) float32 (0 rows when X_labeled is None).
    """
    X = np.asarray(X_pool)
    if X.ndim != 2:
        raise InvalidInput(
            f"X_pool must have shape (n, d), got {X.shape}",
            errors=[{"loc": ["X_pool"], "msg": "must have shape (n, d)"}],
        )
    n, d = X.shape
    if n > sample_size:
        rng = np.random.default_rng(random_state)
        rows = np.sort(rng.choice(n, size=sample_size, replace=False)).astype(np.int64)
    else:
        rows = np.arange(n, dtype=np.int64)
    Xs = np.asarray(X[rows] if n > sample_size else X, dtype=np.float64)
    lab = np.empty((0, d)) if X_labeled is None else np.asarray(X_labeled, dtype=np.float64)
    if lab.size == 0:
        lab = np.empty((0, d))
    if lab.ndim != 2 or lab.shape[1] != d:
        raise InvalidInput(
            f"X_labeled must have shape (L, {d}) like X_pool, got {lab.shape}",
            errors=[{"loc": ["X_labeled"], "msg": f"must have {d} columns"}],
        )
    for name, part in (("X_pool", Xs), ("X_labeled", lab)):
        bad = ~np.isfinite(part).all(axis=1)
        if bad.any():
            row = int(rows[np.argmax(bad)]) if name == "X_pool" else int(np.argmax(bad))
            msg = "features must be finite (impute missing values first)"
            raise InvalidInput(
                f"{name} row {row}: {msg}", errors=[{"loc": [name, row], "msg": msg}]
            )
    if standardize:
        mean = Xs.mean(axis=0)
        scale = Xs.std(axis=0)
        scale[scale == 0] = 1.0
        Xs = (Xs - mean) / scale
        lab = (lab - mean) / scale
    return rows, Xs.astype(np.float32), lab.astype(np.float32)


def _sq_norms(Z: Float32Array) -> FloatArray:
    norms: FloatArray = np.einsum("ij,ij->i", Z, Z, dtype=np.float64)
    return norms


def min_sq_dist(Z: Float32Array, centers: Float32Array, *, chunk_size: int = 65_536) -> FloatArray:
    """Squared Euclidean distance from each row of ``Z`` (n, d) to its nearest row of
    ``centers`` (c, d), in blocks of at most :data:`BLOCK` floats; (n,) float64, or +inf
    everywhere when there are no centers.

    >>> Z = np.array([[0.0, 0.0], [3.0, 4.0]], np.float32)
    >>> min_sq_dist(Z, np.array([[0.0, 1.0]], np.float32)).tolist()
    [1.0, 18.0]
    """
    out = np.full(len(Z), np.inf)
    if len(centers) == 0:
        return out
    c_norms = _sq_norms(centers).astype(np.float32)
    z_norms = _sq_norms(Z)
    rows = max(1, min(chunk_size, BLOCK // len(centers)))
    for start in range(0, len(Z), rows):
        g = Z[start : start + rows] @ centers.T
        g *= -2.0
        g += c_norms
        out[start : start + rows] = g.min(axis=1) + z_norms[start : start + rows]
    np.maximum(out, 0.0, out=out)
    return out


def _sq_dist_to(Z: Float32Array, z_norms: FloatArray, j: int) -> FloatArray:
    """Squared distance of every row of ``Z`` to row ``j``."""
    dist: FloatArray = z_norms - 2.0 * (Z @ Z[j]) + z_norms[j]
    np.maximum(dist, 0.0, out=dist)
    return dist


def kcenter_greedy(
    Z: Float32Array,
    n: int,
    *,
    centers: Float32Array | None = None,
    random_state: Seed = None,
    chunk_size: int = 65_536,
) -> IntArray:
    """Greedy k-center (the core-set heuristic): repeatedly take the row of ``Z`` farthest
    from every center so far — the ``centers`` given (labeled items) and the rows taken.

    With no centers the first row is drawn uniformly at random (``random_state``); that is
    the only randomness. Returns ``n`` distinct row indices, in the order taken.
    """
    z_norms = _sq_norms(Z)
    picks: list[int] = []
    if centers is None or len(centers) == 0:
        picks.append(int(np.random.default_rng(random_state).integers(len(Z))))
        dist = _sq_dist_to(Z, z_norms, picks[0])
    else:
        dist = min_sq_dist(Z, centers, chunk_size=chunk_size)
    dist[picks] = -1.0
    while len(picks) < n:
        j = int(np.argmax(dist))
        picks.append(j)
        np.minimum(dist, _sq_dist_to(Z, z_norms, j), out=dist)
        dist[picks] = -1.0
    return np.asarray(picks, dtype=np.int64)


def _d2_sampling(
    first: list[int],
    dist: FloatArray,
    n: int,
    dist_to: Callable[[int], FloatArray],
    rng: np.random.Generator,
) -> IntArray:
    """k-means++ D² sampling: each next row drawn with probability proportional to its
    squared distance to the nearest row taken so far (uniformly among rows not taken when
    every distance is 0). ``dist_to(j)`` gives every row's squared distance to row ``j``."""
    picks = list(first)
    dist[picks] = 0.0
    while len(picks) < n:
        total = float(dist.sum())
        if total > 0.0 and np.isfinite(total):
            cum = np.cumsum(dist)
            j = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
            if j >= len(dist):  # the draw rounded up to the total
                j = int(np.flatnonzero(dist)[-1])
        else:
            free = np.ones(len(dist), dtype=bool)
            free[picks] = False
            j = int(rng.choice(np.flatnonzero(free)))
        picks.append(j)
        np.minimum(dist, dist_to(j), out=dist)
        dist[picks] = 0.0
    return np.asarray(picks, dtype=np.int64)


def kmeans_pp(
    Z: Float32Array,
    n: int,
    *,
    centers: Float32Array | None = None,
    random_state: Seed = None,
    chunk_size: int = 65_536,
) -> IntArray:
    """k-means++ seeding: ``n`` distinct rows of ``Z`` spread over its mass.

    The first row is uniform when there are no ``centers`` (labeled items); every next row
    is drawn with probability proportional to its squared distance to the nearest center
    or row taken. Returns row indices in the order drawn.
    """
    rng = np.random.default_rng(random_state)
    z_norms = _sq_norms(Z)
    first: list[int] = []
    if centers is None or len(centers) == 0:
        first.append(int(rng.integers(len(Z))))
        dist = _sq_dist_to(Z, z_norms, first[0])
    else:
        dist = min_sq_dist(Z, centers, chunk_size=chunk_size)
    return _d2_sampling(first, dist, n, lambda j: _sq_dist_to(Z, z_norms, j), rng)


def badge(
    Z: Float32Array,
    proba: npt.NDArray[np.floating],
    n: int,
    *,
    random_state: Seed = None,
) -> IntArray:
    """BADGE: k-means++ seeding over gradient embeddings.

    Item i's embedding is the gradient of the cross-entropy loss, at its predicted label,
    with respect to the weights of a linear softmax layer on ``[Z_i, 1]``:
    ``g_i = (p_i - e_{argmax p_i}) ⊗ [Z_i, 1]``, whose norm grows with the uncertainty.
    The first row is the largest gradient; the rest follow D² sampling. Distances use
    ``|g_i - g_j|² = |a_i|²|z_i|² + |a_j|²|z_j|² - 2 (a_i·a_j)(z_i·z_j)``, so the
    (k·(d+1))-dimensional embeddings are never built.

    Parameters
    ----------
    Z : (S, d) float32 features; proba : (S, k) probabilities of the same rows.
    """
    rng = np.random.default_rng(random_state)
    a = np.asarray(proba, dtype=np.float32).copy()
    a[np.arange(len(a)), a.argmax(axis=1)] -= 1.0
    a_norms = _sq_norms(a)
    z_norms = _sq_norms(Z) + 1.0

    def dist_to(j: int) -> FloatArray:
        cross = (a @ a[j]).astype(np.float64) * ((Z @ Z[j]).astype(np.float64) + 1.0)
        dist: FloatArray = a_norms * z_norms + a_norms[j] * z_norms[j] - 2.0 * cross
        np.maximum(dist, 0.0, out=dist)
        return dist

    first = int(np.argmax(a_norms * z_norms))
    return _d2_sampling([first], dist_to(first), n, dist_to, rng)
