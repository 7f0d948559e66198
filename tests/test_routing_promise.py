"""The gate with a promise: calibration, uncertified routing, precedence, state, temperature."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from loopwise.routing import (
    Gate,
    NoveltyDetector,
    apply_temperature,
    fit_temperature,
    max_confidence,
    min_accepted,
)


def _proba(raw: np.ndarray) -> np.ndarray:
    raw = np.abs(raw) + 1e-9
    return raw / raw.sum(axis=1, keepdims=True)


proba_arrays = st.integers(2, 5).flatmap(
    lambda k: arrays(np.float64, st.tuples(st.integers(1, 40), st.just(k)),
                     elements=st.floats(0, 1, allow_nan=False)).map(_proba)
)


def _calibration(seed: int, n: int = 4000, k: int = 3, sharpen: float = 1.0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """A k-class model whose labels follow ``true`` and whose output is ``true`` sharpened."""
    rng = np.random.default_rng(seed)
    true = rng.dirichlet(np.full(k, 0.4), n)
    y = (rng.random(n)[:, None] > np.cumsum(true, axis=1)).sum(axis=1)
    return apply_temperature(true, 1 / sharpen), np.minimum(y, k - 1)


GATES = {
    "global": lambda: Gate(target_error=0.1, delta=0.1, audit_rate=0.0),
    "per_class": lambda: Gate(target_error=0.1, delta=0.1, audit_rate=0.0, per_class=True),
    "temperature": lambda: Gate(target_error=0.1, delta=0.1, audit_rate=0.0, temperature=1.7),
}
CALIBRATED = {name: make().calibrate(*_calibration(0, sharpen=2.0))
              for name, make in GATES.items()}


@pytest.mark.parametrize("name", sorted(CALIBRATED))
@given(proba=proba_arrays, boost=st.floats(0, 1))
@settings(max_examples=100, deadline=None)
def test_more_confidence_never_leaves_auto_under_a_calibrated_gate(
    name: str, proba: np.ndarray, boost: float
) -> None:
    gate = CALIBRATED[name]
    k = proba.shape[1]
    if k != 3:
        proba = _proba(np.c_[proba, np.ones((len(proba), 3))][:, :3])
    before = gate.route(proba)
    top = proba.argmax(axis=1)
    higher = proba * (1 - boost)
    higher[np.arange(len(top)), top] += boost
    after = gate.route(higher)
    assert not np.any((before.route == "auto") & (after.route != "auto"))


def test_the_calibrated_gates_do_automate() -> None:
    """(So the property above is not vacuous.)"""
    for gate in CALIBRATED.values():
        assert gate.certified_
        proba, _ = _calibration(1, sharpen=2.0)
        assert (gate.route(proba).route == "auto").mean() > 0.2


@given(proba_arrays, st.sampled_from([0.01, 0.02, 0.05]), st.booleans())
@settings(max_examples=100, deadline=None)
def test_uncertified_means_no_auto(proba: np.ndarray, eps: float, per_class: bool) -> None:
    """Before calibration and after one that certifies nothing, nothing is automatic."""
    fresh = Gate(target_error=eps, per_class=per_class, audit_rate=0.5)
    k = proba.shape[1]
    few = np.tile(np.eye(k)[:1] * 0.999 + 0.001 / k, (20, 1))
    failed = Gate(target_error=eps, per_class=per_class, audit_rate=0.5).calibrate(
        few / few.sum(axis=1, keepdims=True), np.zeros(20, dtype=int))
    for gate in (fresh, failed):
        b = gate.route(proba, random_state=0)
        assert set(b.route) == {"review"} and set(b.reason) == {"uncertified"}
        assert not b.audited.any() and np.all(b.inclusion_prob == 1.0)
        assert gate.labels_needed_ > 0
    assert fresh.labels_needed_ == min_accepted(eps, 0.1)
    assert failed.threshold_ is not None


def test_per_class_uncertified_class_goes_to_review_others_automate() -> None:
    rng = np.random.default_rng(0)
    n0, n1 = 3000, 30
    proba = np.r_[np.tile([0.99, 0.01], (n0, 1)), np.tile([0.01, 0.99], (n1, 1))]
    y = np.r_[np.zeros(n0, int), np.ones(n1, int)]
    gate = Gate(target_error=0.02, per_class=True, audit_rate=0.0).calibrate(proba, y)
    th = gate.threshold_
    assert isinstance(th, np.ndarray) and math.isfinite(th[0]) and math.isinf(th[1])
    b = gate.route(np.array([[0.995, 0.005], [0.005, 0.995]]), random_state=rng)
    assert b.route.tolist() == ["auto", "review"]
    assert b.reason.tolist() == ["confident", "uncertified"]
    assert gate.labels_needed_ == gate.certificates_[1].labels_needed > 0


def test_never_a_silent_naive_threshold() -> None:
    """A promise gate ignores ``threshold``: no labels, no automation."""
    gate = Gate(0.5, target_error=0.05)
    assert gate.threshold_ == math.inf
    assert set(gate.route(np.array([[0.99, 0.01]])).route) == {"review"}


def test_calibrate_needs_a_promise_and_labels() -> None:
    proba, y = _calibration(0, n=100)
    with pytest.raises(ValueError, match="promise"):
        Gate(0.9).calibrate(proba, y)
    y_missing = y.copy()
    y_missing[0] = -1
    with pytest.raises(ValueError, match="inclusion_prob"):
        Gate(target_error=0.05).calibrate(proba, y_missing)
    with pytest.raises(ValueError, match="classes"):
        Gate(target_error=0.05).calibrate(proba, y + 5)


def test_calibrating_on_the_loops_stream_with_inclusion_probabilities() -> None:
    proba, y = _calibration(2, n=30_000, sharpen=1.0)
    _, conf = max_confidence(proba)
    rng = np.random.default_rng(0)
    pi = np.where(conf < 0.9, 1.0, 0.1)
    chosen = rng.random(pi.size) < pi
    y_seen = np.where(chosen, y, -1)
    gate = Gate(target_error=0.05, audit_rate=0.1).calibrate(
        proba, y_seen, inclusion_prob=pi, selected=chosen, random_state=1)
    cert = gate.certificates_[0]
    assert cert.method == "sampled" and cert.certified
    assert cert.n_calibration == 30_000  # every item of the window counts in n
    acc = conf >= cert.threshold
    assert (proba.argmax(1)[acc] != y[acc]).mean() <= 0.05 + 0.01


def test_state_round_trip_routes_the_same() -> None:
    for gate in CALIBRATED.values():
        import json

        state = json.loads(json.dumps(gate.state()))
        again = Gate.from_state(state, audit_rate=0.3)
        proba, _ = _calibration(5, n=500, sharpen=2.0)
        a, b = gate.route(proba, random_state=1), again.route(proba, random_state=1)
        assert np.array_equal(a.route == "auto", b.route == "auto")
        assert np.array_equal(a.confidence, b.confidence)


def test_temperature_is_certified_and_routed_on() -> None:
    proba, y = _calibration(3, n=6000, sharpen=3.0)  # over-confident
    gate = Gate(target_error=0.05, audit_rate=0.0).calibrate(
        proba, y, temperature_fraction=0.3, random_state=0)
    assert gate.temperature is not None and gate.temperature > 2
    b = gate.route(proba[:50])
    assert np.allclose(b.confidence, apply_temperature(proba[:50], gate.temperature).max(1))
    # the certificate was computed on the 70% not used for the temperature
    assert 3600 < gate.certificates_[0].n_calibration < 4800


@given(proba_arrays, st.floats(0.2, 5.0))
@settings(max_examples=100, deadline=None)
def test_max_confidence_agrees_with_apply_temperature(proba: np.ndarray, t: float) -> None:
    label, conf = max_confidence(proba, t)
    q = apply_temperature(proba, t)
    assert np.array_equal(label, proba.argmax(1))
    assert np.allclose(conf, q.max(1), rtol=1e-9, atol=1e-12)
    assert np.array_equal(q.argmax(1), proba.argmax(1))


def test_fit_temperature_recovers_the_sharpening() -> None:
    proba, y = _calibration(4, n=20_000, sharpen=2.5)
    assert 2.2 < fit_temperature(proba, y) < 2.8
    calibrated, y2 = _calibration(6, n=20_000)
    assert 0.9 < fit_temperature(calibrated, y2) < 1.1


# ---------------------------------------------------------------- precedence

RULES = [
    {"name": "big", "if": {"meta.amount": {">": 1000}}, "route": "expert"},
    {"name": "vip", "if": {"meta.tier": {"==": "vip"}}, "route": "review"},
    {"name": "weak", "if": {"prediction.confidence": {"<": 0.6}}, "route": "review"},
]


def _novelty() -> NoveltyDetector:
    rng = np.random.default_rng(0)
    return NoveltyDetector(alpha=0.05).fit(rng.normal(size=(500, 2))).calibrate(
        rng.normal(size=(500, 2)))


def test_route_precedence() -> None:
    gate = Gate(0.9, rules=RULES, novelty=_novelty(), audit_rate=0.0)
    proba = np.array([[0.99, 0.01]] * 6 + [[0.55, 0.45]])
    X = np.array([[0, 0], [0, 0], [9, 9], [9, 9], [0, 0], [0, 0], [0, 0]], dtype=float)
    meta = [{}, {"amount": 5000, "tier": "vip"}, {"tier": "vip"}, {"amount": 5000},
            {"tier": "vip"}, {"tier": "std"}, {}]
    b = gate.route(proba, X=X, meta=meta)
    assert b.route.tolist() == ["auto", "expert", "expert", "expert", "review", "auto",
                                "review"]
    assert b.reason.tolist() == ["confident", "rule:big", "novel", "rule:big", "rule:vip",
                                 "confident", "rule:weak"]
    stopped = Gate(0.9, rules=RULES, novelty=_novelty(), stopped=True).route(
        proba, X=X, meta=meta)
    assert set(stopped.reason) == {"stopped"} and "auto" not in set(stopped.route)
    assert stopped.route.tolist()[:4] == ["review", "expert", "expert", "expert"]


@given(proba_arrays, st.floats(0, 1), st.integers(0, 2**32 - 1))
@settings(max_examples=100, deadline=None)
def test_rules_and_the_stop_switch_override_auto(proba: np.ndarray, threshold: float,
                                                 seed: int) -> None:
    rng = np.random.default_rng(seed)
    meta = [{"amount": float(a)} for a in rng.integers(0, 2000, len(proba))]
    gate = Gate(threshold, rules=RULES[:1], audit_rate=0.5)
    b = gate.route(proba, meta=meta, random_state=seed)
    big = np.array([m["amount"] > 1000 for m in meta])
    assert np.all(b.route[big] == "expert") and np.all(b.reason[big] == "rule:big")
    assert not b.audited[big].any() and np.all(b.inclusion_prob[big] == 1.0)
    stopped = Gate(threshold, rules=RULES[:1], audit_rate=0.5, stopped=True).route(
        proba, meta=meta, random_state=seed)
    assert "auto" not in set(stopped.route) and not stopped.audited.any()


def test_calibration_uses_only_items_that_can_reach_the_threshold() -> None:
    proba, y = _calibration(7, n=3000)
    meta = [{"amount": 5000 if i % 3 == 0 else 1} for i in range(3000)]
    plain = Gate(target_error=0.05).calibrate(proba, y)
    ruled = Gate(target_error=0.05, rules=RULES[:1]).calibrate(proba, y, meta=meta)
    assert plain.certificates_[0].n_calibration == 3000
    assert ruled.certificates_[0].n_calibration == 2000
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 2))
    X[:100] += 20  # far away: novel
    nov = Gate(target_error=0.05, novelty=_novelty()).calibrate(proba, y, X=X)
    assert nov.certificates_[0].n_calibration <= 2900
    with pytest.raises(ValueError, match="pass X"):
        Gate(target_error=0.05, novelty=_novelty()).calibrate(proba, y)


def test_the_service_call_still_works() -> None:
    """``Gate(threshold, audit_rate=..., stopped=...)`` then ``route(..., validate=False)``."""
    rng = np.random.default_rng(0)
    proba = _proba(rng.random((100, 4)))
    b = Gate(0.5, audit_rate=0.1, stopped=False).route(proba, random_state=rng,
                                                       validate=False)
    assert len(b) == 100 and b.novelty is None
    assert set(b.route) <= {"auto", "review"}
    assert b.label.dtype == np.int64 and b.confidence.dtype == np.float64
