"""Drift between a reference sample (the champion's training data) and a current window,
decided on effect sizes, not on p-values (which flag every large batch).

Statistics, per feature:

* **PSI** (population stability index) ``Σ (q − p) ln(q / p)`` over bins fixed on the
  reference: numeric features use ``bins`` reference quantiles (ties merge bins; outer bins
  are open; missing values get a bin of their own), categorical features one bin per
  category seen in either sample. Shares are smoothed as ``(share + eps) / (1 + k·eps)``
  over the ``k`` bins, ``eps = 1e-4``, so that an empty bin gives a large but finite term;
  identical samples give exactly 0.
* **Jensen–Shannon distance** (base 2, in [0, 1]; the square root of the divergence) on
  the same bins, unsmoothed.
* **Normalised Wasserstein** (numeric only): the earth mover's distance between the two
  samples divided by the reference's standard deviation, i.e. in reference SDs (a shift of
  the mean by ``d`` SDs gives ``d``); undefined when the reference is constant.

Decision: numeric features by PSI (``moderate`` ≥ 0.1, ``major`` ≥ 0.25, the usual credit
scoring bands); categorical ones by JS distance (``moderate`` ≥ 0.13, ``major`` ≥ 0.21:
what PSI 0.1 and 0.25 correspond to for small shifts, JS divergence ≈ PSI / 8 nats); a
window with fewer than ``min_n`` values (either sample) is ``insufficient``. Without drift,
PSI is about ``(k − 1)(1/n_ref + 1/n_cur)`` (``noise`` in each result): with 10 bins and
200 current values about 0.05, so a false ``moderate`` needs a chance fluctuation about
twice that size (below 2% per feature and window); larger windows make it vanish.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = rng.normal(size=5000)
>>> round(psi(ref, ref), 6), round(psi(ref, ref + 1.0), 2) > 0.25
(0.0, True)
>>> rep = drift_report({"x": ref}, {"x": rng.normal(0.5, 1, size=2000)})
>>> rep.status, rep.features["x"].status, round(rep.features["x"].wasserstein, 1)
('major', 'major', 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from loopwise.oversight.groups import missing_mask
from loopwise.oversight.intervals import Interval, newcombe

EPS = 1e-4
BINS = 10
MIN_N = 200
PSI_BANDS = (0.1, 0.25)
JS_BANDS = (0.13, 0.21)
STATUSES = ("insufficient", "ok", "moderate", "major")
MISSING = "(missing)"

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one feature: the statistics, the one that decides (``decided_by``), and
    the ``status`` (``ok`` / ``moderate`` / ``major`` / ``insufficient``).

    ``noise`` is PSI's expected value without drift at these sample sizes;
    ``difference`` (rates only) is current − reference with Newcombe's interval.
    """

    name: str
    kind: str
    n_reference: int
    n_current: int
    psi: float
    js: float
    wasserstein: float
    noise: float
    decided_by: str
    status: str
    reason: str | None = None
    difference: Interval | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``nan`` → ``None``)."""

        def f(x: float) -> float | None:
            return None if math.isnan(x) else float(x)

        return {
            "name": self.name,
            "kind": self.kind,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "psi": f(self.psi),
            "js": f(self.js),
            "wasserstein": f(self.wasserstein),
            "noise": f(self.noise),
            "decided_by": self.decided_by,
            "status": self.status,
            "reason": self.reason,
            "difference": None if self.difference is None else self.difference.to_dict(),
        }


@dataclass(frozen=True)
class DriftReport:
    """Drift of every feature; ``status`` is the worst over features with enough data
    (``insufficient`` when none has); ``drifted`` lists the moderate and major ones."""

    features: dict[str, FeatureDrift]
    status: str
    drifted: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``nan`` → ``None``)."""
        return {
            "status": self.status,
            "drifted": list(self.drifted),
            "features": {k: v.to_dict() for k, v in self.features.items()},
        }


