"""Learn-then-Test certification of an accept threshold (pure numpy / scipy).

The promise: with probability at least ``1 - delta`` over the calibration data, the error
rate among the items whose score is at or above the certified threshold is at most
``target_error``. Formally, with ``R(lam) = P(error | score >= lam)`` for a fresh item,
``P(R(threshold) > target_error) <= delta``.

The procedure (Angelopoulos, Bates, Candès, Jordan & Lei, "Learn then Test", 2021):

1. A grid of thresholds, ordered strict -> loose, is fixed before any label is seen
   (:func:`threshold_grid` is data-free; any user grid must be too).
2. For each grid point ``lam_j``: ``n_j`` calibration items are accepted, ``k_j`` of them
   wrong. Conditional on ``n_j`` the accepted items are an i.i.d. sample of the accepted
   population, so ``k_j ~ Binomial(n_j, R(lam_j))`` and the exact binomial tail
   (Clopper–Pearson) p-value ``p_j = P(Binomial(n_j, eps) <= k_j)`` is valid for
   ``H_j: R(lam_j) > eps``; ``p_j = 1`` when ``n_j = 0``.
3. Fixed-sequence testing: walk the grid strict -> loose, rejecting while ``p_j <= a``;
   stop at the first non-rejection. The certified threshold is the loosest rejected point.
   No multiplicity correction is needed: to reject any true null the walk must first
   reject the first true null in the order, which happens with probability ``<= a``
   (``a = delta`` for one walk; see below for several).

**Where a walk starts.** No p-value can reach level ``a`` unless
``n_j >= min_accepted(eps, a) = ceil(ln a / ln(1 - eps))`` (230 at eps = 1 %, a = 0.1),
so the strictest grid points (which may accept no item at all) are never tested: a walk
starts at the first grid point whose count reaches its start and skips the points before
it — they neither reject nor stop the walk. A single walk from the strictest testable
point is brittle (one wrong item among its first ~``min_accepted`` items ends it, and
real labels have a noise floor), so :func:`start_ladder` runs up to 3 walks, walk ``i``
starting at ``min_accepted(eps, delta / m) * 4**i`` accepted items, each at level
``delta / m`` (Bonferroni over walks); the certified threshold is the loosest point any
walk rejects. Starts depend on the counts ``n_j`` and the sample size only, never on
labels.

Validity. Without skipping, the fixed-sequence argument is exact for any error curve.
With a start ``J`` chosen by counts, assume ``R`` is non-increasing in the threshold
(loosening never lowers the error among accepted items — true of any score that ranks
items by their chance of being right). Then the true nulls are the points from some
``j0`` on. If ``J <= j0`` the walk must reject ``j0``, probability ``<= a``. If ``J > j0``,
``J`` is a null, and given the counts ``(n_{J-1}, n_J)`` — which alone decide that the walk
starts at ``J`` — its accepted items are two i.i.d. groups with error rates
``R(lam_{J-1}) > eps`` and ``r(slice) >= R(lam_{J-1})``, so their error count is
stochastically above ``Binomial(n_J, eps)`` and the test at ``J`` has size ``<= a``. Each
walk thus falsely certifies with probability ``<= delta / m``; all together ``<= delta``.
:attr:`Certificate.n_skipped` and :attr:`Certificate.starts` report what happened.

**Nothing certified.** The threshold is ``inf`` (no score reaches it), every item goes to
people, and :attr:`Certificate.labels_needed` says how many more error-free accepted labels
would let the same walk certify a threshold — never a silent fall-back to a naive one.

**Labels collected by the loop** (known inclusion probabilities) are handled by
:func:`certify_sampled`; one threshold per predicted class by :func:`certify_per_class`.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> scores = rng.uniform(0.5, 1.0, 4000)
>>> errors = rng.random(4000) < 0.4 * (1 - scores)        # R(lam) = 0.2 (1 - lam)
>>> cert = certify(scores, errors, target_error=0.05, delta=0.1)
>>> cert.certified, cert.threshold, cert.n_accepted, cert.errors, round(cert.p_value, 3)
(True, 0.747, 1994, 80, 0.022)
>>> few = certify(scores[:100], errors[:100], target_error=0.01, delta=0.1)
>>> few.certified, few.threshold, few.min_accepted, few.labels_needed
(False, inf, 230, 198)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import bdtr

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_PI_ONE = 1.0 - 1e-12
"""Inclusion probabilities at or above this count as 1 (a census)."""


def min_accepted(target_error: float, delta: float) -> int:
    """Fewest accepted items, all correct, that can certify ``target_error`` at ``delta``.

    ``ceil(ln delta / ln(1 - target_error))``: the smallest ``n`` with
    ``(1 - target_error) ** n <= delta``.

    >>> min_accepted(0.01, 0.1), min_accepted(0.02, 0.1), min_accepted(0.05, 0.1)
    (230, 114, 45)
    """
    _check_eps_delta(target_error, delta)
    n = math.ceil(math.log(delta) / math.log1p(-target_error))
    # guard the floating-point edge: make n the exact smallest integer
    while n > 1 and (1 - target_error) ** (n - 1) <= delta:
        n -= 1
    while (1 - target_error) ** n > delta:
        n += 1
    return n


def threshold_grid(linear: int = 1000, decades: int = 12, per_decade: int = 20) -> FloatArray:
    """The default grid of thresholds, strict -> loose, fixed before any data is seen.

    ``linear + 1`` evenly spaced points on [0, 1] plus ``1 - 10**-x`` for ``x`` from 1 to
    ``decades`` in ``per_decade`` steps per decade (over-confident models pile their
    scores just below 1). Descending, unique, starts at 1.0 and ends at 0.0.

    >>> g = threshold_grid()
    >>> bool(g[0] == 1.0), bool(g[-1] == 0.0), bool(np.all(np.diff(g) < 0)), len(g) > 1000
    (True, True, True, True)
    """
    lin = np.linspace(0.0, 1.0, linear + 1)
    tail = 1.0 - np.logspace(-float(decades), -1.0, decades * per_decade + 1)
    grid: FloatArray = np.unique(np.concatenate([lin, tail]))[::-1].copy()
    return grid


@dataclass(frozen=True)
class Certificate:
    """The outcome of certifying one threshold.

    Attributes
    ----------
    certified : whether a threshold was certified.
    threshold : the certified threshold; ``inf`` when nothing is certified.
    target_error, delta : the promise (for per-class certificates ``delta`` is the
        class's Šidák share of the overall delta).
    n_calibration : calibration items this test used (population items for sampled data).
    n_accepted : of those, the ones at or above ``threshold`` (0 when not certified).
    errors : errors among them (for sampled data: an upper confidence bound).
    p_value : the p-value at ``threshold`` (``nan`` when not certified).
    labels_needed : more accepted, error-free labels that would let the same procedure
        certify a threshold (0 when certified).
    min_accepted : ``ceil(ln level / ln(1 - target_error))``, the floor for any certificate.
    n_skipped : grid points before the first that could be tested at all.
    level : the level of each walk (``delta`` over the number of starts).
    starts : accepted counts at which the walks start (:func:`start_ladder`).
    method : ``"binomial"`` (i.i.d. labels) or ``"sampled"`` (known inclusion probabilities).
    label : the predicted class of a per-class certificate, else ``None``.
    """

    certified: bool
    threshold: float
    target_error: float
    delta: float
    n_calibration: int
    n_accepted: int
    errors: int
    p_value: float
    labels_needed: int
    min_accepted: int
    n_skipped: int
    level: float = math.nan
    starts: tuple[int, ...] = ()
    method: str = "binomial"
    label: int | None = None

    @property
    def error_rate(self) -> float:
        """``errors / n_accepted``; ``nan`` when nothing is accepted (undefined, not 0)."""
        return self.errors / self.n_accepted if self.n_accepted else math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``inf`` threshold and ``nan`` p-value become ``None``."""
        d = asdict(self)
        d["threshold"] = self.threshold if math.isfinite(self.threshold) else None
        d["p_value"] = self.p_value if math.isfinite(self.p_value) else None
        d["level"] = self.level if math.isfinite(self.level) else None
        d["starts"] = list(self.starts)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Certificate:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["threshold"] = math.inf if d.get("threshold") is None else float(d["threshold"])
        d["p_value"] = math.nan if d.get("p_value") is None else float(d["p_value"])
        d["level"] = math.nan if d.get("level") is None else float(d["level"])
        d["starts"] = tuple(int(x) for x in d.get("starts", ()))
        return cls(**d)


def _check_eps_delta(target_error: float, delta: float) -> None:
    if not 0.0 < target_error < 1.0:
        raise ValueError(f"target_error must be in (0, 1), got {target_error!r}")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")


def _check_grid(grid: npt.ArrayLike | None) -> FloatArray:
    if grid is None:
        return _DEFAULT_GRID
    g = np.asarray(grid, dtype=np.float64).ravel()
    if g.size == 0 or not np.all(np.isfinite(g)):
        raise ValueError("grid must be a non-empty array of finite thresholds")
    if np.any(np.diff(g) >= 0):
        raise ValueError("grid must be strictly decreasing (strict -> loose)")
    return g


def accepted_counts(
    scores: npt.ArrayLike, grid: npt.ArrayLike, *indicators: npt.ArrayLike
) -> tuple[IntArray, ...]:
    """Per grid point, how many items score at or above it, and how many of each indicator.

    Parameters
    ----------
    scores : (n,) float
    grid : (g,) float, any order
    *indicators : (n,) bool or int arrays

    Returns
    -------
    tuple of (g,) int arrays: the counts ``n_j``, then one sum per indicator.

    >>> accepted_counts([0.9, 0.6, 0.8], [1.0, 0.8, 0.5], [1, 0, 0])
    (array([0, 2, 3]), array([0, 1, 1]))
    """
    s = np.asarray(scores, dtype=np.float64)
    g = np.asarray(grid, dtype=np.float64)
    order = np.argsort(s, kind="stable")
    asc = s[order]
    n_at: IntArray = (s.size - np.searchsorted(asc, g, side="left")).astype(np.int64)
    out: list[IntArray] = [n_at]
    for ind in indicators:
        v = np.asarray(ind).astype(np.int64)[order][::-1]  # descending score order
        cum = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(v)])
        out.append(cum[n_at])
    return tuple(out)


