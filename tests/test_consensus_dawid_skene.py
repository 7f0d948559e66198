"""Dawid–Skene, one-coin Dawid–Skene and MACE: they recover what the crowd really is,
use gold, history and warm starts, and agree with crowd-kit where it is installed."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from loopwise.consensus import aggregate
from loopwise.consensus.simulate import distinct_reviewers, sample_labels, simulate_crowd

MIXED = {"reliable": 4, "noisy": 2, "confuser": 2, "biased": 1, "spammer": 1}


def test_recovers_known_confusion_matrices_over_many_seeds() -> None:
    """20 crowds (2,000 items, 3 classes, 10 reviewers of five kinds, 5 answers per item,
    so ~330 answers per reviewer and true class). The standard error of one estimated
    entry is at most ~0.03, so the mean absolute error over all 90 entries should sit
    near 0.018; we require <= 0.03 on every seed and <= 0.022 on average, and every
    single entry within 0.15 (five standard errors)."""
    errors = []
    for seed in range(20):
        c = simulate_crowd(2000, MIXED, n_classes=3, per_item=5, random_state=seed)
        res = aggregate(c.items, c.reviewers, c.labels, n_classes=3, random_state=0)
        assert res.skills is not None and res.converged
        err = np.abs(res.skills - c.confusions)
        assert err.mean() <= 0.03, (seed, err.mean())
        assert err.max() <= 0.15, (seed, err.max())
        errors.append(err.mean())
    assert np.mean(errors) <= 0.022


def test_one_coin_recovers_accuracies() -> None:
    """Reviewers whose errors are spread evenly are one-coin reviewers: the estimated
    accuracy (diagonal) is within 0.05 of the real one for each of 10 seeds (1,000
    answers per reviewer: standard error <= 0.016)."""
    for seed in range(10):
        c = simulate_crowd(
            2000, {"reliable": 5, "noisy": 5}, n_classes=4, per_item=5, random_state=seed
        )
        res = aggregate(
            c.items, c.reviewers, c.labels, method="one_coin_dawid_skene", random_state=0
        )
        assert res.skills is not None
        est = np.diagonal(res.skills, axis1=1, axis2=2)[:, 0]
        real = np.diagonal(c.confusions, axis1=1, axis2=2)[:, 0]
        assert np.abs(est - real).max() <= 0.05, seed


def test_model_based_methods_beat_majority_vote() -> None:
    """On a crowd with spammers, biased and adversarial reviewers, Dawid–Skene is
    clearly more accurate than majority vote (by > 0.1 on each of 5 seeds), and MACE and
    one-coin DS also beat it."""
    kinds = {"reliable": 8, "noisy": 5, "confuser": 4, "biased": 3, "spammer": 3, "adversarial": 2}
    for seed in range(5):
        c = simulate_crowd(3000, kinds, random_state=seed)
        acc = {
            m: (
                aggregate(c.items, c.reviewers, c.labels, method=m, random_state=0).labels
                == c.truth
            ).mean()
            for m in ("majority", "dawid_skene", "one_coin_dawid_skene", "mace")
        }
        assert acc["dawid_skene"] > acc["majority"] + 0.1, acc
        assert min(acc["one_coin_dawid_skene"], acc["mace"]) > acc["majority"] + 0.05, acc


def _swapped_crowd(seed: int) -> tuple[np.ndarray, ...]:
    """Binary crowd where 7 of 10 reviewers answer the opposite of the truth 85% of the
    time: without outside knowledge the mirror image explains the answers as well."""
    rng = np.random.default_rng(seed)
    n = 1000
    truth = rng.integers(0, 2, n)
    honest = np.array([[0.85, 0.15], [0.15, 0.85]])
    conf = np.stack([honest] * 3 + [honest[:, ::-1]] * 7)
    who = distinct_reviewers(n, 10, 3, rng).ravel()
    items = np.repeat(np.arange(n), 3)
    labels = sample_labels(truth[items], who, conf, rng)
    gold_items = rng.choice(n, 50, replace=False)
    return items, who, labels, truth, conf, gold_items


@pytest.mark.parametrize("seed", range(5))
def test_gold_items_anchor_the_labels(seed: int) -> None:
    """With a swap-majority crowd, plain EM settles on the mirror image (accuracy < 0.2);
    pinning 5% gold items brings it back (> 0.9), and gold posteriors are exact."""
    items, who, labels, truth, _, gold_items = _swapped_crowd(seed)
    plain = aggregate(items, who, labels, n_classes=2, random_state=0)
    gold = {int(i): int(truth[i]) for i in gold_items}
    pinned = aggregate(items, who, labels, n_classes=2, gold=gold, random_state=0)
    assert (plain.labels == truth).mean() < 0.2
    assert (pinned.labels == truth).mean() > 0.9
    assert np.array_equal(pinned.labels[gold_items], truth[gold_items])
    assert np.array_equal(pinned.posteriors[gold_items].max(axis=1), np.ones(50))
    as_array = np.full(truth.size, -1)
    as_array[gold_items] = truth[gold_items]
    same = aggregate(items, who, labels, n_classes=2, gold=as_array, random_state=0)
    np.testing.assert_array_equal(same.posteriors, pinned.posteriors)


def test_warm_start_from_stored_confusions() -> None:
    """Starting from the reviewers' stored confusion matrices finds the true mode on the
    swap-majority crowd; a reviewer marked unknown (nan) starts from the vote estimate."""
    items, who, labels, truth, conf, _ = _swapped_crowd(0)
    start = conf.copy()
    start[0] = np.nan
    res = aggregate(items, who, labels, n_classes=2, init_skills=start, random_state=0)
    assert (res.labels == truth).mean() > 0.9
    with pytest.raises(ValueError, match="init_skills rows"):
        aggregate(items, who, labels, n_classes=2, init_skills=conf * 2)


def test_history_counts_stay_in_the_estimate() -> None:
    """A reviewer absent from this batch keeps their stored confusion (prior_counts);
    without history they get the crowd's pooled matrix."""
    c = simulate_crowd(500, {"reliable": 6}, n_classes=3, random_state=1)
    history = np.zeros((7, 3, 3))
    history[6] = [[80, 10, 10], [10, 80, 10], [50, 0, 50]]
    res = aggregate(
        c.items, c.reviewers, c.labels, n_reviewers=7, prior_counts=history, random_state=0
    )
    assert res.skills is not None
    np.testing.assert_allclose(res.skills[6], history[6] / 100, atol=0.02)
    bare = aggregate(c.items, c.reviewers, c.labels, n_reviewers=7, random_state=0)
    assert bare.skills is not None
    pooled = bare.skills[:6].mean(axis=0)
    np.testing.assert_allclose(bare.skills[6], pooled, atol=0.05)


