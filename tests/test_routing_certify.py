"""Learn-then-Test certification: exact p-values, the fixed-sequence walk, the guarantee."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from loopwise.routing import (
    binomial_pvalues,
    certify,
    certify_per_class,
    certify_sampled,
    min_accepted,
    threshold_grid,
)
from loopwise.routing.certify import accepted_counts, sidak_level


@given(st.floats(0.001, 0.5), st.floats(0.001, 0.5))
@settings(max_examples=200, deadline=None)
def test_min_accepted_is_the_smallest_n_that_can_certify(eps: float, delta: float) -> None:
    n = min_accepted(eps, delta)
    assert (1 - eps) ** n <= delta < (1 - eps) ** (n - 1)
    assert binomial_pvalues([0], [n], eps)[0] <= delta
    assert binomial_pvalues([0], [n - 1], eps)[0] > delta


def test_min_accepted_known_values() -> None:
    assert min_accepted(0.01, 0.1) == 230
    assert min_accepted(0.02, 0.1) == 114
    assert min_accepted(0.05, 0.1) == 45


def test_pvalues_are_the_exact_binomial_tail() -> None:
    k, n = np.array([0, 3, 10, 0]), np.array([100, 200, 300, 0])
    p = binomial_pvalues(k, n, 0.02)
    assert np.allclose(p[:3], binom.cdf(k[:3], n[:3], 0.02))
    assert p[3] == 1.0  # nothing accepted: nothing shown


def test_grid_is_fixed_descending_and_reaches_near_one() -> None:
    g = threshold_grid()
    assert g[0] == 1.0 and g[-1] == 0.0 and np.all(np.diff(g) < 0)
    assert np.any((g < 1) & (g > 1 - 1e-10))  # resolves over-confident scores


def test_accepted_counts_against_a_loop() -> None:
    rng = np.random.default_rng(3)
    s = rng.choice([0.2, 0.5, 0.9, 1.0], 300)
    e = rng.random(300) < 0.3
    grid = np.array([1.0, 0.95, 0.9, 0.5, 0.1])
    n_at, k_at = accepted_counts(s, grid, e)
    assert n_at.tolist() == [int((s >= g).sum()) for g in grid]
    assert k_at.tolist() == [int(e[s >= g].sum()) for g in grid]


def _walk_reference(scores: np.ndarray, errors: np.ndarray, eps: float, delta: float,
                    grid: np.ndarray) -> float:
    """The procedure written as plain loops, for comparison: m walks at level delta / m,
    walk i skipping points that accept fewer than min_accepted(eps, delta / m) * 4**i."""
    m = 1
    while m < 3 and min_accepted(eps, delta / (m + 1)) * 4**m <= scores.size / 2:
        m += 1
    level = delta / m
    best = math.inf
    for i in range(m):
        start = min_accepted(eps, level) * 4**i
        for lam in grid:
            acc = scores >= lam
            n, k = int(acc.sum()), int(errors[acc].sum())
            if n < start:
                continue
            if binom.cdf(k, n, eps) > level:
                break
            best = min(best, float(lam))
    return best


@given(st.integers(0, 2**32 - 1), st.integers(0, 1500), st.sampled_from([0.01, 0.02, 0.05]),
       st.floats(0.0, 2.0))
@settings(max_examples=60, deadline=None)
def test_certify_matches_the_reference_walk(seed: int, n: int, eps: float, slope: float) -> None:
    rng = np.random.default_rng(seed)
    s = np.round(rng.uniform(0.3, 1.0, n), 3)  # ties on purpose
    e = rng.random(n) < np.clip(slope * (1 - s) ** 2, 0, 1)
    grid = threshold_grid(linear=200, decades=6, per_decade=4)
    cert = certify(s, e, target_error=eps, delta=0.1, grid=grid)
    assert cert.threshold == _walk_reference(s, e, eps, 0.1, grid)
    if cert.certified:
        acc = s >= cert.threshold
        assert cert.n_accepted == int(acc.sum()) and cert.errors == int(e[acc].sum())
        assert cert.p_value <= 0.1 and cert.labels_needed == 0
    else:
        assert cert.n_accepted == 0 and math.isnan(cert.p_value) and cert.labels_needed > 0


def test_grid_points_accepting_nothing_do_not_stop_the_walk() -> None:
    """The strictest grid points accept no item; the walk still certifies below them."""
    s = np.full(1000, 0.7)
    cert = certify(s, np.zeros(1000, dtype=bool), target_error=0.01, delta=0.1)
    assert cert.certified and cert.n_skipped > 0
    assert cert.n_accepted == 1000


def test_empty_calibration_is_uncertified_with_the_floor_as_labels_needed() -> None:
    cert = certify([], [], target_error=0.01, delta=0.1)
    assert not cert.certified and cert.threshold == math.inf
    assert cert.labels_needed == 230 == cert.min_accepted
    assert math.isnan(cert.error_rate)


@given(st.integers(0, 2**32 - 1), st.integers(0, 400), st.sampled_from([0.01, 0.02, 0.05]))
@settings(max_examples=60, deadline=None)
def test_labels_needed_is_exact(seed: int, n: int, eps: float) -> None:
    """Adding ``labels_needed`` error-free items at score 1 certifies; one fewer does not."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(0.5, 1.0, n)
    e = rng.random(n) < 0.3 * (1 - s)
    grid = threshold_grid(linear=100, decades=4, per_decade=2)
    cert = certify(s, e, target_error=eps, delta=0.1, grid=grid)
    if cert.certified:
        return
    m, walks = cert.labels_needed, len(cert.starts)  # same walks as more items come
    more = certify(np.r_[s, np.ones(m)], np.r_[e, np.zeros(m, dtype=bool)],
                   target_error=eps, delta=0.1, grid=grid, starts=walks)
    assert more.certified
    fewer = certify(np.r_[s, np.ones(m - 1)], np.r_[e, np.zeros(m - 1, dtype=bool)],
                    target_error=eps, delta=0.1, grid=grid, starts=walks)
    assert not fewer.certified


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="target_error"):
        certify([0.9], [False], target_error=0.0, delta=0.1)
    with pytest.raises(ValueError, match="delta"):
        certify([0.9], [False], target_error=0.1, delta=1.0)
    with pytest.raises(ValueError, match="strictly decreasing"):
        certify([0.9], [False], target_error=0.1, delta=0.1, grid=[0.5, 0.9])
    with pytest.raises(ValueError, match="differ"):
        certify([0.9, 0.8], [False], target_error=0.1, delta=0.1)
    with pytest.raises(ValueError, match="inclusion"):
        certify_sampled([0.9], [0], [0.0], target_error=0.1, delta=0.1)


