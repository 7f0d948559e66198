"""How unsure a model is of each pool item, from its class probabilities: margin, least
confident, entropy. Scores are computed chunk by chunk, so the extra memory is one
score per item plus one chunk, whatever the pool's size.

Every score is "higher = more informative", so the best items are the largest scores:

* ``margin`` — ``1 - (p1 - p2)``, with ``p1 >= p2`` the two largest probabilities;
* ``least_confident`` — ``1 - p1``;
* ``entropy`` — ``-sum_c p_c log p_c`` (natural log; ``0 log 0 = 0``).

>>> import numpy as np
>>> proba = np.array([[0.9, 0.1, 0.0], [0.5, 0.4, 0.1], [0.4, 0.3, 0.3]])
>>> uncertainty(proba, "margin").round(2).tolist()
[0.2, 0.9, 0.9]
>>> uncertainty(proba, "least_confident").round(2).tolist()
[0.1, 0.5, 0.6]
>>> uncertainty(proba, "entropy").round(3).tolist()
[0.325, 0.943, 1.089]
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from loopwise.errors import InvalidInput

FloatArray = npt.NDArray[np.float64]

UNCERTAINTY_KINDS: tuple[str, ...] = ("margin", "least_confident", "entropy")
"""The scores :func:`uncertainty` computes."""

CHUNK_SIZE = 65_536
"""Pool rows scored at a time."""

SUM_TOLERANCE = 1e-4
"""How far a row of probabilities may sum from 1 (float32 rounding included)."""


def check_proba(proba: npt.ArrayLike, *, chunk_size: int = CHUNK_SIZE) -> npt.NDArray[np.floating]:
    """``proba`` as a float array of shape (n, k), k >= 2, or InvalidInput naming the first
    bad row: every value finite and >= 0, every row summing to 1 (within 1e-4).

    >>> check_proba([[0.5, 0.5]]).dtype
    dtype('float64')
    >>> check_proba([[0.5, 0.5], [0.7, 0.4]])
    Traceback (most recent call last):
    ...
    loopwise.errors.InvalidInput: proba row 1: probabilities sum to 1.1, not 1
    """
    arr = np.asarray(proba)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise InvalidInput(
            f"proba must have shape (n, k) with k >= 2 classes, got shape {arr.shape}",
            errors=[{"loc": ["proba"], "msg": "must have shape (n, k), k >= 2"}],
        )
    for start in range(0, arr.shape[0], chunk_size):
        chunk = arr[start : start + chunk_size]
        sums = chunk @ np.ones(chunk.shape[1], dtype=chunk.dtype)  # NaN or inf if a value is
        ok = np.abs(sums - 1.0) <= SUM_TOLERANCE
        if chunk.min() < 0:
            ok &= chunk.min(axis=1) >= 0
        if not ok.all():
            i = int(np.argmin(ok))
            row = start + i
            if not np.isfinite(chunk[i]).all():
                msg = "probabilities must be finite numbers (no NaN or inf)"
            elif not (chunk[i] >= 0).all():
                msg = "probabilities must be >= 0"
            else:
                msg = f"probabilities sum to {sums[i]:.6g}, not 1"
            raise InvalidInput(
                f"proba row {row}: {msg}", errors=[{"loc": ["proba", row], "msg": msg}]
            )
    return arr


def _score_chunk(p: npt.NDArray[np.floating], kind: str) -> FloatArray:
    p64 = np.asarray(p, dtype=np.float64)
    if kind == "margin":
        part = np.partition(p64, p64.shape[1] - 2, axis=1)
        score: FloatArray = 1.0 - (part[:, -1] - part[:, -2])
    elif kind == "least_confident":
        score = 1.0 - p64.max(axis=1)
    else:
        score = 0.0 - (p64 * np.log(np.where(p64 > 0, p64, 1.0))).sum(axis=1)
    return score


def uncertainty(
    proba: npt.ArrayLike,
    kind: str = "margin",
    *,
    chunk_size: int = CHUNK_SIZE,
    validate: bool = True,
) -> FloatArray:
    """Uncertainty of each row of ``proba``; higher means more informative.

    Parameters
    ----------
    proba : (n, k) class probabilities (k >= 2).
    kind : one of :data:`UNCERTAINTY_KINDS`.
    chunk_size : rows scored at a time (the result does not depend on it).
    validate : check ``proba`` (:func:`check_proba`); ``False`` when the caller has.

    Returns
    -------
    (n,) float64 scores.
    """
    if kind not in UNCERTAINTY_KINDS:
        known = ", ".join(UNCERTAINTY_KINDS)
        raise InvalidInput(
            f"unknown uncertainty {kind!r}: known ones are {known}",
            errors=[{"loc": ["kind"], "msg": f"must be one of {known}"}],
        )
    arr = check_proba(proba, chunk_size=chunk_size) if validate else np.asarray(proba)
    out = np.empty(arr.shape[0], dtype=np.float64)
    for start in range(0, arr.shape[0], chunk_size):
        out[start : start + chunk_size] = _score_chunk(arr[start : start + chunk_size], kind)
    return out
