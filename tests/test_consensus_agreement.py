"""Agreement figures equal the reference libraries, say ``nan`` with a reason when the
data cannot define them, and their bootstrap intervals cover."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from loopwise.consensus import (
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    long_form,
    percent_agreement,
)
from loopwise.consensus.agreement import NO_COMMON, NO_PAIRS, ONE_CATEGORY, ONE_RATER
from loopwise.consensus.simulate import simulate_crowd


def _wide(seed: int, n_items: int, n_raters: int, k: int, missing: float) -> np.ndarray:
    """Ratings of ``n_raters`` of varying accuracy, ``missing`` share blanked (-1)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    acc = rng.uniform(0.3, 0.9, n_raters)
    right = rng.random((n_items, n_raters)) < acc
    m = np.where(right, truth[:, None], rng.integers(0, k, (n_items, n_raters)))
    m[rng.random(m.shape) < missing] = -1
    return m


@pytest.mark.parametrize("seed", range(5))
def test_krippendorff_alpha_equals_reference(seed: int) -> None:
    """Nominal alpha with missing ratings equals the ``krippendorff`` package to 1e-9."""
    kd = pytest.importorskip("krippendorff", reason="pip install krippendorff")
    m = _wide(seed, 300, 6, 4, missing=0.3)
    ours = krippendorff_alpha(*long_form(m), n_boot=0)
    rel = np.where(m >= 0, m, np.nan).T.astype(float)
    ref = kd.alpha(reliability_data=rel, level_of_measurement="nominal")
    assert ours.value == pytest.approx(ref, abs=1e-9)
    assert ours.n == int(((m >= 0).sum(axis=1) >= 2).sum())


@pytest.mark.parametrize("seed", range(5))
def test_fleiss_kappa_equals_statsmodels(seed: int) -> None:
    """statsmodels needs the same number of ratings per item, so compare on complete
    data (5 raters on every item)."""
    irr = pytest.importorskip("statsmodels.stats.inter_rater", reason="pip install statsmodels")
    m = _wide(seed, 300, 5, 3, missing=0.0)
    table = np.stack([np.bincount(row, minlength=3) for row in m])
    ours = fleiss_kappa(*long_form(m), n_boot=0)
    assert ours.value == pytest.approx(irr.fleiss_kappa(table, method="fleiss"), abs=1e-9)


def test_fleiss_kappa_with_varying_raters_by_hand() -> None:
    """Items with 2, 3 and 4 ratings (00, 001, 0001): P_i = 1, 1/3, 1/2; P-bar = 11/18;
    pooled shares (7/9, 2/9), so P_e = 53/81; kappa = (11/18 - 53/81) / (28/81) = -1/8."""
    items = [0, 0, 1, 1, 1, 2, 2, 2, 2]
    raters = [0, 1, 0, 1, 2, 0, 1, 2, 3]
    labels = [0, 0, 0, 0, 1, 0, 0, 0, 1]
    r = fleiss_kappa(items, raters, labels, n_boot=0)
    assert r.value == pytest.approx(-1 / 8, abs=1e-12)
    assert percent_agreement(items, raters, labels, n_boot=0).value == pytest.approx(11 / 18)


@pytest.mark.parametrize("seed", range(5))
def test_cohen_kappa_equals_sklearn(seed: int) -> None:
    from sklearn.metrics import cohen_kappa_score

    m = _wide(seed, 400, 2, 4, missing=0.2)
    a, b = m[:, 0], m[:, 1]
    both = (a >= 0) & (b >= 0)
    ours = cohen_kappa(a, b, n_boot=0)
    assert ours.value == pytest.approx(cohen_kappa_score(a[both], b[both]), abs=1e-9)
    assert ours.n == int(both.sum())


def test_percent_agreement_is_the_share_of_agreeing_pairs() -> None:
    """Two raters: the share of items on which they agree."""
    m = _wide(0, 500, 2, 3, missing=0.0)
    r = percent_agreement(*long_form(m), n_boot=0)
    assert r.value == pytest.approx((m[:, 0] == m[:, 1]).mean())


