"""The promotion gate: a challenger no worse on the holdout (exact one-sided McNemar) and
no less fair is promoted, otherwise rejected with the reason; rollback; retrain_every
queues a background job; the learning curve. Real data: breast-cancer cases."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sqlalchemy import delete, update

from loopwise import Conflict, Forbidden, Loop, NotFound
from loopwise.config import Settings
from loopwise.demo.data import breast_cancer_records
from loopwise.service.promotion import decide, mcnemar_worse
from loopwise.store.tables import decisions, reviews


@pytest.mark.parametrize("seed", range(20))
def test_mcnemar_matches_scipy_exact_binomial(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 60)
    a = np.where(rng.random(60) < 0.8, y, 1 - y)
    b = np.where(rng.random(60) < 0.7, y, 1 - y)
    got = mcnemar_worse(y, a, b)
    n = got["b"] + got["c"]
    want = binomtest(got["b"], n, 0.5, alternative="greater").pvalue if n else 1.0
    assert got["p_value"] == pytest.approx(want, rel=1e-12)


def test_a_wider_group_gap_is_rejected() -> None:
    y = np.array([0, 1] * 40)
    meta = [{"sex": "f" if i < 40 else "m"} for i in range(80)]
    champion = y.copy()
    champion[[0, 1, 40, 41]] = 1 - champion[[0, 1, 40, 41]]  # two errors in each group
    challenger = y.copy()
    challenger[:4] = 1 - challenger[:4]  # as many errors, all in group f
    v = decide(y, challenger=challenger, champion=champion, meta=meta, sensitive=["sex"],
               tolerance=0.05)
    assert not v.promote and "gap on 'sex'" in v.reason, v.reason
    assert decide(y, challenger=challenger, champion=champion, meta=meta, sensitive=["sex"],
                  tolerance=0.5).promote


def seeded(loop: Loop, name: str, n: int, policy: dict[str, Any] | None = None
           ) -> tuple[Any, Loop, list[dict[str, Any]], np.ndarray, list[str]]:
    records, y, labels = breast_cancer_records(random_state=0)
    project = loop.create_project(name, labels=labels, sensitive=["half"], policy=policy)
    recs = [{**r, "meta": {"half": "a" if i % 2 else "b"}} for i, r in enumerate(records)]
    out = project.submit(recs[:n])
    truth = {d["item_id"]: labels[int(c)] for d, c in zip(out, y[:n], strict=True)}
    if not any(u["name"] == "rev" for u in loop.service.list_users(loop.actor)):
        loop.create_user("rev", "reviewer")
    rev = loop.as_user("rev")
    while tasks := rev.project(name).claim(100):
        for t in tasks:
            rev.submit_task(t["task_id"], truth[t["item_id"]])
    return project, rev, recs, y, labels


def test_worse_challenger_is_rejected_and_rollback_restores(loop: Loop) -> None:
    project, _, _, _, _ = seeded(loop, "gate", 200)
    v1 = project.train()
    assert v1["status"] == "champion"
    assert v1["metrics"]["promotion"]["reason"].startswith("first model")
    bad = project.train(estimator=DummyClassifier(strategy="prior"))
    assert bad["status"] == "rejected"
    assert "less accurate than the champion" in bad["metrics"]["promotion"]["reason"]
    assert project.info["model"]["version"] == 1
    events = loop.audit_events(project="gate", type="model.rejected")
    assert json.loads(events[-1]["body"])["payload"]["version"] == 2

    # any scikit-learn estimator with predict_proba goes through the same gate
    forest = project.train(estimator=RandomForestClassifier(n_estimators=30))
    assert (forest["status"], forest["estimator"]) == ("champion", "RandomForestClassifier")
    assert forest["metrics"]["replaced"] == v1["id"]
    assert [m["status"] for m in project.models()] == ["retired", "rejected", "champion"]

    with pytest.raises(Conflict, match="not the champion"):
        project.rollback(1)
    with pytest.raises(NotFound):
        project.rollback(9)
    loop.create_user("svc", "service")
    with pytest.raises(Forbidden):
        loop.as_user("svc").project("gate").rollback(3)
    back = project.rollback(3)
    assert (back["version"], back["status"]) == (1, "champion")
    assert project.info["model"]["version"] == 1
    assert [m["status"] for m in project.models()] == ["champion", "rejected", "retired"]
    assert len(loop.audit_events(project="gate", type="model.rolled_back")) == 1
    with pytest.raises(Conflict, match="nothing to roll back to"):
        project.rollback(1)
    assert loop.verify_audit()["ok"]

    curve = project.metrics()["learning_curve"]
    assert [c["version"] for c in curve] == [1, 2, 3]
    acc = curve[0]["holdout_accuracy"]
    assert acc["n"] > 30 and acc["ci"][0] <= acc["estimate"] <= acc["ci"][1]
    assert acc["estimate"] > 0.85 and curve[0]["human_labels"] == v1["n_train"]
    assert project.metrics()["labels_by_source"] == {
        "seed": 200, "review": 0, "audit": 0, "pool_query": 0, "expert": 0}


def test_a_failing_job_is_recorded_and_leaves_the_champion(loop: Loop) -> None:
    project, rev, recs, _, labels = seeded(loop, "solo", 60)
    v1 = project.train()
    # people call every new case benign; trained on those alone, a model cannot exist
    project.update_policy(threshold=1.0)
    out = project.submit([{**r, "external_id": f"s-{i}"} for i, r in enumerate(recs[60:90])])
    for t in rev.project("solo").claim(100):
        rev.submit_task(t["task_id"], labels[0])
    ids = [d["item_id"] for d in out]
    with loop.service.unit() as u:  # forget the first labels: only the new ones remain
        u.conn.execute(update(decisions).where(decisions.c.item_id.not_in(ids))
                       .values(current=False))
        u.conn.execute(delete(reviews).where(reviews.c.item_id.not_in(ids)))
    job = loop.service.start_training(loop.actor, "solo")
    loop.service.run_job(job["job_id"])
    failed = loop.job(job["job_id"])
    assert failed["state"] == "failed" and "at least two classes" in failed["error"]
    assert project.info["model"]["version"] == v1["version"]
    assert [m["version"] for m in project.models()] == [1]


def test_retrain_every_queues_a_job_after_enough_labels(db_url: str) -> None:
    settings = Settings(database_url=db_url, run_jobs=False)
    with Loop(settings=settings) as loop:
        project, rev, recs, y, labels = seeded(loop, "auto", 60, policy={"retrain_every": 30})
        # 60 labels and no training yet: answering the seed batch queued one job
        jobs = [json.loads(e["body"])["payload"] for e in
                loop.audit_events(project="auto", type="job.queued")]
        assert len(jobs) == 1 and jobs[0]["trigger"] == "retrain_every"
        assert jobs[0]["human_labels"] == 30
        loop.service.run_job(jobs[0]["job_id"])
        assert loop.job(jobs[0]["job_id"])["result"]["status"] == "champion"
        # nothing more is due until 30 new labels arrive
        assert loop.service.retrain_if_due("auto") is None
        project.update_policy(threshold=1.0)  # every new item goes to people
        out = project.submit([{**r, "external_id": f"n-{i}"} for i, r in enumerate(recs[60:89])])
        truth = {d["item_id"]: labels[int(c)] for d, c in zip(out, y[60:89], strict=True)}
        for t in rev.project("auto").claim(100):
            rev.submit_task(t["task_id"], truth[t["item_id"]])
        assert loop.service.retrain_if_due("auto") is None  # 89 - 60 = 29 < 30
        more = project.submit([{**recs[89], "external_id": "n-last"}])
        [task] = rev.project("auto").claim(1)
        rev.submit_task(task["task_id"], labels[int(y[89])])
        queued = loop.audit_events(project="auto", type="job.queued")
        assert len(queued) == 2 and more
        assert json.loads(queued[-1]["body"])["payload"]["human_labels"] == 90


def test_weighted_holdout_accuracy_is_unbiased_where_the_plain_share_is_not() -> None:
    """The loop labels uncertain items (often wrong) far more than confident ones (rarely
    wrong): over 300 seeds the inclusion-weighted accuracy centres on the stream's true
    accuracy (tolerance 0.01, about 4 standard errors), the plain share far below it."""
    from loopwise.service.promotion import holdout_accuracy

    weighted, plain, truth = [], [], []
    for seed in range(300):
        rng = np.random.default_rng(seed)
        confident = rng.random(5000) < 0.8
        right = np.where(confident, rng.random(5000) < 0.98, rng.random(5000) < 0.7)
        pi = np.where(confident, 0.05, 1.0)  # audits vs reviews
        asked = rng.random(5000) < pi
        y = np.zeros(int(asked.sum()), dtype=np.int64)
        pred = np.where(right[asked], 0, 1).astype(np.int64)
        weighted.append(holdout_accuracy(y, pred, 1 / pi[asked])["estimate"])
        plain.append(holdout_accuracy(y, pred)["estimate"])
        truth.append(right.mean())
    assert abs(np.mean(weighted) - np.mean(truth)) < 0.01
    assert np.mean(truth) - np.mean(plain) > 0.1