def binomial_pvalues(errors: npt.ArrayLike, n: npt.ArrayLike, target_error: float) -> FloatArray:
    """Exact p-values ``P(Binomial(n, eps) <= errors)`` for ``H0: error rate > eps``.

    ``1`` where ``n == 0`` (nothing accepted, nothing shown).

    >>> binomial_pvalues([0, 0, 3], [0, 230, 100], 0.01).round(4).tolist()
    [1.0, 0.0991, 0.9816]
    """
    k = np.asarray(errors, dtype=np.int64)
    m = np.asarray(n, dtype=np.int64)
    p = np.ones(np.broadcast(k, m).shape, dtype=np.float64)
    has = np.broadcast_to(m > 0, p.shape)
    kb, mb = np.broadcast_to(k, p.shape), np.broadcast_to(m, p.shape)
    p[has] = bdtr(kb[has], mb[has], target_error)
    return p


MAX_STARTS = 3
"""Most walks of the start ladder (see :func:`start_ladder`)."""

LADDER_FACTOR = 4
"""Each start of the ladder needs this many times the accepted items of the one before."""


def start_ladder(
    n_total: int, target_error: float, delta: float, starts: int | None = None
) -> tuple[float, tuple[int, ...]]:
    """The walks' level and the accepted counts at which they start.

    ``m`` walks each at level ``delta / m`` (Bonferroni), walk ``i`` starting at the first
    grid point accepting ``>= min_accepted(eps, delta / m) * 4**i`` items. By default ``m``
    is the largest (at most :data:`MAX_STARTS`) whose last start needs at most half of the
    ``n_total`` items. Only counts decide, never labels.

    >>> start_ladder(200, 0.05, 0.1), start_ladder(5000, 0.01, 0.1)
    ((0.1, (45,)), (0.05, (299, 1196)))
    """
    if starts is None:
        m = 1
        while (m < MAX_STARTS and
               min_accepted(target_error, delta / (m + 1)) * LADDER_FACTOR**m <= n_total / 2):
            m += 1
    else:
        if starts < 1:
            raise ValueError(f"starts must be >= 1, got {starts}")
        m = starts
    level = delta / m
    base = min_accepted(target_error, level)
    return level, tuple(base * LADDER_FACTOR**i for i in range(m))


