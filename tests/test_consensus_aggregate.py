"""``aggregate``: its contract, its input checks, votes and their tie-break."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from loopwise.consensus import METHODS, aggregate
from loopwise.consensus.simulate import simulate_crowd

HEAVY = [
    "sqlalchemy",
    "fastapi",
    "starlette",
    "jinja2",
    "pydantic",
    "typer",
    "httpx",
    "alembic",
    "uvicorn",
    "pandas",
]


def test_consensus_is_pure() -> None:
    """Importing loopwise.consensus loads no web, database or dataframe library."""
    code = (
        "import sys, loopwise.consensus, loopwise.consensus.simulate\n"
        f"print(','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("method", METHODS)
def test_contract_shapes(method: str) -> None:
    """The ARCHITECTURE.md contract: labels (n_items,), posteriors (n_items, k) summing
    to 1, skills (n_reviewers, k, k) row-stochastic where the method has them."""
    c = simulate_crowd(200, {"reliable": 4, "noisy": 2}, n_classes=4, random_state=0)
    res = aggregate(
        c.items,
        c.reviewers,
        c.labels,
        method=method,
        n_classes=4,
        random_state=0,
    )
    assert res.labels.shape == (200,) and res.labels.dtype == np.int64
    assert res.posteriors.shape == (200, 4)
    np.testing.assert_allclose(res.posteriors.sum(axis=1), 1.0)
    assert np.array_equal(res.labels, res.posteriors.argmax(axis=1)) or method.endswith("majority")
    assert res.method == method
    if res.skills is not None:
        assert res.skills.shape == (6, 4, 4)
        np.testing.assert_allclose(res.skills.sum(axis=2), 1.0)
    else:
        assert method in ("majority", "weighted_majority")
    assert (res.labels == c.truth).mean() > 0.6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"items": [0, 1], "reviewers": [0], "labels": [0, 1]}, "same length"),
        ({"items": [0, -1], "reviewers": [0, 1], "labels": [0, 1]}, "items must be >= 0"),
        ({"items": [0, 1], "reviewers": [0, -2], "labels": [0, 1]}, "reviewers must be >= 0"),
        (
            {"items": [0, 1], "reviewers": [0, 1], "labels": [0, 3], "n_classes": 3},
            "n_classes=3 but labels go up to 3",
        ),
        (
            {"items": [0, 5], "reviewers": [0, 1], "labels": [0, 1], "n_items": 3},
            "n_items=3 but item ids go up to 5",
        ),
        (
            {"items": [0, 1], "reviewers": [0, 4], "labels": [0, 1], "n_reviewers": 2},
            "n_reviewers=2",
        ),
        ({"items": [0.5, 1], "reviewers": [0, 1], "labels": [0, 1]}, "must hold integers"),
        ({"items": [[0, 1]], "reviewers": [0, 1], "labels": [0, 1]}, "one-dimensional"),
        (
            {"items": [0, 1], "reviewers": [0, 1], "labels": [0, 1], "method": "vote"},
            "unknown method 'vote'",
        ),
        ({"items": [0, 1], "reviewers": [0, 1], "labels": [0, 1], "gold": {7: 0}}, "gold item ids"),
        (
            {"items": [0, 1], "reviewers": [0, 1], "labels": [0, 1], "gold": {0: 4}},
            "gold labels must be in",
        ),
        (
            {"items": [0, 1], "reviewers": [0, 1], "labels": [0, 1], "smoothing": -1.0},
            "smoothing must be >= 0",
        ),
        (
            {
                "items": [0, 1],
                "reviewers": [0, 1],
                "labels": [0, 1],
                "method": "mace",
                "init_skills": np.ones((2, 2, 2)) / 2,
            },
            "does not take init_skills",
        ),
        (
            {
                "items": [0, 1],
                "reviewers": [0, 1],
                "labels": [0, 1],
                "method": "weighted_majority",
                "weights": [1.0, -1.0],
            },
            "weights must be",
        ),
        (
            {
                "items": [0, 1],
                "reviewers": [0, 1],
                "labels": [0, 1],
                "init_skills": np.ones((3, 2, 2)) / 2,
            },
            r"init_skills must have shape \(2, 2, 2\)",
        ),
    ],
)
def test_bad_input_is_a_clear_value_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        aggregate(**kwargs)


def test_ties_are_split_at_random_not_first_seen() -> None:
    """4,000 items each with one vote for 0 (always seen first) and one for 1: a seeded
    random tie-break picks 0 about half the time (binomial sd 0.008; we allow 0.04),
    where "first seen" — or "first column" — would pick 0 every time. The same seed gives
    the same labels; another seed other labels."""
    n = 4000
    items = np.repeat(np.arange(n), 2)
    reviewers = np.tile([0, 1], n)
    labels = np.tile([0, 1], n)
    res = aggregate(items, reviewers, labels, method="majority", random_state=1)
    assert abs((res.labels == 0).mean() - 0.5) < 0.04
    np.testing.assert_allclose(res.posteriors, 0.5)
    again = aggregate(items, reviewers, labels, method="majority", random_state=1)
    assert np.array_equal(res.labels, again.labels)
    other = aggregate(items, reviewers, labels, method="majority", random_state=2)
    assert not np.array_equal(res.labels, other.labels)
    rng = np.random.default_rng(3)
    from_gen = aggregate(items, reviewers, labels, method="majority", random_state=rng)
    assert abs((from_gen.labels == 0).mean() - 0.5) < 0.04


def test_three_way_ties_are_uniform() -> None:
    """Ties among three labels: each picked a third of the time (sd 0.0075; allow 0.035)."""
    n = 4000
    items = np.repeat(np.arange(n), 3)
    res = aggregate(
        items,
        np.tile([0, 1, 2], n),
        np.tile([2, 0, 1], n),
        method="majority",
        n_classes=4,
        random_state=0,
    )
    shares = np.bincount(res.labels, minlength=4) / n
    np.testing.assert_allclose(shares[:3], 1 / 3, atol=0.035)
    assert shares[3] == 0


def test_majority_vote_shares_gold_and_unanswered() -> None:
    res = aggregate(
        [0, 0, 0, 1, 1],
        [0, 1, 2, 0, 1],
        [2, 2, 1, 0, 0],
        method="majority",
        n_classes=3,
        n_items=4,
        gold={3: 1},
        random_state=0,
    )
    np.testing.assert_allclose(res.posteriors[0], [0, 1 / 3, 2 / 3])
    assert res.labels.tolist()[:2] == [2, 0]
    assert res.unanswered.tolist() == [False, False, True, True]
    np.testing.assert_allclose(res.posteriors[2], res.prior)
    np.testing.assert_allclose(res.posteriors[3], [0, 1, 0])  # gold, even unanswered
    assert res.labels[3] == 1


def test_no_answers_at_all() -> None:
    res = aggregate([], [], [], method="dawid_skene", n_classes=3, n_items=2, random_state=0)
    assert res.unanswered.all()
    np.testing.assert_allclose(res.posteriors, 1 / 3)
    with pytest.raises(ValueError, match="n_classes must be >= 1"):
        aggregate([], [], [])


def test_weighted_majority_follows_the_weights() -> None:
    """One heavy reviewer outvotes two light ones; weights from skills give a spammer
    (chance accuracy) weight zero."""
    items, reviewers, labels = [0, 0, 0], [0, 1, 2], [1, 0, 0]
    heavy = aggregate(
        items,
        reviewers,
        labels,
        method="weighted_majority",
        weights=[5.0, 1.0, 1.0],
        random_state=0,
    )
    assert heavy.labels.tolist() == [1]
    np.testing.assert_allclose(heavy.posteriors[0], [2 / 7, 5 / 7])
    good = np.array([[0.9, 0.1], [0.1, 0.9]])
    chance = np.full((2, 2), 0.5)
    skills = np.stack([good, chance, chance])
    by_skill = aggregate(
        items, reviewers, labels, method="weighted_majority", skills=skills, random_state=0
    )
    np.testing.assert_allclose(by_skill.posteriors[0], [0, 1])
    with pytest.raises(ValueError, match="not both"):
        aggregate(
            items, reviewers, labels, method="weighted_majority", weights=[1, 1, 1], skills=skills
        )


def test_weighted_majority_beats_majority_on_a_mixed_crowd() -> None:
    """Weights from agreement with the majority (no skills given) beat the plain vote on
    each of 5 seeds of a crowd with spammers and noisy reviewers."""
    kinds = {"reliable": 8, "noisy": 6, "spammer": 6}
    for seed in range(5):
        c = simulate_crowd(3000, kinds, random_state=seed)
        acc = {
            m: (
                aggregate(c.items, c.reviewers, c.labels, method=m, random_state=0).labels
                == c.truth
            ).mean()
            for m in ("majority", "weighted_majority")
        }
        assert acc["weighted_majority"] > acc["majority"], acc
