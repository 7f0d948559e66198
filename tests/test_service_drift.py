"""Drift from the store: no drift on the same distribution, a major one on a shift."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from loopwise.service import drift
from tests.test_service_fairness import fill


def test_a_shift_in_inputs_is_major_and_no_shift_is_not(loop: Any) -> None:
    fill(loop, n=1200, seed=1)
    rep = loop.service.drift(loop.actor, "t")
    assert rep["reference"]["inputs"].startswith("first items")
    w = rep["windows"][0]
    assert w["features"]["x"]["status"] == "ok" and w["features"]["c"]["status"] == "ok"
    fill(loop, n=600, seed=2, shift=1.5)
    w = loop.service.drift(loop.actor, "t")["windows"][0]
    assert w["features"]["x"]["status"] == "major" and "x" in w["drifted"]
    assert w["features"]["c"]["status"] == "ok"
    summary = loop.project("t").metrics()["drift"]["windows"][0]
    assert summary["psi_max"] > 0.25


def answer(
    loop: Any, n: int, seed: int, p_yes: float, agree: float | None = None, numeric: bool = False
) -> None:
    """n more items for project "t" (``numeric``: feature "c" as 0 / 1); "ann" answers
    every task "yes" with probability ``p_yes``, or, with ``agree`` set, the model's label
    with that probability (the other otherwise)."""
    rng = np.random.default_rng(seed)
    p1 = rng.uniform(size=n)
    cs: Any = [0.0, 1.0] if numeric else "ab"
    recs = [{"data": {"x": float(rng.normal()), "c": cs[i % 2]}, "meta": {}} for i in range(n)]
    out = loop.project("t").submit(recs, proba=np.c_[1 - p1, p1])
    model = {d["item_id"]: "yes" if q > 0.5 else "no" for d, q in zip(out, p1, strict=True)}
    ann = loop.as_user("ann")
    while tasks := ann.project("t").claim(100):
        for t in tasks:
            if agree is None:
                label = "yes" if rng.uniform() < p_yes else "no"
            else:
                m = model[t["item_id"]]
                label = m if rng.uniform() < agree else {"yes": "no", "no": "yes"}[m]
            ann.submit_task(t["task_id"], label)


def test_a_shift_in_reviewers_answers_is_flagged_and_no_shift_is_not(loop: Any) -> None:
    fill(loop, n=1000, seed=3)  # ann answers at random: half "yes", agreeing half the time
    rep = loop.service.drift(loop.actor, "t")["reviewers"]
    assert rep["reference"]["answers"].startswith("first half of the answers")
    w = rep["windows"][0]
    assert w["n"] >= 200 and w["status"] == "ok" and w["drifted"] == []
    assert w["features"]["answers"]["decided_by"] == "js"
    answer(loop, n=700, seed=4, p_yes=0.9)
    w = loop.service.drift(loop.actor, "t")["reviewers"]["windows"][0]
    assert w["features"]["answers"]["status"] == "major" and "answers" in w["drifted"]
    assert w["features"]["agreement"]["status"] == "ok"
    summary = loop.project("t").metrics()["drift"]["reviewers"]["windows"][0]
    assert summary["status"] == "major" and summary["answers_js"] > 0.21


def test_reviewers_agreeing_with_the_model_is_a_rate_drift(loop: Any) -> None:
    fill(loop, n=1000, seed=5)
    answer(loop, n=700, seed=6, p_yes=0.5, agree=0.95)
    w = loop.service.drift(loop.actor, "t")["reviewers"]["windows"][0]
    agreement = w["features"]["agreement"]
    assert agreement["status"] == "major" and agreement["kind"] == "rate"
    assert agreement["difference"]["estimate"] > 0.3  # from about 0.5 to about 0.9
    summary = loop.project("t").metrics()["drift"]["reviewers"]["windows"][0]
    assert summary["agreement_psi"] == agreement["psi"]
    assert summary["agreement_difference"] == agreement["difference"]


def test_reviewer_drift_without_answers_is_insufficient(loop: Any) -> None:
    loop.create_project("e", labels=["a", "b"])
    rep = loop.service.drift(loop.actor, "e")["reviewers"]
    assert rep["reference"]["n"] == 0
    assert all(w["status"] == "insufficient" and w["n"] == 0 for w in rep["windows"])
    loop.project("e").submit([{"data": {"x": 1.0}}] * 50, proba=np.full((50, 2), 0.5))
    w = loop.service.drift(loop.actor, "e")["reviewers"]["windows"][0]
    assert w["status"] == "insufficient" and w["features"] == {}


def test_metrics_reuse_the_oversight_summaries_until_something_changes(
    loop: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(loop, n=300, seed=7)
    calls = {"drift": 0, "fairness": 0}

    def counted(name: str, f: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return f(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(drift, "drift_from_store", counted("drift", drift.drift_from_store))
    monkeypatch.setattr(drift, "fairness_report", counted("fairness", drift.fairness_report))
    loop.service.oversight_cache.clear()
    first = loop.project("t").metrics()
    assert calls == {"drift": 1, "fairness": 1}
    first["drift"]["windows"].clear()  # callers get a copy
    second = loop.project("t").metrics()
    assert calls == {"drift": 1, "fairness": 1}  # within the TTL, nothing new: cached
    assert second["drift"]["windows"] and second["fairness"] == first["fairness"]
    loop.project("t").submit(
        [{"data": {"x": 0.0, "c": "a"}, "meta": {"sex": "f"}}], proba=[[0.9, 0.1]]
    )
    third = loop.project("t").metrics()
    assert calls == {"drift": 2, "fairness": 2}  # a new item: computed again
    assert third["fairness"]["routing"]["n"] == first["fairness"]["routing"]["n"] + 1
    loop.service.oversight_cache.ttl = 0.0  # expired: computed on every call
    loop.project("t").metrics()
    assert calls == {"drift": 3, "fairness": 3}
    # the full reports are exact: never cached
    loop.service.drift(loop.actor, "t")
    assert calls["drift"] == 4


def test_reviewer_reference_is_the_answers_before_the_champion(loop: Any) -> None:
    loop.create_project("t", labels=["no", "yes"], policy={"threshold": 0.8, "audit_rate": 0.3})
    loop.create_user("ann", "reviewer")
    answer(loop, n=600, seed=8, p_yes=0.5, numeric=True)  # a model needs numbers
    n_before = loop.project("t").metrics()["reviews"]
    assert loop.project("t").train()["status"] == "champion"
    answer(loop, n=700, seed=9, p_yes=0.9, numeric=True)
    rep = loop.service.drift(loop.actor, "t")["reviewers"]
    assert rep["reference"] == {
        "answers": "answers given before model version 1 was trained",
        "n": n_before,
    }
    w = rep["windows"][0]
    assert w["n"] == 500 and w["features"]["answers"]["status"] == "major"


def test_an_alert_watches_the_reviewers_answers(loop: Any) -> None:
    """A rule on drift.reviewers.answers_js fires when reviewers' answers shift."""
    fill(loop, n=1000, seed=7)
    loop.project("t").update_policy(alerts=[{
        "name": "answers", "metric": "drift.reviewers.answers_js", "above": 0.21,
        "min_n": 200, "action": "notify"}])
    states = {a["rule"]["name"]: a for a in loop.service.evaluate_alerts(loop.actor, "t")}
    assert states["answers"]["state"] == "ok"
    answer(loop, n=700, seed=8, p_yes=0.9)
    states = {a["rule"]["name"]: a for a in loop.service.evaluate_alerts(loop.actor, "t")}
    assert states["answers"]["state"] == "confirmed" and states["answers"]["value"] > 0.21
    with pytest.raises(Exception, match="unknown metric"):
        loop.project("t").update_policy(alerts=[{
            "name": "x", "metric": "drift.reviewers.nope", "above": 1}])