# ----------------------------------------------------------------------- the statistics
def _smooth(counts: FloatArray, eps: float) -> FloatArray:
    total = counts.sum()
    share = counts / total if total > 0 else np.zeros_like(counts)
    out: FloatArray = (share + eps) / (1 + len(counts) * eps)
    return out


def psi_counts(reference: npt.ArrayLike, current: npt.ArrayLike, eps: float = EPS) -> float:
    """PSI between two count vectors over the same bins (smoothed shares, see above).

    >>> round(psi_counts([50, 50], [40, 60]), 4)
    0.0405
    """
    p = _smooth(np.asarray(reference, dtype=np.float64), eps)
    q = _smooth(np.asarray(current, dtype=np.float64), eps)
    return float(np.sum((q - p) * np.log(q / p)))


def js_counts(reference: npt.ArrayLike, current: npt.ArrayLike) -> float:
    """Jensen–Shannon distance (base 2) between two count vectors over the same bins."""
    p = np.asarray(reference, dtype=np.float64)
    q = np.asarray(current, dtype=np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        return math.nan
    return float(jensenshannon(p / p.sum(), q / q.sum(), base=2))


def quantile_edges(reference: npt.ArrayLike, bins: int = BINS) -> FloatArray:
    """Inner bin edges at the reference's quantiles (duplicates merged).

    >>> quantile_edges(np.arange(10.0), bins=4).tolist()
    [2.25, 4.5, 6.75]
    """
    x = np.asarray(reference, dtype=np.float64)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return np.empty(0)
    edges: FloatArray = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]))
    return edges


def _bin_counts(x: FloatArray, edges: FloatArray) -> FloatArray:
    """Counts per bin ``(-inf, e1), [e1, e2), ..., [ek, inf)`` and a last bin for ``nan``."""
    nan = np.isnan(x)
    idx = np.searchsorted(edges, x[~nan], side="right")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(np.float64)
    return np.append(counts, float(nan.sum()))


def psi(
    reference: npt.ArrayLike, current: npt.ArrayLike, *, bins: int = BINS, eps: float = EPS
) -> float:
    """PSI of a numeric feature, bins on the reference's quantiles."""
    r = np.asarray(reference, dtype=np.float64)
    c = np.asarray(current, dtype=np.float64)
    edges = quantile_edges(r, bins)
    return psi_counts(_bin_counts(r, edges), _bin_counts(c, edges), eps)


def jensen_shannon(reference: npt.ArrayLike, current: npt.ArrayLike) -> float:
    """Jensen–Shannon distance (base 2) between the category mixes of two samples.

    >>> jensen_shannon(["a", "b"] * 50, ["a", "b"] * 20)
    0.0
    >>> jensen_shannon(["a"] * 10, ["b"] * 10)
    1.0
    """
    r, c = _category_counts(_labels(np.asarray(reference)), _labels(np.asarray(current)))
    return js_counts(r, c)


def wasserstein(reference: npt.ArrayLike, current: npt.ArrayLike) -> float:
    """Wasserstein-1 distance in units of the reference's standard deviation (``nan``
    when the reference is constant or either sample is empty); missing values dropped."""
    r = np.asarray(reference, dtype=np.float64)
    c = np.asarray(current, dtype=np.float64)
    r, c = r[~np.isnan(r)], c[~np.isnan(c)]
    if r.size == 0 or c.size == 0:
        return math.nan
    sd = float(np.std(r))
    if sd == 0:
        return math.nan
    return float(wasserstein_distance(r, c)) / sd


def _labels(x: npt.NDArray[Any]) -> npt.NDArray[np.str_]:
    """Categories as strings; missing values → ``"(missing)"``."""
    if x.dtype.kind == "O":
        text = np.array([str(v) for v in x.tolist()], dtype=object)
    else:
        text = x.astype(str).astype(object)
    text[missing_mask(x)] = MISSING
    return text.astype(str)