def _smallest_n(k: int, target_error: float, level: float) -> int:
    """Smallest ``N`` with ``P(Binomial(N, eps) <= k) <= level``."""
    lo, hi = k, max(k + 1, 2 * (k + 1))
    while bdtr(k, hi, target_error) > level:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if bdtr(k, mid, target_error) <= level:
            hi = mid
        else:
            lo = mid
    return hi


def _labels_needed(n_at: IntArray, k_at: IntArray, target_error: float, level: float,
                   ladder: Sequence[int]) -> int:
    """Fewest extra error-free items, accepted at every grid point, that make a walk certify.

    With ``m`` such items walk ``i`` first tests the first ``j`` with
    ``n_j + m >= ladder[i]`` and certifies iff that p-value is ``<= level``. Scanned over
    every ``m`` up to the amount that certifies the strictest grid point in walk 0.
    """
    m_max = max(_smallest_n(int(k_at[0]), target_error, level) - int(n_at[0]),
                ladder[0] - int(n_at[0]), 0)
    if m_max == 0:
        return 0
    m = np.arange(1, m_max + 1, dtype=np.int64)
    ok = np.zeros(m.size, dtype=bool)
    for start in ladder:
        j = np.searchsorted(n_at, start - m, side="left")  # n_at is non-decreasing
        j = np.minimum(j, n_at.size - 1)
        ok |= (n_at[j] + m >= start) & (bdtr(k_at[j], n_at[j] + m, target_error) <= level)
    return int(m[np.argmax(ok)]) if ok.any() else int(m_max)


