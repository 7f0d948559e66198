"""Fairness from the store: the four things, against group_metrics on the same arrays."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from loopwise.errors import InvalidInput
from loopwise.oversight import group_metrics


def fill(loop: Any, n: int = 300, seed: int = 0, shift: float = 0.0) -> list[dict[str, Any]]:
    """A project "t" (sex sensitive) with n items, every task answered by "ann"."""
    rng = np.random.default_rng(seed)
    if "t" not in [p["name"] for p in loop.projects()]:
        loop.create_project(
            "t",
            labels=["no", "yes"],
            sensitive=["sex"],
            policy={"threshold": 0.8, "audit_rate": 0.3},
        )
        loop.create_user("ann", "reviewer")
    sexes = ["f", "m", None]
    recs = [
        {
            "data": {"x": float(rng.normal(shift)), "c": ["a", "b"][i % 2]},
            "meta": {"sex": sexes[i % 3]},
        }
        for i in range(n)
    ]
    p1 = rng.uniform(size=n)
    out: list[dict[str, Any]] = loop.project("t").submit(recs, proba=np.c_[1 - p1, p1])
    ann = loop.as_user("ann")
    while tasks := ann.project("t").claim(100):
        for t in tasks:
            ann.submit_task(t["task_id"], "yes" if rng.uniform() < 0.5 else "no")
    return out


def test_model_fairness_matches_group_metrics_on_the_same_rows(loop: Any) -> None:
    out = fill(loop)
    rep = loop.service.fairness(loop.actor, "t")
    assert rep["positive"] == "yes"
    # The model thing: items with a human label, weighted by 1 / inclusion.
    ids, truth, pred, sex, w = [], [], [], [], []
    for d in out:
        it = loop.project("t").item(d["item_id"])
        if d["route"] == "auto":
            continue
        ids.append(d["item_id"])
        truth.append(it["decision"]["label"])
        pred.append(
            it["predictions"][0]["label"] if "predictions" in it else it["prediction"]["label"]
        )
        sex.append(it["meta"]["sex"] if "meta" in it else it["item"]["meta"]["sex"])
        w.append(1.0 if d["route"] != "audited" else 1 / 0.3)
    ref = group_metrics(truth, pred, {"sex": sex}, positive="yes", sample_weight=w)
    mine = rep["model"]["attributes"]["sex"]["groups"]
    assert rep["model"]["n"] == len(ids)
    for g, s in ref.by_group.items():
        assert mine[g]["n"] == s.n
        assert mine[g]["rates"]["tpr"]["estimate"] == pytest.approx(s.tpr.estimate, nan_ok=True)
    assert "unknown" in mine  # missing sex is its own group, reported
    for thing in ("reviewers", "decisions", "routing"):
        assert rep[thing]["status"] == "ok"
    assert rep["routing"]["overall"]["rates"]["review_rate"]["estimate"] == pytest.approx(
        sum(d["route"] != "auto" for d in out) / len(out)
    )


def test_positive_label_and_empty_projects(loop: Any) -> None:
    loop.create_project("e", labels=["a", "b", "c"], sensitive=["g"])
    rep = loop.service.fairness(loop.actor, "e", positive="c")
    assert rep["positive"] == "c" and rep["model"]["status"] == "no data"
    with pytest.raises(InvalidInput, match="positive"):
        loop.service.fairness(loop.actor, "e", positive="zzz")
    loop.create_project("none", labels=["a", "b"])
    assert "no sensitive" in loop.service.fairness(loop.actor, "none")["note"]


def test_metrics_carry_a_fairness_summary(loop: Any) -> None:
    fill(loop)
    m = loop.project("t").metrics()["fairness"]
    assert m["decisions"]["attribute"] == "sex"
    assert "demographic_parity_difference" in m["decisions"]["disparities"]