def _category_counts(
    r: npt.NDArray[np.str_], c: npt.NDArray[np.str_]
) -> tuple[FloatArray, FloatArray]:
    cats = np.unique(np.concatenate([r, c]))
    count_r = np.bincount(np.searchsorted(cats, r), minlength=len(cats)).astype(np.float64)
    count_c = np.bincount(np.searchsorted(cats, c), minlength=len(cats)).astype(np.float64)
    return count_r, count_c


def _status(value: float, bands: tuple[float, float]) -> str:
    if math.isnan(value):
        return "insufficient"
    return "major" if value >= bands[1] else "moderate" if value >= bands[0] else "ok"


# ----------------------------------------------------------------------- the monitor
def _columns(data: Any) -> dict[str, npt.NDArray[Any]]:
    if isinstance(data, Mapping):
        return {str(k): np.asarray(v) for k, v in data.items()}
    if hasattr(data, "columns"):
        return {str(c): np.asarray(data[c]) for c in data.columns}
    a = np.asarray(data)
    if a.ndim == 1:
        return {"x": a}
    if a.ndim == 2:
        return {f"x{j}": a[:, j] for j in range(a.shape[1])}
    raise ValueError(f"expected a 1-D or 2-D array, a mapping or a DataFrame, got shape {a.shape}")


class DriftMonitor:
    """Fit once on the reference, then :meth:`report` each current window.

    Parameters
    ----------
    categorical : names of features to treat as categories; non-numeric (and boolean)
        features are categorical anyway.
    bins : quantile bins for numeric features.
    eps : smoothing of bin shares for PSI.
    min_n : fewest values in a sample for a decision.
    psi_bands, js_bands : (moderate, major) thresholds.

    Attributes (after :meth:`fit`): ``kinds_`` name → ``"numeric"`` / ``"categorical"``,
    ``edges_`` name → inner bin edges of numeric features, ``reference_`` the columns
    (numeric as float, categorical as category strings).
    """

    def __init__(
        self,
        *,
        categorical: Sequence[str] = (),
        bins: int = BINS,
        eps: float = EPS,
        min_n: int = MIN_N,
        psi_bands: tuple[float, float] = PSI_BANDS,
        js_bands: tuple[float, float] = JS_BANDS,
    ) -> None:
        self.categorical = categorical
        self.bins = bins
        self.eps = eps
        self.min_n = min_n
        self.psi_bands = psi_bands
        self.js_bands = js_bands

    def fit(self, reference: Any) -> DriftMonitor:
        """Learn the kinds, the bin edges and keep the reference sample.

        ``reference``: a mapping name → (n,) array, a DataFrame-like, or an (n, d) array
        (features ``x0``, ``x1``, ...; a 1-D array is the feature ``x``).
        """
        if self.bins < 2:
            raise ValueError(f"bins must be >= 2, got {self.bins}")
        cols = _columns(reference)
        unknown = set(self.categorical) - set(cols)
        if unknown:
            raise ValueError(f"categorical names unknown features {sorted(unknown)}")
        self.kinds_ = {
            k: "numeric" if v.dtype.kind in "iuf" and k not in self.categorical else "categorical"
            for k, v in cols.items()
        }
        self.reference_: dict[str, npt.NDArray[Any]] = {
            k: v.astype(np.float64) if self.kinds_[k] == "numeric" else _labels(v)
            for k, v in cols.items()
        }
        self.edges_ = {
            k: quantile_edges(v, self.bins)
            for k, v in self.reference_.items()
            if self.kinds_[k] == "numeric"
        }
        return self

    def report(self, current: Any) -> DriftReport:
        """Drift of ``current`` (same features as the reference) from the reference."""
        if not hasattr(self, "reference_"):
            raise RuntimeError("call fit(reference) first")
        cols = _columns(current)
        if set(cols) != set(self.reference_):
            raise ValueError(
                f"current has features {sorted(cols)}, reference {sorted(self.reference_)}"
            )
        features = {k: self._feature(k, cols[k]) for k in self.reference_}
        return summarise(features)

    def _feature(self, name: str, current: npt.NDArray[Any]) -> FeatureDrift:
        ref = self.reference_[name]
        if self.kinds_[name] == "numeric":
            c = np.asarray(current, dtype=np.float64)
            edges = self.edges_[name]
            cr, cc = _bin_counts(ref, edges), _bin_counts(c, edges)
            n_r, n_c = int(np.sum(~np.isnan(ref))), int(np.sum(~np.isnan(c)))
            return self._decide(name, "numeric", cr, cc, n_r, n_c, wasserstein(ref, c), "psi")
        cr, cc = _category_counts(ref, _labels(np.asarray(current)))
        return self._decide(name, "categorical", cr, cc, ref.size, current.size, math.nan, "js")

    def _decide(
        self,
        name: str,
        kind: str,
        count_r: FloatArray,
        count_c: FloatArray,
        n_r: int,
        n_c: int,
        w: float,
        decided_by: str,
        difference: Interval | None = None,
    ) -> FeatureDrift:
        p = psi_counts(count_r, count_c, self.eps)
        j = js_counts(count_r, count_c)
        occupied = int(np.sum((count_r + count_c) > 0))
        noise = (occupied - 1) * (1 / n_r + 1 / n_c) if min(n_r, n_c) > 0 else math.nan
        if min(n_r, n_c) < self.min_n:
            status, reason = "insufficient", f"n = {min(n_r, n_c)} < {self.min_n}"
        else:
            value, bands = (p, self.psi_bands) if decided_by == "psi" else (j, self.js_bands)
            status, reason = _status(value, bands), None
        return FeatureDrift(
            name, kind, n_r, n_c, p, j, w, noise, decided_by, status, reason, difference
        )


