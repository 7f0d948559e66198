"""Novelty: is an input far from everything the model was built on?

Score: the mean distance to the ``n_neighbors`` nearest reference items (the model's
training inputs, or their embeddings), after standardising every feature with the
reference mean and standard deviation. Threshold: a conformal p-value against
calibration items — in-distribution inputs that are *not* reference items —

    p(x) = (1 + #{calibration scores >= score(x)}) / (n_cal + 1),

and ``x`` is novel when ``p(x) <= alpha``. For an input exchangeable with the calibration
items, ``P(novel) <= alpha``: at most an ``alpha`` share of ordinary items is sent to
experts. Equivalently ``x`` is novel when its score is above the
``floor(alpha (n_cal + 1))``-th largest calibration score (:attr:`threshold_`; ``inf``
when there are too few calibration items for ``alpha``, so nothing is novel).

Neighbours come from scikit-learn's ``NearestNeighbors`` (imported when fitting).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> det = NoveltyDetector(n_neighbors=5, alpha=0.01).fit(rng.normal(size=(2000, 3)))
>>> det = det.calibrate(rng.normal(size=(1000, 3)))
>>> det.is_novel(np.array([[0.1, 0.0, -0.2], [8.0, 8.0, 8.0]])).tolist()
[False, True]
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import numpy.typing as npt


class NoveltyDetector:
    """kNN distance in standardised feature space with a conformal threshold.

    Parameters
    ----------
    n_neighbors : neighbours averaged in the score.
    alpha : share of in-distribution items that may be flagged (the conformal level).
    standardize : scale features by the reference mean and std (turn off for embeddings).
    """

    def __init__(self, n_neighbors: int = 5, alpha: float = 0.01, *,
                 standardize: bool = True) -> None:
        if n_neighbors < 1:
            raise ValueError(f"n_neighbors must be >= 1, got {n_neighbors}")
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.standardize = standardize
        self.mean_: npt.NDArray[np.float64] | None = None
        self.scale_: npt.NDArray[np.float64] | None = None
        self.reference_: npt.NDArray[np.float64] | None = None
        self.calibration_scores_: npt.NDArray[np.float64] | None = None
        self.threshold_: float = math.inf
        self._nn: Any = None

    def _prep(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        arr = np.asarray(X, dtype=np.float64)
        if arr.ndim != 2:
            raise ValueError(f"X must be 2-D (n, d), got shape {arr.shape}")
        if self.mean_ is None or self.scale_ is None:
            raise ValueError("fit the detector first")
        if arr.shape[1] != self.mean_.shape[0]:
            raise ValueError(f"X has {arr.shape[1]} features, the detector {self.mean_.shape[0]}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("X must be finite (no NaN or inf)")
        out: npt.NDArray[np.float64] = (arr - self.mean_) / self.scale_
        return out

    def fit(self, X_reference: npt.ArrayLike) -> NoveltyDetector:
        """Remember the reference set (shape (m, d)) and its feature scaling."""
        from sklearn.neighbors import NearestNeighbors

        ref = np.asarray(X_reference, dtype=np.float64)
        if ref.ndim != 2 or ref.shape[0] < self.n_neighbors:
            raise ValueError(
                f"X_reference must be (m, d) with m >= n_neighbors={self.n_neighbors}, "
                f"got shape {ref.shape}"
            )
        if not np.all(np.isfinite(ref)):
            raise ValueError("X_reference must be finite (no NaN or inf)")
        d = ref.shape[1]
        if self.standardize:
            self.mean_ = ref.mean(axis=0)
            sd = ref.std(axis=0)
            self.scale_ = np.where(sd > 0, sd, 1.0)
        else:
            self.mean_, self.scale_ = np.zeros(d), np.ones(d)
        self.reference_ = ref
        self._nn = NearestNeighbors(n_neighbors=self.n_neighbors).fit(self._prep(ref))
        self.calibration_scores_ = None
        self.threshold_ = math.inf
        return self

    def score(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Mean distance to the ``n_neighbors`` nearest reference items, shape (n,)."""
        z = self._prep(X)
        if z.shape[0] == 0:
            return np.zeros(0)
        dist, _ = self._nn.kneighbors(z)
        out: npt.NDArray[np.float64] = dist.mean(axis=1)
        return out

    def calibrate(self, X_calibration: npt.ArrayLike) -> NoveltyDetector:
        """Set :attr:`threshold_` from in-distribution items (n, d) not in the reference set."""
        self._set_calibration(self.score(X_calibration))
        return self

    def calibrate_leave_one_out(self) -> NoveltyDetector:
        """Set :attr:`threshold_` from the reference items themselves, each scored against
        the others (jackknife): no items are spent on calibration, which matters for small
        training sets (a level ``alpha`` needs ``1/alpha - 1`` calibration scores)."""
        if self.reference_ is None:
            raise ValueError("fit the detector first")
        if self.reference_.shape[0] <= self.n_neighbors:
            raise ValueError(f"leave-one-out needs more than n_neighbors={self.n_neighbors} "
                             "reference items")
        dist, _ = self._nn.kneighbors(self._prep(self.reference_),
                                      n_neighbors=self.n_neighbors + 1)
        self._set_calibration(dist[:, 1:].mean(axis=1))  # each item's own distance 0 dropped
        return self

    def _set_calibration(self, scores: npt.NDArray[np.float64]) -> None:
        s = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
        self.calibration_scores_ = s
        r = math.floor(self.alpha * (s.size + 1))
        self.threshold_ = float(s[r - 1]) if r >= 1 else math.inf

    def pvalue(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Conformal p-values, shape (n,): small means unlike the calibration items."""
        if self.calibration_scores_ is None:
            raise ValueError("calibrate the detector first")
        asc = self.calibration_scores_[::-1]
        s = self.score(X)
        at_or_above = asc.size - np.searchsorted(asc, s, side="left")
        out = ((1.0 + at_or_above) / (asc.size + 1.0)).astype(np.float64)
        return out

    def is_novel(self, X: npt.ArrayLike, scores: npt.ArrayLike | None = None
                 ) -> npt.NDArray[np.bool_]:
        """``p(x) <= alpha``, i.e. score above :attr:`threshold_`; (n,) bool."""
        if self.calibration_scores_ is None:
            raise ValueError("calibrate the detector first")
        s = self.score(X) if scores is None else np.asarray(scores, dtype=np.float64)
        out: npt.NDArray[np.bool_] = s > self.threshold_
        return out

    def set_alpha(self, alpha: float) -> NoveltyDetector:
        """Change the conformal level; the threshold follows from the calibration scores."""
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        self.alpha = alpha
        if self.calibration_scores_ is not None:
            self._set_calibration(self.calibration_scores_)
        return self

    def to_bytes(self) -> bytes:
        """The fitted, calibrated detector as a numpy ``.npz`` archive (no pickle)."""
        st = self.state()
        buf = io.BytesIO()
        np.savez_compressed(
            buf, reference=np.asarray(st["reference"], dtype=np.float64),
            calibration_scores=np.asarray(st["calibration_scores"], dtype=np.float64),
            settings=np.array([st["n_neighbors"], st["alpha"], float(st["standardize"])]),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> NoveltyDetector:
        """Rebuild a detector from :meth:`to_bytes` (read with ``allow_pickle=False``).

        >>> rng = np.random.default_rng(0)
        >>> det = NoveltyDetector(alpha=0.1).fit(rng.normal(size=(50, 3)))
        >>> det = det.calibrate(rng.normal(size=(30, 3)))
        >>> again = NoveltyDetector.from_bytes(det.to_bytes())
        >>> bool(again.threshold_ == det.threshold_)
        True
        """
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            k, alpha, standardize = (float(x) for x in z["settings"])
            return cls.from_state({
                "n_neighbors": int(k), "alpha": alpha, "standardize": bool(standardize),
                "reference": z["reference"], "calibration_scores": z["calibration_scores"],
            })

    def state(self) -> dict[str, Any]:
        """Arrays and settings to persist (e.g. with ``numpy.savez``); see :meth:`from_state`."""
        if self.reference_ is None:
            raise ValueError("fit the detector first")
        return {
            "n_neighbors": self.n_neighbors, "alpha": self.alpha,
            "standardize": self.standardize, "reference": self.reference_,
            "calibration_scores": (self.calibration_scores_ if self.calibration_scores_
                                   is not None else np.zeros(0)),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> NoveltyDetector:
        """Rebuild a fitted, calibrated detector from :meth:`state`."""
        det = cls(int(state["n_neighbors"]), float(state["alpha"]),
                  standardize=bool(state["standardize"])).fit(state["reference"])
        s = np.asarray(state["calibration_scores"], dtype=np.float64)
        if s.size:
            det._set_calibration(s)
        return det
