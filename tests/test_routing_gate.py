"""The gate, version 1: threshold routing, random audits, the stop switch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from loopwise.routing import Gate, proba_problems


def _proba(raw: np.ndarray) -> np.ndarray:
    raw = np.abs(raw) + 1e-9
    return raw / raw.sum(axis=1, keepdims=True)


proba_arrays = st.integers(2, 6).flatmap(
    lambda k: arrays(np.float64, st.tuples(st.integers(1, 40), st.just(k)),
                     elements=st.floats(0, 1, allow_nan=False)).map(_proba)
)


@given(proba_arrays, st.floats(0, 1), st.floats(0, 1), st.integers(0, 2**32 - 1))
@settings(max_examples=200, deadline=None)
def test_more_confidence_never_moves_an_item_from_auto_to_people(
    proba: np.ndarray, threshold: float, boost: float, seed: int
) -> None:
    """Raising an item's top probability never takes it out of ``auto``."""
    gate = Gate(threshold, audit_rate=0.0)
    before = gate.route(proba, random_state=seed)
    top = proba.argmax(axis=1)
    higher = proba * (1 - boost)
    higher[np.arange(len(top)), top] += boost
    after = gate.route(higher, random_state=seed)
    assert not np.any((before.route == "auto") & (after.route != "auto"))
    assert np.all(after.confidence >= before.confidence - 1e-12)


@given(proba_arrays, st.floats(0, 1), st.floats(0, 1))
@settings(max_examples=100, deadline=None)
def test_stop_switch_sends_everything_to_people(proba: np.ndarray, threshold: float,
                                                audit: float) -> None:
    batch = Gate(threshold, audit_rate=audit, stopped=True).route(proba, random_state=0)
    assert set(batch.route) == {"review"}
    assert set(batch.reason) == {"stopped"}
    assert not batch.audited.any()
    assert np.all(batch.inclusion_prob == 1.0)


@given(proba_arrays, st.floats(0, 1))
@settings(max_examples=100, deadline=None)
def test_routes_follow_the_threshold_and_reasons_match(proba: np.ndarray,
                                                       threshold: float) -> None:
    batch = Gate(threshold, audit_rate=0.3).route(proba, random_state=1)
    conf = proba.max(axis=1)
    assert np.array_equal(batch.route == "auto", conf >= threshold)
    assert np.array_equal(batch.label, proba.argmax(axis=1))
    assert not np.any(batch.audited & (batch.route != "auto"))
    assert np.all(batch.reason[batch.audited] == "audit_sample")
    plain_auto = (batch.route == "auto") & ~batch.audited
    assert np.all(batch.reason[plain_auto] == "confident")
    assert np.all(batch.reason[batch.route == "review"] == "uncertain")
    assert np.all(batch.inclusion_prob[batch.route == "review"] == 1.0)
    assert np.all(batch.inclusion_prob[batch.route == "auto"] == 0.3)


def test_audit_sampling_rate_is_what_the_policy_says() -> None:
    """Over 200 seeds of 2,000 automatic items, the audited share centres on audit_rate.

    Each seed's share is binomial(2000, 0.05)/2000 (sd 0.0049); the mean over 200 seeds has
    sd 0.00034, so a tolerance of 0.0015 is more than 4 sd; and about 95% of seeds must
    fall inside their own 95% binomial band.
    """
    from scipy.stats import binom

    rate, n = 0.05, 2000
    proba = np.tile([[0.99, 0.01]], (n, 1))
    gate = Gate(0.9, audit_rate=rate)
    shares = np.array([gate.route(proba, random_state=s).audited.mean() for s in range(200)])
    assert abs(shares.mean() - rate) < 0.0015
    lo, hi = binom.ppf(0.025, n, rate) / n, binom.ppf(0.975, n, rate) / n
    inside = np.mean((shares >= lo) & (shares <= hi))
    assert inside > 0.9


def test_the_same_seed_routes_the_same_way() -> None:
    proba = _proba(np.random.default_rng(0).random((500, 3)))
    a = Gate(0.5, audit_rate=0.5).route(proba, random_state=7)
    b = Gate(0.5, audit_rate=0.5).route(proba, random_state=7)
    assert np.array_equal(a.audited, b.audited)


def test_invalid_probabilities_are_named() -> None:
    with pytest.raises(ValueError, match="row 1"):
        Gate().route(np.array([[0.5, 0.5], [0.9, 0.2]]))
    with pytest.raises(ValueError, match="threshold"):
        Gate(1.5).route(np.array([[0.5, 0.5]]))
    with pytest.raises(ValueError, match="2-D"):
        Gate().route(np.array([0.5, 0.5]))


def test_empty_batch() -> None:
    batch = Gate().route(np.zeros((0, 3)))
    assert len(batch) == 0


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ([0.5, 0.5 + 5e-7], None),
        ([0.5, 0.5 + 2e-6], "sum to"),
        ([-0.1, 1.1], ">= 0"),
        ([float("nan"), 1.0], "finite"),
        ([float("inf"), 0.0], "finite"),
    ],
)
def test_proba_problems(row: list[float], message: str | None) -> None:
    problems = proba_problems([row], 2)
    if message is None:
        assert problems == []
    else:
        assert problems[0][0] == 0 and message in problems[0][1]


def test_proba_problems_wrong_width() -> None:
    assert "shape" in proba_problems([[0.2, 0.3, 0.5]], 2)[0][1]