def test_certificate_round_trips_through_json_form() -> None:
    from loopwise.routing import Certificate

    for cert in (certify([0.9] * 100, [False] * 100, target_error=0.05, delta=0.1),
                 certify([], [], target_error=0.05, delta=0.1)):
        d = cert.to_dict()
        assert d["threshold"] is None or isinstance(d["threshold"], float)
        back = Certificate.from_dict(d)
        assert back.threshold == cert.threshold and back.certified == cert.certified


# ----------------------------------------------------------------- the guarantee
#
# Synthetic calibration data with a known error curve: scores s ~ U(0.5, 1) and
# P(error | s) = c (1 - s) (c = 1: calibrated binary model; c = 0.3: a better ranking),
# so the error among accepted items is
# R(lam) = c (1 - max(lam, 0.5)) / 2. A certificate is a violation when R(threshold) > eps.
# The promise: P(violation) <= delta. Over S independent seeds the violation count is
# Binomial(S, p) with p <= delta; we allow delta + 3 sd (sd = sqrt(delta (1 - delta) / S)),
# which a valid procedure exceeds with probability < 0.2 %.

def _true_risk(lam: float, c: float) -> float:
    return c * (1 - max(min(lam, 1.0), 0.5)) / 2


def _tolerance(delta: float, seeds: int) -> float:
    return delta + 3 * math.sqrt(delta * (1 - delta) / seeds)


@pytest.mark.parametrize(("c", "eps", "n"), [(0.3, 0.05, 1500), (0.5, 0.05, 1500),
                                             (0.1, 0.02, 1500)],
                         ids=["5pct-wide", "5pct-narrow", "2pct"])
def test_the_guarantee_holds_over_many_seeds(c: float, eps: float, n: int) -> None:
    """Share of seeds whose certified threshold has true accepted error > eps is <= delta
    (within 3 binomial sd), while the naive empirical rule breaks it far more often."""
    delta, seeds = 0.1, 400
    grid = threshold_grid(linear=500, decades=4, per_decade=5)
    violations = naive_violations = certified = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        s = rng.uniform(0.5, 1.0, n)
        e = rng.random(n) < c * (1 - s)
        cert = certify(s, e, target_error=eps, delta=delta, grid=grid)
        certified += cert.certified
        violations += cert.certified and _true_risk(cert.threshold, c) > eps
        # naive: the loosest threshold whose *empirical* accepted error is <= eps
        n_at, k_at = accepted_counts(s, grid, e)
        ok = (n_at > 0) & (k_at <= eps * n_at)
        lam = grid[np.flatnonzero(ok)[-1]] if ok.any() else math.inf
        naive_violations += _true_risk(lam, c) > eps
    assert violations / seeds <= _tolerance(delta, seeds)
    assert certified / seeds > 0.75  # the test is not vacuous: it certifies
    assert naive_violations / seeds > 0.3  # and it can tell a broken procedure