def _walk(p: FloatArray, testable: BoolArray, level: float) -> int:
    """Fixed-sequence walk; the index of the loosest rejected point, or -1."""
    if not testable.any():
        return -1
    first = int(np.argmax(testable))
    fails = p[first:] > level
    stop = first + int(np.argmax(fails)) if fails.any() else p.size
    return stop - 1 if stop > first else -1


def _finish(
    grid: FloatArray, n_at: IntArray, k_at: IntArray, target_error: float, delta: float,
    n_cal: int, method: str, label: int | None, starts: int | None,
    best_case: IntArray | None = None,
) -> Certificate:
    level, ladder = start_ladder(n_cal, target_error, delta, starts)
    n_min = min_accepted(target_error, level)
    p = binomial_pvalues(k_at, n_at, target_error)
    # a point can be tested once its best case (no error seen) would pass: a function of
    # the counts alone (for plain labels, n_j >= n_min)
    if best_case is None:
        testable = n_at >= n_min
    else:
        testable = binomial_pvalues(best_case, n_at, target_error) <= level
    best = max(_walk(p, testable & (n_at >= start), level) for start in ladder)
    n_skipped = int(np.argmax(testable)) if testable.any() else int(grid.size)
    if best < 0:
        threshold, n_acc, k_acc, p_best = math.inf, 0, 0, math.nan
        needed = _labels_needed(n_at, k_at, target_error, level, ladder)
    else:
        threshold, n_acc, k_acc, p_best = (float(grid[best]), int(n_at[best]),
                                           int(k_at[best]), float(p[best]))
        needed = 0
    return Certificate(
        certified=best >= 0, threshold=threshold, target_error=target_error, delta=delta,
        n_calibration=n_cal, n_accepted=n_acc, errors=k_acc, p_value=p_best,
        labels_needed=needed, min_accepted=n_min, n_skipped=n_skipped, level=level,
        starts=ladder, method=method, label=label,
    )