@pytest.mark.parametrize(
    ("items", "raters", "labels", "reason"),
    [
        ([0, 1, 2], [0, 0, 0], [0, 1, 1], ONE_RATER),
        ([0, 1, 2], [0, 1, 2], [0, 1, 1], NO_PAIRS),
        ([], [], [], NO_PAIRS),
        ([0, 0, 1, 1], [0, 1, 0, 1], [2, 2, 2, 2], ONE_CATEGORY),
    ],
)
def test_degenerate_input_is_nan_with_a_reason(
    items: list[int], raters: list[int], labels: list[int], reason: str
) -> None:
    for fn in (fleiss_kappa, krippendorff_alpha):
        r = fn(items, raters, labels, random_state=0)
        assert math.isnan(r.value) and math.isnan(r.low) and math.isnan(r.high)
        assert r.reason == reason
        assert r.to_dict()["value"] is None and r.to_dict()["reason"] == reason
    pa = percent_agreement(items, raters, labels, random_state=0)
    if reason == ONE_CATEGORY:  # not chance-corrected: everyone agreeing is agreement 1
        assert pa.value == 1.0 and pa.reason == ""
    else:
        assert math.isnan(pa.value) and pa.reason == reason


def test_cohen_kappa_degenerate() -> None:
    r = cohen_kappa([0, -1, 1], [-1, 1, -1])
    assert math.isnan(r.value) and r.reason == NO_COMMON and r.n == 0
    r = cohen_kappa([1, 1, 1], [1, 1, 1])
    assert math.isnan(r.value) and r.reason == ONE_CATEGORY and r.n == 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns on this degenerate case
        from sklearn.metrics import cohen_kappa_score

        assert math.isnan(cohen_kappa_score([1, 1, 1], [1, 1, 1]))
    with pytest.raises(ValueError, match="equal 1-d shapes"):
        cohen_kappa([0, 1], [0])


def test_a_rater_twice_on_an_item_is_an_error() -> None:
    with pytest.raises(ValueError, match="more than once"):
        fleiss_kappa([0, 0, 1, 1], [0, 0, 0, 1], [1, 1, 0, 0])


def test_bootstrap_interval_is_seeded_and_brackets_the_value() -> None:
    m = _wide(1, 400, 4, 3, missing=0.2)
    a = krippendorff_alpha(*long_form(m), random_state=0, n_boot=500)
    b = krippendorff_alpha(*long_form(m), random_state=0, n_boot=500)
    assert (a.low, a.high) == (b.low, b.high)
    assert a.low < a.value < a.high
    assert a.n_boot == 500 and a.level == 0.95
    r = krippendorff_alpha(*long_form(m), n_boot=0)
    assert math.isnan(r.low) and not math.isnan(r.value)


def test_bootstrap_intervals_cover_the_population_value() -> None:
    """60 samples of 150 items from one crowd (3 raters per item, 5 classes): the 90%
    interval of Fleiss' kappa should cover the value on 40,000 items from the same crowd
    about 90% of the time; we require 80-98% (binomial sd of the share ~4%, and the
    percentile bootstrap undercovers slightly at this size)."""
    kinds = {"reliable": 4, "noisy": 4, "spammer": 2}
    big = simulate_crowd(40_000, kinds, random_state=0)
    target = fleiss_kappa(big.items, big.reviewers, big.labels, n_boot=0).value
    rng = np.random.default_rng(1)
    covered = []
    for _ in range(60):
        pick = rng.choice(40_000, 150, replace=False)
        keep = np.isin(big.items, pick)
        items = np.searchsorted(np.sort(pick), big.items[keep])
        r = fleiss_kappa(
            items, big.reviewers[keep], big.labels[keep], n_boot=300, level=0.9, random_state=rng
        )
        covered.append(r.low <= target <= r.high)
    assert 0.8 <= np.mean(covered) <= 0.98, np.mean(covered)
