"""Group metrics: hand-computed values, undefined rates, the unknown group, intersections,
sufficiency, review / override / audit rates, weights, intervals that cover, and equality
with fairlearn's MetricFrame where both are defined."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from loopwise.oversight import UNKNOWN, group_metrics, katz, newcombe, wilson

# group a: TP 2, FN 1, FP 1, TN 1; group b: no true positive, FP 1, TN 2
Y_TRUE = [1, 1, 1, 0, 0, 0, 0, 0]
Y_PRED = [1, 0, 1, 1, 0, 0, 1, 0]
GROUP = ["a"] * 5 + ["b"] * 3


def test_hand_computed_rates() -> None:
    rep = group_metrics(Y_TRUE, Y_PRED, GROUP)
    a, b = rep.by_group["a"], rep.by_group["b"]
    assert (a.n, b.n) == (5, 3)
    assert a.label_counts == {"0": 2, "1": 3} and b.label_counts == {"0": 3}
    assert a.prediction_counts == {"0": 2, "1": 3}
    expected_a = {
        "selection_rate": 3 / 5,
        "base_rate": 3 / 5,
        "tpr": 2 / 3,
        "fnr": 1 / 3,
        "fpr": 1 / 2,
        "tnr": 1 / 2,
        "ppv": 2 / 3,
        "accuracy": 3 / 5,
        "balanced_accuracy": 7 / 12,
    }
    for name, value in expected_a.items():
        assert a.rates[name].estimate == pytest.approx(value, abs=1e-12), name
    assert b.selection_rate.estimate == pytest.approx(1 / 3)
    assert b.fpr.estimate == pytest.approx(1 / 3)
    assert b.ppv.estimate == 0.0  # one labelled predicted positive, wrong: defined, 0
    assert b.base_rate.estimate == 0.0
    # every proportion carries its Wilson interval and its denominator
    assert a.tpr == wilson(2, 3)
    assert a.fpr.n == 2 and a.selection_rate.n == 5
    bal = a.balanced_accuracy
    assert bal.low < bal.estimate < bal.high


def test_rate_over_nothing_is_undefined_with_a_reason_never_zero() -> None:
    rep = group_metrics(Y_TRUE, Y_PRED, GROUP)
    b = rep.by_group["b"]
    for name in ("tpr", "fnr", "balanced_accuracy"):
        r = b.rates[name]
        assert math.isnan(r.estimate) and math.isnan(r.low) and math.isnan(r.high), name
        assert r.reason, name
        assert r.to_dict()["estimate"] is None
    # a disparity needs two groups with the rate defined
    eo = rep.disparities["equal_opportunity_difference"]
    assert math.isnan(eo.value.estimate) and "fewer than two groups" in (eo.value.reason or "")
    # equalized odds falls back on the rate that is defined (FPR: 1/2 - 1/3)
    assert rep.disparities["equalized_odds_difference"].value.estimate == pytest.approx(1 / 6)
    assert rep.disparities["equalized_odds_difference"].metric == "fpr"
    dp = rep.disparities["demographic_parity_difference"]
    assert dp.value.estimate == pytest.approx(3 / 5 - 1 / 3) and dp.groups == ("a", "b")
    assert rep.disparities["demographic_parity_ratio"].value.estimate == pytest.approx(5 / 9)


def test_missing_true_labels_count_only_in_label_free_rates() -> None:
    y_true = [1, None, 0, float("nan"), 1, 0]
    rep = group_metrics(np.array(y_true, dtype=object), [1, 1, 0, 0, 0, 0], ["g"] * 6)
    g = rep.by_group["g"]
    assert g.n == 6 and g.selection_rate.estimate == pytest.approx(2 / 6)
    assert g.accuracy.n == 4 and g.accuracy.estimate == pytest.approx(3 / 4)
    assert g.label_counts == {"0": 2, "1": 2}


def test_unknown_group_is_reported_but_not_reference_or_extreme() -> None:
    sens = np.array(["x"] * 40 + ["y"] * 35 + [None] * 3 + [""] * 2 + [np.nan] * 50, dtype=object)
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, sens.size)
    pred = y.copy()
    pred[75:] = 1  # the unknown rows are all predicted positive
    rep = group_metrics(y, pred, sens)
    assert set(rep.by_group) == {"x", "y", UNKNOWN}
    unk = rep.by_group[UNKNOWN]
    assert unk.n == 55 and not unk.known and unk.selection_rate.estimate == 1.0
    brk = rep.attributes["group"]
    assert brk.reference == "x"  # the largest known group, although "unknown" is larger
    assert UNKNOWN in brk.versus_reference["selection_rate"]
    dp = rep.disparities["demographic_parity_difference"]
    assert dp.groups is not None and UNKNOWN not in dp.groups


def test_intersections_of_several_attributes() -> None:
    rng = np.random.default_rng(0)
    n = 400
    sex = rng.choice(["f", "m"], n)
    race = rng.choice(["p", "q", "r"], n)
    y = rng.integers(0, 2, n)
    pred = rng.integers(0, 2, n)
    rep = group_metrics(y, pred, {"sex": sex, "race": race})
    assert list(rep.attributes) == ["sex", "race", "sex & race"]
    assert rep.finest == "sex & race"
    assert set(rep.by_group) == {f"{s} & {r}" for s in "fm" for r in "pqr"}
    cell = rep.by_group["f & q"]
    mask = (sex == "f") & (race == "q")
    assert cell.n == mask.sum()
    assert cell.selection_rate.estimate == pytest.approx(pred[mask].mean())
    assert rep.attributes["sex"].by_group["m"].n == (sex == "m").sum()
    # a 2-D array and a DataFrame-like give the same breakdowns
    both = group_metrics(y, pred, np.c_[sex, race])
    assert list(both.attributes) == ["attr0", "attr1", "attr0 & attr1"]
    assert both.by_group["f & q"].tpr == cell.tpr


def test_insufficient_groups_are_marked() -> None:
    # big: 100 rows, 50/50 labels; few_pos: 60 rows with 5 positives; small: 20 rows
    y = np.r_[np.tile([0, 1], 50), np.ones(5), np.zeros(55), np.tile([0, 1], 10)].astype(int)
    g = np.array(["big"] * 100 + ["few_pos"] * 60 + ["small"] * 20)
    pred = y.copy()
    pred[100] = 0  # few_pos misses one of its 5 positives: the lowest TPR
    rep = group_metrics(y, pred, g)
    assert not rep.by_group["big"].insufficient and rep.by_group["big"].notes == ()
    assert rep.by_group["few_pos"].insufficient
    assert rep.by_group["few_pos"].notes == ("5 positives < 10",)
    assert rep.by_group["small"].notes == ("n = 20 < 30",)
    tpr = rep.disparities["tpr_difference"]
    assert tpr.groups == ("big", "few_pos") and tpr.insufficient
    acc = group_metrics(y, pred, g, reference="big").attributes["group"]
    assert acc.versus_reference["tpr"]["few_pos"].difference.estimate == pytest.approx(-0.2)
    fine = group_metrics(y, pred, g, min_n=10, min_class=5)
    assert not any(s.insufficient for s in fine.by_group.values())


def test_reference_group_comparisons_and_four_fifths() -> None:
    n = 2000
    g = np.array(["big"] * n + ["same"] * n + ["low"] * n)
    pred = np.r_[np.tile([1, 0], n // 2), np.tile([1, 0], n // 2), np.tile([1, 0, 0, 0], n // 4)]
    rep = group_metrics(None, pred, g)
    brk = rep.attributes["group"]
    assert brk.reference == "big"  # first of the largest
    low = brk.versus_reference["selection_rate"]["low"]
    assert low.difference == newcombe(n / 4, n, n / 2, n)
    assert low.ratio == katz(n / 4, n, n / 2, n)
    assert brk.four_fifths == {"big": "within", "same": "within", "low": "outside"}
    other = group_metrics(None, pred, g, reference="low")
    assert other.attributes["group"].reference == "low"
    with pytest.raises(ValueError, match="reference group"):
        group_metrics(None, pred, g, reference="nobody")
    with pytest.raises(ValueError, match="unknown attributes"):
        group_metrics(None, pred, g, reference={"sex": "f"})


def test_review_override_and_audit_rates() -> None:
    model = np.array([1, 1, 0, 0, 1, 0, 0, 1])
    final = np.array([1, 0, 1, 0, 1, 0, 0, 1])  # rows 1 and 2 overridden
    reviewed = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    y_true = np.array([1, 0, 1, 0, 0, 0, 1, 1])
    audited = np.array([0, 0, 0, 0, 1, 1, 1, 0], bool)
    inclusion = np.array([1, 1, 1, 1, 0.5, 0.25, 0.5, 0.5])
    rep = group_metrics(
        y_true,
        final,
        ["g"] * 8,
        reviewed=reviewed,
        model_pred=model,
        audited=audited,
        inclusion=inclusion,
    )
    g = rep.by_group["g"]
    assert g.review_rate.estimate == 0.5
    assert g.override_rate.estimate == 0.5  # 2 of 4 reviewed
    assert g.override_to_positive_rate.estimate == 0.5  # model 0 → 1: row 2 of rows 2, 3
    assert g.override_to_negative_rate.estimate == 0.5  # model 1 → 0: row 1 of rows 0, 1
    # audited rows 4 (wrong, pi .5), 5 (right, pi .25), 6 (wrong, pi .5): Hájek
    assert g.auto_error.estimate == pytest.approx((2 + 2) / (2 + 4 + 2))
    assert g.auto_error.n == pytest.approx(8**2 / (4 + 16 + 4))  # effective n (p = 1/2: Kish)
    with pytest.raises(ValueError, match="go together"):
        group_metrics(y_true, final, ["g"] * 8, audited=audited)


def test_hajek_auto_error_is_nearly_unbiased_under_unequal_audit_rates() -> None:
    """Over 400 seeds, errors concentrated in rarely audited rows: the weighted estimate's
    mean is within 0.01 of the true error (the unweighted share of audited errors is far
    off). Tolerance: the estimate's sd is ~0.04, so the mean's is ~0.002."""
    n = 4000
    pi = np.where(np.arange(n) < n // 2, 0.05, 0.5)
    wrong = np.zeros(n, bool)
    wrong[: n // 10] = True  # all errors among the rarely audited
    true_error = wrong.mean()
    est, naive = [], []
    for seed in range(400):
        rng = np.random.default_rng(seed)
        audited = rng.random(n) < pi
        y_true = np.where(wrong, 1, 0)
        r = group_metrics(
            y_true, np.zeros(n, int), ["g"] * n, audited=audited, inclusion=pi, positive=0
        ).by_group["g"]
        est.append(r.auto_error.estimate)
        naive.append(wrong[audited].mean())
    assert abs(np.mean(est) - true_error) < 0.01
    assert abs(np.mean(naive) - true_error) > 0.05


def test_weights_equal_repeated_rows() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 90)
    pred = rng.integers(0, 2, 90)
    g = rng.choice(["a", "b"], 90)
    w = rng.integers(1, 4, 90)
    rep = group_metrics(y, pred, g, sample_weight=w)
    rep_rep = group_metrics(np.repeat(y, w), np.repeat(pred, w), np.repeat(g, w))
    for grp in ("a", "b"):
        for name, r in rep.by_group[grp].rates.items():
            assert r.estimate == pytest.approx(rep_rep.by_group[grp].rates[name].estimate), name
        # weights do not pretend to more data than there is: effective n <= rows
        assert rep.by_group[grp].selection_rate.n <= rep.by_group[grp].n


@pytest.mark.parametrize(
    ("n1", "p1", "n2", "p2"), [(40, 0.3, 40, 0.5), (100, 0.1, 150, 0.15), (30, 0.2, 60, 0.2)]
)
def test_newcombe_and_katz_cover_at_the_nominal_level(
    n1: int, p1: float, n2: int, p2: float
) -> None:
    """2,000 simulated pairs of groups: coverage of the 95% intervals within
    [0.93, 0.975] for Newcombe and [0.93, 0.98] for Katz (± 3.5 binomial sd of a 2,000-rep
    coverage estimate around the methods' known slightly conservative coverage: 0.95–0.96
    measured over 20,000 reps)."""
    rng = np.random.default_rng(7)
    k1 = rng.binomial(n1, p1, 2000)
    k2 = rng.binomial(n2, p2, 2000)
    diff = [newcombe(a, n1, b, n2) for a, b in zip(k1, k2, strict=True)]
    ratio = [katz(a, n1, b, n2) for a, b in zip(k1, k2, strict=True)]
    cover_d = np.mean([r.low <= p1 - p2 <= r.high for r in diff])
    cover_r = np.mean([r.low <= p1 / p2 <= r.high for r in ratio])
    assert 0.93 <= cover_d <= 0.975, cover_d
    assert 0.93 <= cover_r <= 0.98, cover_r


def test_katz_edge_cases() -> None:
    assert math.isnan(katz(3, 10, 0, 10).estimate) and katz(3, 10, 0, 10).reason
    zero = katz(0, 50, 5, 50)
    assert zero.estimate == 0 and zero.low == 0 and zero.high > 0
    assert math.isnan(katz(1, 0, 1, 10).estimate)


def test_json_ready_and_deterministic_and_order_free() -> None:
    rng = np.random.default_rng(5)
    n = 300
    y = rng.integers(0, 2, n)
    pred = rng.integers(0, 2, n)
    sens = {"s": rng.choice(["a", "b", None], n), "t": rng.choice([1, 2], n)}
    d1 = group_metrics(y, pred, sens).to_dict()
    text = json.dumps(d1, allow_nan=False)
    assert json.loads(text) == d1
    assert group_metrics(y, pred, sens).to_dict() == d1
    perm = rng.permutation(n)
    d2 = group_metrics(y[perm], pred[perm], {k: v[perm] for k, v in sens.items()}).to_dict()
    assert json.dumps(d2, sort_keys=True) == json.dumps(d1, sort_keys=True)


def test_labels_of_any_kind_and_bad_input() -> None:
    rep = group_metrics(["Yes", "No", "Yes"], ["Yes", "Yes", "No"], ["a"] * 3, positive="Yes")
    assert rep.by_group["a"].tpr.estimate == 0.5
    as_bool = group_metrics(np.array([True, False]), np.array([True, True]), ["a", "a"])
    assert as_bool.by_group["a"].selection_rate.estimate == 1.0  # True matches positive=1
    with pytest.raises(ValueError, match="occurs in neither"):
        group_metrics(["Yes", "No"], ["No", "No"], ["a", "a"])
    with pytest.raises(ValueError, match="shape"):
        group_metrics([1, 0], [1, 0, 1], ["a"] * 3)
    with pytest.raises(AttributeError):
        rep.by_group["a"].no_such_rate  # noqa: B018


def test_equal_to_fairlearn_where_both_are_defined() -> None:
    """fairlearn's MetricFrame on 3,000 simulated rows (two attributes, weighted and not):
    every per-group rate and every disparity agrees to 1e-9."""
    fm = pytest.importorskip("fairlearn.metrics", reason="fairlearn not installed")
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, precision_score

    rng = np.random.default_rng(11)
    n = 3000
    a = rng.choice(["u", "v", "w"], n, p=[0.5, 0.3, 0.2])
    b = rng.choice(["p", "q"], n)
    y = rng.binomial(1, np.where(a == "u", 0.4, 0.6))
    pred = np.where(rng.random(n) < np.where(b == "p", 0.8, 0.7), y, 1 - y)
    w = rng.uniform(0.5, 2.0, n)
    metrics = {
        "selection_rate": fm.selection_rate,
        "tpr": fm.true_positive_rate,
        "fpr": fm.false_positive_rate,
        "fnr": fm.false_negative_rate,
        "tnr": fm.true_negative_rate,
        "accuracy": accuracy_score,
        "balanced_accuracy": balanced_accuracy_score,
        "ppv": precision_score,
    }
    sens = {"a": a, "b": b}
    for weight in (None, w):
        rep = group_metrics(y, pred, sens, sample_weight=weight)
        params = {m: {"sample_weight": weight} for m in metrics} if weight is not None else {}
        mf = fm.MetricFrame(
            metrics=metrics, y_true=y, y_pred=pred, sensitive_features=sens, sample_params=params
        )
        for (ga, gb), row in mf.by_group.iterrows():
            stats = rep.by_group[f"{ga} & {gb}"]
            for m in metrics:
                assert stats.rates[m].estimate == pytest.approx(row[m], abs=1e-9), (ga, gb, m)
        kw = {"sensitive_features": sens, "sample_weight": weight}
        pairs = {
            "demographic_parity_difference": fm.demographic_parity_difference,
            "demographic_parity_ratio": fm.demographic_parity_ratio,
            "equalized_odds_difference": fm.equalized_odds_difference,
            "equalized_odds_ratio": fm.equalized_odds_ratio,
            "equal_opportunity_difference": fm.equal_opportunity_difference,
            "equal_opportunity_ratio": fm.equal_opportunity_ratio,
        }
        for name, f in pairs.items():
            assert rep.disparities[name].value.estimate == pytest.approx(
                f(y, pred, **kw), abs=1e-9
            ), name
        for m in metrics:
            assert rep.disparities[f"{m}_difference"].value.estimate == pytest.approx(
                mf.difference()[m], abs=1e-9
            ), m
            assert rep.disparities[f"{m}_ratio"].value.estimate == pytest.approx(
                mf.ratio()[m], abs=1e-9
            ), m
