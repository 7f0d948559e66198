"""Drift: PSI, Jensen–Shannon and normalised Wasserstein on known cases, decisions on
effect sizes with a minimum n, no false alarms without drift, determinism."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from loopwise.oversight import (
    DriftMonitor,
    drift_report,
    feature_drift,
    jensen_shannon,
    psi,
    rate_drift,
    wasserstein,
)
from loopwise.oversight.drift import psi_counts, quantile_edges


def test_psi_is_zero_on_identical_data_and_grows_with_the_shift() -> None:
    x = np.random.default_rng(0).normal(size=20_000)
    assert psi(x, x) == 0.0
    values = [psi(x, x + d) for d in (0.1, 0.3, 0.5, 1.0)]
    assert values == sorted(values)
    # a shift of d SDs of a normal gives PSI ≈ d² (J-divergence), less what binning loses
    assert 0.2 < values[2] < 0.25 + 0.02 and values[3] > 0.8


def test_psi_by_hand_with_smoothing() -> None:
    # shares p = (.5, .5), q = (.4, .6), eps = 1e-4 over 2 bins
    p = (np.array([0.5, 0.5]) + 1e-4) / (1 + 2e-4)
    q = (np.array([0.4, 0.6]) + 1e-4) / (1 + 2e-4)
    assert psi_counts([50, 50], [40, 60]) == pytest.approx(np.sum((q - p) * np.log(q / p)))
    # an empty bin is finite, not infinite
    assert math.isfinite(psi_counts([100, 0], [50, 50]))


def test_bins_are_fixed_on_reference_quantiles() -> None:
    ref = np.arange(1000.0)
    edges = quantile_edges(ref, bins=10)
    assert len(edges) == 9 and edges[0] == pytest.approx(99.9)
    # ties merge bins: a constant reference has one edge
    assert quantile_edges(np.ones(100)).tolist() == [1.0]
    m = DriftMonitor().fit({"x": ref})
    assert m.edges_["x"].tolist() == edges.tolist()


def test_jensen_shannon_on_categories() -> None:
    assert jensen_shannon(["a", "b", "c"] * 10, ["c", "b", "a"] * 5) == 0.0
    assert jensen_shannon(["a"] * 5, ["b"] * 5) == pytest.approx(1.0)
    ref = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    cur = ["a"] * 30 + ["b"] * 30 + ["c"] * 30 + ["d"] * 10
    expected = jensenshannon([0.6, 0.3, 0.1, 0.0], [0.3, 0.3, 0.3, 0.1], base=2)
    assert jensen_shannon(ref, cur) == pytest.approx(expected)
    assert jensen_shannon(ref, cur) == pytest.approx(jensen_shannon(cur[::-1], ref[::-1]))


def test_normalised_wasserstein_is_in_reference_sds() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(0, 3, 50_000)
    # shifting a sample by 1.5 moves every unit of mass 1.5: W1 = 1.5, in SDs ≈ 0.5
    assert wasserstein(ref, ref + 1.5) == pytest.approx(1.5 / np.std(ref), rel=1e-9)
    assert wasserstein(ref, ref + 1.5) == pytest.approx(0.5, rel=0.01)
    assert math.isnan(wasserstein(np.ones(10), np.arange(10.0)))


def test_report_decides_on_effect_size_per_kind() -> None:
    rng = np.random.default_rng(2)
    n = 5000
    ref = {
        "age": rng.normal(40, 10, n),
        "colour": rng.choice(["r", "g", "b"], n, p=[0.5, 0.3, 0.2]),
        "score": rng.uniform(size=n),
    }
    cur = {
        "age": rng.normal(47, 10, n),  # 0.7 SD: major
        "colour": rng.choice(["r", "g", "b"], n, p=[0.5, 0.3, 0.2]),  # same mix
        "score": rng.uniform(size=n) ** 1.3,  # mild change
    }
    rep = drift_report(ref, cur)
    f = rep.features
    assert (
        f["age"].kind == "numeric" and f["age"].status == "major" and f["age"].decided_by == "psi"
    )
    assert f["colour"].kind == "categorical" and f["colour"].status == "ok"
    assert f["colour"].decided_by == "js" and math.isnan(f["colour"].wasserstein)
    assert f["score"].status in ("ok", "moderate") and f["score"].psi < 0.25
    assert rep.status == "major" and "age" in rep.drifted and "colour" not in rep.drifted
    assert json.loads(json.dumps(rep.to_dict(), allow_nan=False))["status"] == "major"


def test_too_few_values_is_insufficient_not_ok() -> None:
    rng = np.random.default_rng(3)
    rep = drift_report({"x": rng.normal(size=1000)}, {"x": rng.normal(3, 1, 50)})
    assert rep.features["x"].status == "insufficient" and rep.status == "insufficient"
    assert rep.features["x"].reason == "n = 50 < 200"
    assert (
        drift_report({"x": rng.normal(size=1000)}, {"x": rng.normal(3, 1, 50)}, min_n=30).status
        == "major"
    )


def test_no_false_alarms_without_drift_at_the_minimum_n() -> None:
    """300 windows of 200 values from the reference distribution: PSI (10 bins) is
    ~ chi²(9) / 200, so P(PSI >= 0.1) ≈ 2%; at most 5% may be flagged, none major."""
    rng = np.random.default_rng(4)
    m = DriftMonitor().fit({"x": rng.normal(size=20_000)})
    statuses = [m.report({"x": rng.normal(size=200)}).status for _ in range(300)]
    assert statuses.count("major") == 0
    assert statuses.count("moderate") <= 15


def test_missing_values_and_new_categories_count() -> None:
    ref = np.r_[np.arange(1000.0), [np.nan] * 10]
    cur = np.r_[np.arange(1000.0), [np.nan] * 400]  # many more missing
    d = feature_drift(ref, cur)
    assert d.status in ("moderate", "major") and d.n_current == 1000
    labels = feature_drift(["a", "b"] * 200, ["a", "b"] * 150 + ["new"] * 100, categorical=True)
    assert labels.js > 0.13


def test_helpers_for_confidence_label_mix_and_rates() -> None:
    rng = np.random.default_rng(5)
    conf = feature_drift(rng.beta(8, 2, 3000), rng.beta(8, 2, 3000), name="confidence")
    assert conf.status == "ok" and conf.name == "confidence"
    mix = feature_drift([0] * 700 + [1] * 300, [0] * 300 + [1] * 700, categorical=True)
    assert mix.status == "major" and mix.kind == "categorical"
    r = rate_drift(300, 1000, 500, 1000, name="review_rate")
    assert r.kind == "rate" and r.status == "moderate"
    assert r.difference is not None and r.difference.low > 0.15
    assert rate_drift(300, 1000, 310, 1000).status == "ok"


def test_deterministic_and_row_order_free() -> None:
    rng = np.random.default_rng(6)
    ref = {"a": rng.normal(size=800), "b": rng.choice(list("xyz"), 800)}
    cur = {"a": rng.normal(0.2, 1, 600), "b": rng.choice(list("xyz"), 600)}
    one = drift_report(ref, cur).to_dict()
    assert drift_report(ref, cur).to_dict() == one
    perm = rng.permutation(600)
    shuffled = drift_report(ref, {k: v[perm] for k, v in cur.items()}).to_dict()
    assert _close(shuffled, one)


def _close(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)
    return a == b


def test_monitor_checks_its_input() -> None:
    with pytest.raises(RuntimeError):
        DriftMonitor().report({"x": np.ones(3)})
    m = DriftMonitor().fit(np.zeros((300, 2)))
    assert set(m.kinds_) == {"x0", "x1"}
    with pytest.raises(ValueError, match="features"):
        m.report({"other": np.ones(300)})
    with pytest.raises(ValueError, match="categorical"):
        DriftMonitor(categorical=["nope"]).fit({"x": np.ones(3)})