def test_the_guarantee_holds_when_calibrating_on_the_loops_own_labels() -> None:
    """Labels from the loop: every item below an old threshold reviewed, 5% audits above.

    Same known curve as above (c = 0.3, eps = 0.05); 300 seeds of a 20,000-item window
    whose old threshold was 0.8.
    """
    delta, eps, seeds, n = 0.1, 0.05, 300, 20_000
    grid = threshold_grid(linear=500, decades=4, per_decade=5)
    violations = certified = 0
    for seed in range(seeds):
        rng = np.random.default_rng(10_000 + seed)
        s = rng.uniform(0.5, 1.0, n)
        e = rng.random(n) < 0.3 * (1 - s)
        pi = np.where(s < 0.8, 1.0, 0.05)
        chosen = rng.random(n) < pi
        errors = np.where(chosen, e, -1)
        cert = certify_sampled(s, errors, pi, selected=chosen, target_error=eps,
                               delta=delta, grid=grid, random_state=seed)
        certified += cert.certified
        violations += cert.certified and _true_risk(cert.threshold, 0.3) > eps
    assert violations / seeds <= _tolerance(delta, seeds)
    assert certified / seeds > 0.5  # 400 audits above the old threshold bound what's possible


def test_sampled_with_varying_rates_thins_and_stays_valid() -> None:
    delta, eps, seeds, n = 0.1, 0.05, 200, 20_000
    grid = threshold_grid(linear=300, decades=3, per_decade=3)
    violations = 0
    for seed in range(seeds):
        rng = np.random.default_rng(50_000 + seed)
        s = rng.uniform(0.5, 1.0, n)
        e = rng.random(n) < 0.3 * (1 - s)
        pi = np.where(s < 0.8, 1.0, rng.choice([0.05, 0.2], n))
        chosen = rng.random(n) < pi
        cert = certify_sampled(s, np.where(chosen, e, -1), pi, selected=chosen,
                               target_error=eps, delta=delta, grid=grid, random_state=seed)
        violations += cert.certified and _true_risk(cert.threshold, 0.3) > eps
    assert violations / seeds <= _tolerance(delta, seeds)


def test_pending_labels_count_as_errors() -> None:
    s = np.full(2000, 0.95)
    pi = np.ones(2000)
    done = certify_sampled(s, np.zeros(2000, dtype=int), pi, target_error=0.02, delta=0.1)
    pending = np.zeros(2000, dtype=int)
    pending[:200] = -1
    waiting = certify_sampled(s, pending, pi, target_error=0.02, delta=0.1)
    assert done.certified and not waiting.certified


def test_census_only_equals_plain_certification() -> None:
    rng = np.random.default_rng(0)
    s = rng.uniform(0.5, 1, 3000)
    e = rng.random(3000) < 0.5 * (1 - s)
    a = certify(s, e, target_error=0.03, delta=0.1)
    b = certify_sampled(s, e.astype(int), np.ones(3000), target_error=0.03, delta=0.1)
    assert a.threshold == b.threshold and a.errors == b.errors


def test_per_class_guarantee_holds_simultaneously() -> None:
    """Three classes with different error curves and sizes; a seed violates when any class's
    certified threshold has true error > eps. Share <= delta within 3 sd."""
    delta, eps, seeds = 0.1, 0.05, 300
    grid = threshold_grid(linear=300, decades=3, per_decade=3)
    slopes, sizes = (0.2, 0.3, 0.5), (3000, 1500, 600)
    violations = 0
    for seed in range(seeds):
        rng = np.random.default_rng(90_000 + seed)
        s = rng.uniform(0.5, 1.0, sum(sizes))
        pred = np.repeat(np.arange(3), sizes)
        e = rng.random(s.size) < np.array(slopes)[pred] * (1 - s)
        certs = certify_per_class(s, pred, e, 3, target_error=eps, delta=delta, grid=grid)
        violations += any(c.certified and _true_risk(c.threshold, slopes[c.label or 0]) > eps
                          for c in certs)
        assert all(c.delta == pytest.approx(sidak_level(delta, 3)) for c in certs)
    assert violations / seeds <= _tolerance(delta, seeds)


def test_per_class_keeps_a_rare_bad_class_from_hiding() -> None:
    """A frequent good class and a rare bad one: one global threshold lets the rare class's
    errors through; per class, the rare class is held to eps on its own."""
    rng = np.random.default_rng(1)
    n_good, n_bad = 20_000, 1_000
    s = np.r_[rng.uniform(0.9, 1.0, n_good), rng.uniform(0.9, 1.0, n_bad)]
    pred = np.r_[np.zeros(n_good, int), np.ones(n_bad, int)]
    e = np.r_[rng.random(n_good) < 0.002, rng.random(n_bad) < 0.15]
    glob = certify(s, e, target_error=0.02, delta=0.1)
    assert glob.certified and e[(pred == 1) & (s >= glob.threshold)].mean() > 0.1
    good, bad = certify_per_class(s, pred, e, 2, target_error=0.02, delta=0.1)
    assert good.certified
    assert not bad.certified or e[(pred == 1) & (s >= bad.threshold)].mean() <= 0.05
