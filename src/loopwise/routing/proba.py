"""Checks on class-probability arrays, shared by the gate and the service."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

SUM_TOLERANCE = 1e-6


def proba_problems(proba: npt.ArrayLike, n_classes: int) -> list[tuple[int, str]]:
    """Every row of ``proba`` that is not a probability vector over ``n_classes`` classes.

    Parameters
    ----------
    proba : array-like of shape (n, k)
    n_classes : the expected k.

    Returns
    -------
    list of (row, message), empty when every row is valid: finite, non-negative,
    of length ``n_classes`` and summing to 1 within 1e-6.

    >>> proba_problems([[0.5, 0.5], [0.7, 0.4], [-0.1, 1.1]], 2)
    [(1, 'probabilities sum to 1.1, not 1 (± 1e-06)'), (2, 'probabilities must be >= 0')]
    """
    arr = np.asarray(proba, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != n_classes:
        shape = "x".join(str(s) for s in arr.shape)
        return [(-1, f"probabilities must have shape (n, {n_classes}), got ({shape})")]
    problems: list[tuple[int, str]] = []
    finite = np.asarray(np.isfinite(arr).all(axis=1), dtype=bool)
    nonneg = np.asarray((arr >= 0).all(axis=1), dtype=bool)
    sums: npt.NDArray[np.float64] = arr.sum(axis=1)
    sums_ok = np.asarray(np.abs(sums - 1.0) <= SUM_TOLERANCE, dtype=bool)
    for i in np.flatnonzero(~(finite & nonneg & sums_ok)):
        if not finite[i]:
            problems.append((int(i), "probabilities must be finite numbers (no NaN or inf)"))
        elif not nonneg[i]:
            problems.append((int(i), "probabilities must be >= 0"))
        else:
            problems.append(
                (int(i), f"probabilities sum to {sums[i]:.6g}, not 1 (± {SUM_TOLERANCE:g})")
            )
    return problems
