"""The routing score: maximum class probability, optionally after temperature scaling.

Temperature scaling (Guo et al., 2017) rescales log-probabilities by ``1 / T`` and
re-normalises: ``q_c ∝ p_c ** (1 / T)``. ``T > 1`` softens an over-confident model,
``T < 1`` sharpens an under-confident one; the predicted class never changes. ``T`` is
fitted by minimising the negative log-likelihood on *held-out* labels — labels that are
not also used to certify the threshold, or the certified score would depend on the
certification labels.

>>> import numpy as np
>>> p = np.array([[0.99, 0.01], [0.9, 0.1]])
>>> label, conf = max_confidence(p, temperature=2.0)
>>> label.tolist(), conf.round(3).tolist()
([0, 0], [0.909, 0.75])
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize_scalar

_TINY = 1e-300


def _log_proba(proba: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = np.log(np.maximum(proba, _TINY))
    return out


def apply_temperature(proba: npt.ArrayLike, temperature: float) -> npt.NDArray[np.float64]:
    """Class probabilities after temperature scaling.

    Parameters
    ----------
    proba : (n, k) probabilities.
    temperature : ``T > 0``.

    Returns
    -------
    (n, k) probabilities ``∝ proba ** (1 / T)``.

    >>> apply_temperature([[0.8, 0.2]], 1.0).tolist()
    [[0.8, 0.2]]
    """
    _check_temperature(temperature)
    p = np.asarray(proba, dtype=np.float64)
    z = _log_proba(p) / temperature
    z -= z.max(axis=1, keepdims=True)
    q: npt.NDArray[np.float64] = np.exp(z)
    q /= q.sum(axis=1, keepdims=True)
    return q


def max_confidence(
    proba: npt.ArrayLike, temperature: float | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Predicted class and its (temperature-scaled) probability, vectorised.

    Parameters
    ----------
    proba : (n, k) probabilities.
    temperature : ``None`` or 1 for the raw maximum probability.

    Returns
    -------
    label : (n,) int64, the arg-max class (first on ties).
    confidence : (n,) float64.
    """
    p = np.asarray(proba, dtype=np.float64)
    n, k = p.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    label = p.argmax(axis=1)
    flat = np.ascontiguousarray(p).reshape(-1)
    top = flat[np.arange(n, dtype=np.int64) * k + label]
    if temperature is None or temperature == 1.0:
        return label.astype(np.int64, copy=False), top
    _check_temperature(temperature)
    # max_c q_c = 1 / sum_c (p_c / p_top) ** (1 / T), computed in log space
    z = (_log_proba(p) - _log_proba(top)[:, None]) / temperature
    conf: npt.NDArray[np.float64] = 1.0 / np.exp(z).sum(axis=1)
    return label.astype(np.int64, copy=False), conf


def _check_temperature(temperature: float) -> None:
    if not (isinstance(temperature, int | float) and math.isfinite(temperature)
            and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")


def temperature_nll(proba: npt.ArrayLike, y: npt.ArrayLike, temperature: float) -> float:
    """Mean negative log-likelihood of labels ``y`` under ``proba`` scaled by ``temperature``."""
    p = np.asarray(proba, dtype=np.float64)
    yy = np.asarray(y, dtype=np.int64)
    z = _log_proba(p) / temperature
    zmax = z.max(axis=1)
    lse = zmax + np.log(np.exp(z - zmax[:, None]).sum(axis=1))
    return float(np.mean(lse - z[np.arange(yy.size), yy]))


def fit_temperature(
    proba: npt.ArrayLike, y: npt.ArrayLike, *, bounds: tuple[float, float] = (0.05, 20.0)
) -> float:
    """The temperature minimising the negative log-likelihood of held-out labels.

    Parameters
    ----------
    proba : (n, k) probabilities on held-out items.
    y : (n,) int true classes.
    bounds : search interval for ``T``.

    Returns
    -------
    float, the fitted ``T`` (1.0 when ``n == 0``).

    >>> rng = np.random.default_rng(0)
    >>> true = rng.dirichlet([1, 1, 1], 5000)
    >>> y = np.array([rng.choice(3, p=q) for q in true])
    >>> sharp = apply_temperature(true, 0.5)                 # an over-confident model
    >>> 1.8 < fit_temperature(sharp, y) < 2.2
    True
    """
    p = np.asarray(proba, dtype=np.float64)
    yy = np.asarray(y, dtype=np.int64)
    if p.ndim != 2 or yy.shape != (p.shape[0],):
        raise ValueError(f"proba must be (n, k) and y (n,), got {p.shape} and {yy.shape}")
    if yy.size == 0:
        return 1.0
    if yy.min() < 0 or yy.max() >= p.shape[1]:
        raise ValueError(f"labels must be in 0..{p.shape[1] - 1}")
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    res = minimize_scalar(
        lambda t: temperature_nll(p, yy, math.exp(t)), bounds=(lo, hi), method="bounded",
        options={"xatol": 1e-4},
    )
    return float(math.exp(res.x))