def certify(
    scores: npt.ArrayLike,
    errors: npt.ArrayLike,
    *,
    target_error: float,
    delta: float,
    grid: npt.ArrayLike | None = None,
    starts: int | None = None,
    label: int | None = None,
) -> Certificate:
    """Certify the loosest threshold whose accepted error is ``<= target_error`` w.p. ``1 - delta``.

    Parameters
    ----------
    scores : (n,) float, the routing score of each labeled calibration item (i.i.d. with
        the items to be routed, and labeled regardless of its score).
    errors : (n,) bool, whether the model's label was wrong.
    target_error, delta : the promise.
    grid : (g,) strictly decreasing thresholds fixed before seeing labels; default
        :func:`threshold_grid`.
    starts : number of walks of the start ladder (default: from ``n``, see
        :func:`start_ladder`).
    label : recorded on the certificate (per-class use).

    Returns
    -------
    Certificate

    >>> certify([0.99] * 300, [False] * 300, target_error=0.01, delta=0.1).threshold
    0.0

    (Nothing scores below 0.99, so every looser threshold accepts the same items.)
    """
    _check_eps_delta(target_error, delta)
    g = _check_grid(grid)
    s = np.asarray(scores, dtype=np.float64).ravel()
    e = np.asarray(errors, dtype=bool).ravel()
    if s.shape != e.shape:
        raise ValueError(f"scores {s.shape} and errors {e.shape} differ in length")
    n_at, k_at = accepted_counts(s, g, e)
    return _finish(g, n_at, k_at, target_error, delta, int(s.size), "binomial", label, starts)


def _trials_upper(found: IntArray, cap: IntArray, prob: float, level: float) -> IntArray:
    """Largest ``K <= cap`` with ``P(Binomial(K, prob) <= found) > level`` (vectorised).

    An upper confidence bound, at level ``1 - level``, on the number ``K`` of events in a
    population of which each was observed independently with probability ``prob``.
    """
    lo = found.copy()
    hi = cap.copy()
    done = bdtr(found, hi, prob) > level
    res = np.where(done, hi, lo)
    active = ~done
    lo, hi = lo[active], hi[active]
    f = found[active]
    while lo.size and np.any(hi - lo > 1):
        mid = (lo + hi) // 2
        ok = bdtr(f, mid, prob) > level
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    res[active] = lo
    return res