def test_smoothing_helps_reviewers_with_few_answers() -> None:
    """200 reviewers with ~15 answers each: pseudo-counts towards the pooled crowd raise
    accuracy over plain maximum likelihood on every one of 5 seeds (by 0.03 on average;
    measured: about +0.07)."""
    kinds = {"reliable": 60, "noisy": 60, "spammer": 40, "biased": 20, "confuser": 20}
    gains = []
    for seed in range(5):
        c = simulate_crowd(1000, kinds, random_state=seed)
        acc = [
            (
                aggregate(c.items, c.reviewers, c.labels, smoothing=s, random_state=0).labels
                == c.truth
            ).mean()
            for s in (0.0, 2.0)
        ]
        assert acc[1] > acc[0], (seed, acc)
        gains.append(acc[1] - acc[0])
    assert np.mean(gains) > 0.03


def test_unanswered_items_get_the_prior_and_are_flagged() -> None:
    c = simulate_crowd(300, {"reliable": 5}, n_classes=3, random_state=0)
    for method in ("dawid_skene", "one_coin_dawid_skene", "mace"):
        res = aggregate(c.items, c.reviewers, c.labels, method=method, n_items=310, random_state=0)
        assert res.unanswered.tolist() == [False] * 300 + [True] * 10
        np.testing.assert_allclose(res.posteriors[300:], np.tile(res.prior, (10, 1)))
        np.testing.assert_allclose(res.posteriors.sum(axis=1), 1.0)
        assert res.prior.sum() == pytest.approx(1.0)


def test_mace_spots_spammers() -> None:
    """MACE's competence (1 - the weight of the spam distribution) is high for reliable
    reviewers and low for spammers."""
    c = simulate_crowd(2000, {"reliable": 5, "spammer": 3}, n_classes=3, random_state=3)
    res = aggregate(c.items, c.reviewers, c.labels, method="mace", random_state=0)
    assert res.skills is not None
    # competence = diagonal minus the off-diagonal value of the same column
    comp = res.skills[:, 0, 0] - res.skills[:, 1, 0]
    assert comp[:5].min() > 0.6
    assert comp[5:].max() < 0.15


def _crowd_kit_posteriors(method: str, seed: int, n_iter: int) -> tuple[np.ndarray, np.ndarray]:
    ck = pytest.importorskip("crowdkit.aggregation", reason="crowd-kit is not installed")
    pd = pytest.importorskip("pandas")
    c = simulate_crowd(300, MIXED, n_classes=3, random_state=seed)
    df = pd.DataFrame({"task": c.items, "worker": c.reviewers, "label": c.labels})
    model = ck.DawidSkene if method == "dawid_skene" else ck.OneCoinDawidSkene
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = model(n_iter=n_iter, tol=-np.inf).fit_predict_proba(df)
    ours = aggregate(
        c.items,
        c.reviewers,
        c.labels,
        method=method,
        smoothing=0.0,
        tol=1e-300,
        max_iter=n_iter,
        random_state=0,
    )
    return ours.posteriors, theirs.sort_index().reindex(columns=range(3)).to_numpy()


@pytest.mark.parametrize("method", ["dawid_skene", "one_coin_dawid_skene"])
def test_equals_crowd_kit_iterate_by_iterate(method: str) -> None:
    """With smoothing 0 loopwise runs the EM crowd-kit runs: the same start (majority-vote
    shares), the same updates. After the same number of iterations (1 and 20; crowd-
    kit's stopping rule switched off, since the two rules stop at different points of a
    slow tail) the posteriors agree to 1e-8 — crowd-kit floors probabilities at 1e-10,
    which is all that differs."""
    for n_iter in (1, 20):
        ours, theirs = _crowd_kit_posteriors(method, 5, n_iter)
        np.testing.assert_allclose(ours, theirs, atol=1e-8)
