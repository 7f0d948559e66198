"""Novelty: conformal false-alarm rate, far inputs flagged and sent to experts, speed."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from loopwise.routing import Gate, NoveltyDetector


def test_false_alarm_rate_is_at_most_alpha() -> None:
    """For in-distribution inputs P(novel) <= alpha (conformal). Over 40 seeds of 500 test
    items each (20,000 draws, not independent across a seed), the mean flagged share must be
    <= alpha + 0.01."""
    alpha, shares = 0.05, []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        det = NoveltyDetector(n_neighbors=5, alpha=alpha).fit(rng.normal(size=(600, 4)))
        det.calibrate(rng.normal(size=(300, 4)))
        shares.append(det.is_novel(rng.normal(size=(500, 4))).mean())
    assert np.mean(shares) <= alpha + 0.01
    assert np.mean(shares) > alpha / 3  # and the threshold is not absurdly loose


def test_pvalues_and_threshold_agree() -> None:
    rng = np.random.default_rng(0)
    det = NoveltyDetector(alpha=0.1).fit(rng.normal(size=(400, 3))).calibrate(
        rng.normal(size=(199, 3)))
    X = np.r_[rng.normal(size=(300, 3)), rng.normal(size=(20, 3)) * 6]
    assert np.array_equal(det.pvalue(X) <= 0.1, det.is_novel(X))


def test_too_few_calibration_items_flag_nothing() -> None:
    rng = np.random.default_rng(0)
    det = NoveltyDetector(alpha=0.01).fit(rng.normal(size=(50, 2))).calibrate(
        rng.normal(size=(20, 2)))
    assert det.threshold_ == math.inf
    assert not det.is_novel(np.array([[100.0, 100.0]])).any()


def test_standardisation_makes_scale_irrelevant() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(500, 2)) * [1.0, 1000.0]
    det = NoveltyDetector(alpha=0.05).fit(ref).calibrate(rng.normal(size=(300, 2)) * [1, 1000])
    assert det.is_novel(np.array([[8.0, 0.0]]))[0]  # 8 sd on the small feature
    assert not det.is_novel(np.array([[0.0, 500.0]]))[0]  # 0.5 sd on the large one


def test_gate_sends_novel_items_to_experts_with_their_scores() -> None:
    rng = np.random.default_rng(0)
    det = NoveltyDetector(alpha=0.01).fit(rng.normal(size=(1000, 3))).calibrate(
        rng.normal(size=(500, 3)))
    X = np.array([[0.0, 0.0, 0.0], [10.0, 10.0, 10.0]])
    b = Gate(0.5, novelty=det, audit_rate=0.0).route(np.array([[0.9, 0.1], [0.9, 0.1]]), X=X)
    assert b.route.tolist() == ["auto", "expert"] and b.reason.tolist() == ["confident", "novel"]
    assert b.novelty is not None and b.novelty[1] > det.threshold_
    with pytest.raises(ValueError, match="pass X"):
        Gate(0.5, novelty=det).route(np.array([[0.9, 0.1]]))


def test_state_round_trip() -> None:
    rng = np.random.default_rng(0)
    det = NoveltyDetector(n_neighbors=3, alpha=0.05).fit(rng.normal(size=(300, 2))).calibrate(
        rng.normal(size=(100, 2)))
    again = NoveltyDetector.from_state(det.state())
    X = rng.normal(size=(50, 2)) * 3
    assert again.threshold_ == det.threshold_
    assert np.array_equal(again.is_novel(X), det.is_novel(X))


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="fit"):
        NoveltyDetector().score(np.zeros((1, 2)))
    det = NoveltyDetector().fit(np.random.default_rng(0).normal(size=(20, 2)))
    with pytest.raises(ValueError, match="features"):
        det.score(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="calibrate"):
        det.is_novel(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="finite"):
        det.score(np.array([[np.nan, 0.0]]))


def test_scoring_is_fast() -> None:
    """10,000 queries against 20,000 reference items in 16 dimensions: well under 3 s."""
    rng = np.random.default_rng(0)
    det = NoveltyDetector(alpha=0.01).fit(rng.normal(size=(20_000, 16)))
    t = time.perf_counter()
    det.score(rng.normal(size=(10_000, 16)))
    assert time.perf_counter() - t < 3.0


def test_leave_one_out_calibration_flags_about_alpha_of_ordinary_items() -> None:
    """Jackknife conformal: over 200 seeds, the share of fresh in-distribution items flagged
    is alpha on average (tolerance: 4 standard errors of the mean over 200 x 500 items)."""
    alpha, rates = 0.05, []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        det = NoveltyDetector(n_neighbors=5, alpha=alpha).fit(rng.normal(size=(300, 4)))
        det.calibrate_leave_one_out()
        rates.append(det.is_novel(rng.normal(size=(500, 4))).mean())
    se = np.std(rates) / np.sqrt(len(rates))
    assert abs(np.mean(rates) - alpha) < 4 * se + 0.005


def test_a_detector_survives_bytes_and_a_new_level() -> None:
    rng = np.random.default_rng(1)
    det = NoveltyDetector(alpha=0.1).fit(rng.normal(size=(200, 3))).calibrate_leave_one_out()
    again = NoveltyDetector.from_bytes(det.to_bytes())
    X = rng.normal(size=(50, 3)) * 2
    assert np.array_equal(again.is_novel(X), det.is_novel(X))
    strict = again.set_alpha(0.01)
    assert strict.threshold_ > det.threshold_
    assert NoveltyDetector(alpha=0.01).fit(rng.normal(size=(50, 3))) \
        .calibrate_leave_one_out().threshold_ == np.inf  # 50 scores cannot certify 1%
