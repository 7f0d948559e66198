"""Reviewer skill: counts from gold and consensus, accuracy intervals, and a quality score
that a majority-class spammer cannot game."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loopwise.consensus import aggregate, confusion_counts, quality_score, reviewer_skills
from loopwise.consensus.simulate import distinct_reviewers, sample_labels


def _spammer_and_honest(seed: int, n: int = 600) -> tuple[np.ndarray, ...]:
    """Binary items, 75% of class 0. Reviewer 0 always answers 0 (accuracy ~0.75);
    reviewer 1 is honest with accuracy 0.62 on both classes."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(n) < 0.25).astype(np.int64)
    honest = np.array([[0.62, 0.38], [0.38, 0.62]])
    spam = np.array([[1.0, 0.0], [1.0, 0.0]])
    conf = np.stack([spam, honest])
    items = np.repeat(np.arange(n), 2)
    who = np.tile([0, 1], n)
    return items, who, sample_labels(truth[items], who, conf, rng), truth


def test_majority_class_spammer_ranks_below_an_honest_reviewer() -> None:
    """On each of 50 seeds the spammer has the higher raw accuracy (0.75 vs 0.62, a gap
    of ~5 sd with 600 gold answers each) yet the lower bias-corrected quality (at most 0.001,
    against 0.015-0.08 for the honest one)."""
    for seed in range(50):
        items, who, labels, truth = _spammer_and_honest(seed)
        s = reviewer_skills(confusion_counts(items, who, labels, truth))
        assert s.accuracy[0] > s.accuracy[1], seed
        assert s.quality[0] < 0.002 and s.quality[0] < s.quality[1], (seed, s.quality)


def test_quality_score_extremes() -> None:
    """A perfect reviewer scores 1, one who answers independently of the truth 0 — any
    answer distribution — and a reviewer who swaps classes is informative (1)."""
    prior = np.array([0.5, 0.3, 0.2])
    rng = np.random.default_rng(0)
    noise = np.tile(rng.dirichlet(np.ones(3)), (3, 1))
    swap = np.eye(3)[[1, 2, 0]]
    q = quality_score(np.stack([np.eye(3), noise, swap]), prior)
    np.testing.assert_allclose(q, [1.0, 0.0, 1.0], atol=1e-12)
    assert math.isnan(quality_score(np.eye(2)[None], np.array([1.0, 0.0]))[0])


def test_counts_are_additive_and_soft_counts_use_posteriors() -> None:
    items = np.array([0, 0, 1, 1, 2])
    who = np.array([0, 1, 0, 1, 0])
    labels = np.array([1, 1, 0, 1, 0])
    truth = np.array([1, 0, -1])  # item 2 not gold
    c = confusion_counts(items, who, labels, truth, n_classes=2)
    assert c.shape == (2, 2, 2)
    assert c[0].tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert c[1].tolist() == [[0.0, 1.0], [0.0, 1.0]]
    first = confusion_counts(items[:2], who[:2], labels[:2], truth, n_classes=2, n_reviewers=2)
    rest = confusion_counts(items[2:], who[2:], labels[2:], truth, n_classes=2)
    np.testing.assert_array_equal(first + rest, c)
    post = np.array([[0.2, 0.8], [0.5, 0.5], [1.0, 0.0]])
    soft = confusion_counts(items, who, labels, post)
    np.testing.assert_allclose(soft[0], [[1.5, 0.2], [0.5, 0.8]])
    np.testing.assert_allclose(soft.sum(axis=(1, 2)), [3.0, 2.0])


def test_skills_from_consensus_track_the_real_ones() -> None:
    """Counts from Dawid–Skene posteriors (no gold) give accuracies within 0.05 of those
    measured against the truth, for every reviewer of a 2,000-item crowd."""
    rng = np.random.default_rng(4)
    conf = np.stack([np.array([[a, 1 - a], [1 - a, a]]) for a in (0.95, 0.9, 0.8, 0.7, 0.6)])
    truth = rng.integers(0, 2, 2000)
    who = distinct_reviewers(2000, 5, 3, rng).ravel()
    items = np.repeat(np.arange(2000), 3)
    labels = sample_labels(truth[items], who, conf, rng)
    res = aggregate(items, who, labels, random_state=0)
    soft = reviewer_skills(confusion_counts(items, who, labels, res.posteriors))
    hard = reviewer_skills(confusion_counts(items, who, labels, truth))
    np.testing.assert_allclose(soft.accuracy, hard.accuracy, atol=0.05)
    assert np.all(np.diff(soft.quality) < 0)  # ranked as the real accuracies


def test_accuracy_interval_and_no_data() -> None:
    counts = np.zeros((2, 2, 2))
    counts[0] = [[8, 2], [0, 0]]
    s = reviewer_skills(counts)
    assert s.n.tolist() == [10.0, 0.0]
    assert s.accuracy[0] == pytest.approx(0.8)
    assert s.low[0] == pytest.approx(0.4902, abs=1e-4)  # Wilson, 8 of 10
    assert s.high[0] == pytest.approx(0.9433, abs=1e-4)
    assert math.isnan(s.accuracy[1]) and math.isnan(s.low[1]) and math.isnan(s.quality[1])
    with pytest.raises(ValueError, match="counts must have shape"):
        reviewer_skills(np.zeros((2, 2)))


def test_wilson_interval_covers() -> None:
    """Exact coverage of the 95% accuracy interval (summing the binomial distribution of
    the number right) for 20, 40 and 100 gold answers and accuracies 0.5..0.9: near
    nominal on average (0.94-0.96) and never below 0.92 (Wilson's known dips)."""
    from scipy.stats import binom

    for n in (20, 40, 100):
        right = np.arange(n + 1, dtype=float)
        counts = np.zeros((n + 1, 2, 2))
        counts[:, 0, 0] = right
        counts[:, 0, 1] = n - right
        s = reviewer_skills(counts)
        coverage = [
            binom.pmf(right, n, p)[(s.low <= p) & (s.high >= p)].sum()
            for p in np.linspace(0.5, 0.9, 41)
        ]
        assert 0.94 <= np.mean(coverage) <= 0.96, n
        assert min(coverage) >= 0.92, n