def certify_sampled(
    scores: npt.ArrayLike,
    errors: npt.ArrayLike,
    inclusion_prob: npt.ArrayLike,
    *,
    selected: npt.ArrayLike | None = None,
    target_error: float,
    delta: float,
    delta_sampling: float = 0.5,
    grid: npt.ArrayLike | None = None,
    starts: int | None = None,
    random_state: int | np.random.Generator | None = None,
    label: int | None = None,
) -> Certificate:
    """Certify from the loop's own labels: a stream with known inclusion probabilities.

    Every routed item of a window is passed, labeled or not. Items with inclusion
    probability 1 (reviewed, escalated, stopped) form a census; the others (automatic
    decisions) were each selected for an audit independently with probability
    ``pi_i < 1``.

    Validity. The stream's items are i.i.d. and the inclusion probabilities depend only on
    each item and independent coins, so the LTT argument applies to the *whole* window
    (``n_j`` counts every item at or above ``lam_j``, labeled or not): its error count
    ``k_j`` is ``census_j + K_j``, where ``census_j`` is known exactly and ``K_j``, the
    errors among the sampled stratum's items at or above ``lam_j``, is not. Each such error
    was observed independently with probability ``pi`` (after thinning every selected item
    with probability ``pi_min / pi_i``, so ``pi = pi_min`` when the rates vary), so the
    observed count ``e_j ~ Binomial(K_j, pi)`` and ``U_j`` (largest ``K`` with
    ``P(Binomial(K, pi) <= e_j) > delta_s``) bounds ``K_j`` with probability
    ``>= 1 - delta_s``, ``delta_s = delta * delta_sampling``. The walk tests
    ``census_j + U_j`` at level ``delta - delta_s``. A false certificate needs either the
    bound to fail at the first tested null (a point fixed by the window, so probability
    ``<= delta_s`` over the audit coins) or the full-label test to reject it
    (``<= delta - delta_s``): total ``<= delta``. Labels still pending count as errors
    (conservative). With no sampled stratum this is :func:`certify` at full ``delta``.
    Walks start where the best case (no error seen) could pass — a function of the counts
    of each stratum, never of the labels; the start argument of the module docstring then
    holds under the same monotone error curve within each stratum.

    Parameters
    ----------
    scores : (N,) float, every routed item's score under the gate being calibrated.
    errors : (N,) bool, wrong label; only read where the item was selected and labeled.
    inclusion_prob : (N,) float in (0, 1], each item's chance of a human label.
    selected : (N,) bool, items chosen for a human label; default ``inclusion_prob == 1``
        or labeled. Pass it when some selected items have no label yet.
    target_error, delta, grid : as in :func:`certify`.
    delta_sampling : share of ``delta`` spent on bounding the unobserved errors.
    random_state : drives the thinning (only used when sampled rates differ).

    Other parameters: ``errors`` may be an int array with -1 for "no label", used to infer
    ``selected`` when it is not given.

    Returns
    -------
    Certificate with ``method="sampled"``; ``errors`` is the bound ``census + U``.

    >>> rng = np.random.default_rng(1)
    >>> s = rng.uniform(0.5, 1, 50_000); err = rng.random(50_000) < 0.2 * (1 - s)
    >>> pi = np.where(s < 0.9, 1.0, 0.1)                     # old threshold 0.9, audits 10%
    >>> chosen = (pi == 1) | (rng.random(50_000) < pi)
    >>> c = certify_sampled(s, np.where(chosen, err, -1), pi, selected=chosen,
    ...                     target_error=0.05, delta=0.1)
    >>> c.certified, c.method, c.threshold < 0.9
    (True, 'sampled', True)
    """
    _check_eps_delta(target_error, delta)
    if not 0.0 < delta_sampling < 1.0:
        raise ValueError(f"delta_sampling must be in (0, 1), got {delta_sampling!r}")
    g = _check_grid(grid)
    s = np.asarray(scores, dtype=np.float64).ravel()
    err_raw = np.asarray(errors).ravel()
    pi = np.asarray(inclusion_prob, dtype=np.float64).ravel()
    if not (s.shape == err_raw.shape == pi.shape):
        raise ValueError("scores, errors and inclusion_prob must have the same length")
    if np.any(~np.isfinite(pi)) or np.any(pi <= 0) or np.any(pi > 1):
        raise ValueError("inclusion probabilities must be in (0, 1]")
    if err_raw.dtype == np.bool_:
        labeled = np.ones(s.shape, dtype=bool)
        err = err_raw.astype(bool)
    else:
        f = err_raw.astype(np.float64)
        labeled = np.asarray(f >= 0, dtype=bool)  # -1 or nan: no label
        err = labeled & (np.where(labeled, f, 0.0) > 0.5)
    census = pi >= _PI_ONE
    if selected is None:
        sel = census | labeled
    else:
        sel = np.asarray(selected, dtype=bool).ravel()
        if sel.shape != s.shape:
            raise ValueError("selected must have the same length as scores")
        if np.any(census & ~sel):
            raise ValueError("an item with inclusion probability 1 must be selected")
    # pending selected items count as errors (conservative)
    bad = sel & (err | ~labeled)
    if census.all():
        n_at, k_at = accepted_counts(s, g, bad)
        return _finish(g, n_at, k_at, target_error, delta, int(s.size), "sampled", label,
                       starts)
    sampled = ~census
    pi_min = float(pi[sampled].min())
    keep = sel & sampled
    if np.any(pi[sampled] > pi_min * (1 + 1e-12)):
        rng = np.random.default_rng(random_state)
        keep &= rng.random(s.size) < pi_min / pi
    d_s = delta * delta_sampling
    n_at, k_census, n_samp, e_samp = accepted_counts(
        s, g, bad & census, sampled, keep & bad
    )
    upper = _trials_upper(e_samp, n_samp, pi_min, d_s)
    # best case: no error seen, in the census or the audits (depends on counts only)
    best_case = _trials_upper(np.zeros_like(n_samp), n_samp, pi_min, d_s)
    return _finish(g, n_at, k_census + upper, target_error, delta - d_s, int(s.size),
                   "sampled", label, starts, best_case)


