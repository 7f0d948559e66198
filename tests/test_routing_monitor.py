"""Audit monitoring: unbiased IPW estimate, exact interval coverage, the broken promise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loopwise.routing import audit_error, clopper_pearson, promise_broken


def _window(rng: np.random.Generator, n: int, rate: float, pi: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    wrong = rng.random(n) < rate
    audited = rng.random(n) < pi
    return np.where(audited, wrong.astype(int), -1), audited


@pytest.mark.parametrize("varying", [False, True], ids=["one-rate", "varying-rates"])
def test_estimate_is_unbiased_and_interval_covers(varying: bool) -> None:
    """2,000 windows of 5,000 auto decisions, true error 3%, audits 2% (or 1%/5% mixed).

    Horvitz–Thompson is exactly unbiased: the mean of 2,000 estimates has sd about
    sqrt(0.03 / (5000 * 0.02) / 2000) = 0.0004, so 0.0015 is over 3.5 sd. The 95% interval
    must cover the true rate in >= 95% of windows, less 3 binomial sd (0.015)."""
    rng = np.random.default_rng(0)
    n, rate, windows = 5000, 0.03, 2000
    pi = rng.choice([0.01, 0.05], n) if varying else np.full(n, 0.02)
    est, cover = [], 0
    for _ in range(windows):
        errors, audited = _window(rng, n, rate, pi)
        e = audit_error(errors, audited, pi)
        est.append(e.estimate)
        cover += e.low <= rate <= e.high
    assert abs(np.mean(est) - rate) < 0.0015
    assert cover / windows >= 0.95 - 0.015


def test_ht_estimate_is_unbiased_for_the_window_count() -> None:
    """Conditional on the window's errors, E[estimate] = errors / n over the audit coins."""
    rng = np.random.default_rng(1)
    n = 2000
    wrong = rng.random(n) < 0.05
    pi = np.where(rng.random(n) < 0.5, 0.02, 0.1)
    est = [audit_error(np.where(a, wrong.astype(int), -1), a, pi).estimate
           for a in (rng.random((3000, n)) < pi)]
    sd = np.std(est) / math.sqrt(len(est))
    assert abs(np.mean(est) - wrong.mean()) < 4 * sd


def test_pending_audits_widen_the_interval() -> None:
    n = 10_000
    pi = np.full(n, 0.02)
    audited = np.zeros(n, dtype=bool)
    audited[:200] = True
    done = np.zeros(n, dtype=int)
    done[:6] = 1
    pend = done.copy()
    pend[6:46] = -1
    a, b = audit_error(done, audited, pi), audit_error(pend, audited, pi)
    assert b.low <= a.low and b.high > a.high
    assert b.n_labeled == 160 and b.n_audited == 200


def test_promise_broken_when_lower_bound_exceeds_target() -> None:
    n = 10_000
    pi = np.full(n, 0.05)
    audited = np.zeros(n, dtype=bool)
    audited[:500] = True
    errors = np.zeros(n, dtype=int)
    errors[:40] = 1  # 8% of audits wrong
    est = audit_error(errors, audited, pi)
    assert promise_broken(est, 0.02) and not promise_broken(est, 0.1)
    ok = audit_error(np.zeros(n, dtype=int), audited, pi)
    assert not promise_broken(ok, 0.02) and ok.low == 0.0


def test_no_automatic_decision_is_undefined_not_zero() -> None:
    est = audit_error([], [], [])
    assert math.isnan(est.estimate) and math.isnan(est.low)
    assert not promise_broken(est, 0.02)
    assert est.to_dict()["estimate"] is None


def test_clopper_pearson_edges_and_errors() -> None:
    assert clopper_pearson(0, 10)[0] == 0.0 and clopper_pearson(10, 10)[1] == 1.0
    assert all(math.isnan(x) for x in clopper_pearson(0, 0))
    with pytest.raises(ValueError, match="inclusion"):
        audit_error([0], [True], [0.0])
    with pytest.raises(ValueError, match="same length"):
        audit_error([0, 1], [True], [0.5])