def summarise(features: Mapping[str, FeatureDrift]) -> DriftReport:
    """A :class:`DriftReport` over per-feature results (e.g. features, confidence, label
    mix and review rate checked separately)."""
    decided = [f.status for f in features.values() if f.status != "insufficient"]
    status = max(decided, key=STATUSES.index) if decided else "insufficient"
    drifted = tuple(k for k, f in features.items() if f.status in ("moderate", "major"))
    return DriftReport(dict(features), status, drifted)


def drift_report(reference: Any, current: Any, **options: Any) -> DriftReport:
    """``DriftMonitor(**options).fit(reference).report(current)``."""
    return DriftMonitor(**options).fit(reference).report(current)


def feature_drift(
    reference: npt.ArrayLike,
    current: npt.ArrayLike,
    *,
    name: str = "x",
    categorical: bool = False,
    **options: Any,
) -> FeatureDrift:
    """Drift of one sample: model confidence (numeric), predicted-label mix or a
    reviewer's answers (``categorical=True``).

    >>> feature_drift(["a"] * 300 + ["b"] * 300, ["a"] * 500 + ["b"] * 100,
    ...               name="label", categorical=True).status
    'major'
    """
    cat = [name] if categorical else []
    monitor = DriftMonitor(categorical=cat, **options).fit({name: np.asarray(reference)})
    return monitor.report({name: np.asarray(current)}).features[name]


def rate_drift(
    k_reference: int,
    n_reference: int,
    k_current: int,
    n_current: int,
    *,
    name: str = "rate",
    level: float = 0.95,
    **options: Any,
) -> FeatureDrift:
    """Drift of a rate (review rate, override rate) from counts: PSI over the two outcomes
    decides; ``difference`` is current − reference with Newcombe's interval.

    >>> d = rate_drift(300, 1000, 500, 1000, name="review_rate")
    >>> d.status, round(d.psi, 3), round(d.difference.estimate, 2)
    ('moderate', 0.169, 0.2)
    """
    monitor = DriftMonitor(**options)
    count_r = np.array([n_reference - k_reference, k_reference], dtype=np.float64)
    count_c = np.array([n_current - k_current, k_current], dtype=np.float64)
    diff = newcombe(k_current, n_current, k_reference, n_reference, level)
    return monitor._decide(
        name, "rate", count_r, count_c, n_reference, n_current, math.nan, "psi", diff
    )