def sidak_level(delta: float, n_groups: int) -> float:
    """Per-group level ``1 - (1 - delta) ** (1 / n_groups)`` for independent tests.

    >>> round(sidak_level(0.1, 10), 5)
    0.01048
    """
    return float(1.0 - (1.0 - delta) ** (1.0 / max(n_groups, 1)))


def certify_per_class(
    scores: npt.ArrayLike,
    predicted: npt.ArrayLike,
    errors: npt.ArrayLike,
    n_classes: int,
    *,
    target_error: float,
    delta: float,
    grid: npt.ArrayLike | None = None,
    inclusion_prob: npt.ArrayLike | None = None,
    selected: npt.ArrayLike | None = None,
    delta_sampling: float = 0.5,
    starts: int | None = None,
    random_state: int | np.random.Generator | None = None,
) -> tuple[Certificate, ...]:
    """One certificate per predicted class, all promises holding together w.p. ``1 - delta``.

    The promise becomes: for every class ``c``, the error among items predicted ``c`` and
    accepted is ``<= target_error`` — so a rare class's errors cannot hide behind a
    frequent one (and the overall auto-error is then ``<= target_error`` too).

    Level split (Šidák): each class is tested at ``1 - (1 - delta) ** (1 / n_classes)``.
    The classes' calibration items are disjoint and, given how many fall in each class,
    independent i.i.d. samples of their class's population, so the ``n_classes`` walks are
    independent and ``P(no false certificate) >= (1 - delta_c) ** n_classes = 1 - delta``.
    ``n_classes`` is the model's number of classes, fixed before the labels are seen (a
    class with no calibration item simply stays uncertified).

    Parameters
    ----------
    scores, errors : (n,) as in :func:`certify`.
    predicted : (n,) int, the predicted class of each item.
    n_classes : the number of classes ``k``.
    inclusion_prob, selected, delta_sampling, random_state : as in
        :func:`certify_sampled` (then ``errors`` may hold -1 for "no label").

    Returns
    -------
    tuple of ``n_classes`` certificates, ``label`` set to the class.

    >>> cs = certify_per_class([0.99] * 400, [0] * 300 + [1] * 100, [False] * 400, 2,
    ...                        target_error=0.02, delta=0.1)
    >>> [c.certified for c in cs], [c.labels_needed for c in cs]
    ([True, False], [0, 47])
    """
    _check_eps_delta(target_error, delta)
    s = np.asarray(scores, dtype=np.float64).ravel()
    pred = np.asarray(predicted).ravel().astype(np.int64)
    err = np.asarray(errors).ravel()
    if not (s.shape == pred.shape == err.shape):
        raise ValueError("scores, predicted and errors must have the same length")
    if pred.size and (pred.min() < 0 or pred.max() >= n_classes):
        raise ValueError(f"predicted classes must be in 0..{n_classes - 1}")
    level = sidak_level(delta, n_classes)
    pi = None if inclusion_prob is None else np.asarray(inclusion_prob, dtype=np.float64)
    sel = None if selected is None else np.asarray(selected, dtype=bool)
    rng = np.random.default_rng(random_state)
    out: list[Certificate] = []
    for c in range(n_classes):
        m = pred == c
        if pi is None:
            out.append(certify(s[m], err[m].astype(bool), target_error=target_error,
                               delta=level, grid=grid, starts=starts, label=c))
        else:
            out.append(certify_sampled(
                s[m], err[m], pi[m], selected=None if sel is None else sel[m],
                target_error=target_error, delta=level, delta_sampling=delta_sampling,
                grid=grid, starts=starts, random_state=rng, label=c,
            ))
    return tuple(out)


_DEFAULT_GRID: FloatArray = threshold_grid()
_DEFAULT_GRID.setflags(write=False)
