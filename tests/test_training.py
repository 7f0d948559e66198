"""Feedback: people's labels train a model that then scores new items, in-process and as a
job over HTTP; versions are kept, single-class training is refused, artifacts reload.

Real data: scikit-learn's breast-cancer set (569 cases); reviewers answer with the true
diagnosis.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

import loopwise.service.training as training_module
from loopwise import Forbidden, InvalidInput, Loop
from loopwise.config import Settings
from loopwise.demo.data import breast_cancer_records
from loopwise.domain import in_holdout
from loopwise.server import create_app

N_SEED = 150


def outside_holdout(item_ids: Any) -> int:
    """How many of the items train: human labels in the holdout fold never do."""
    return sum(not in_holdout(int(i)) for i in item_ids)


@pytest.fixture
def data() -> tuple[list[dict[str, Any]], np.ndarray, list[str]]:
    return breast_cancer_records(random_state=0)


@pytest.fixture
def reviewer(loop: Loop) -> Loop:
    loop.create_user("rev", "reviewer")
    return loop.as_user("rev")


def answer_queue(reviewer: Loop, project: str, truth: dict[int, str]) -> list[int]:
    """The reviewer answers every task it can claim with the true label; the item ids."""
    done = []
    while tasks := reviewer.project(project).claim(100):
        for t in tasks:
            reviewer.submit_task(t["task_id"], truth[t["item_id"]], seconds=1.0)
            done.append(t["item_id"])
    return done


def seeded_project(loop: Loop, reviewer: Loop, name: str, records: list[dict[str, Any]],
                   y: np.ndarray, labels: list[str]) -> tuple[Any, list[dict[str, Any]]]:
    """A project whose first items (no model yet) were all reviewed with the truth."""
    project = loop.create_project(name, labels=labels)
    out = project.submit(records)
    assert {(d["route"], d["reason"], d["label"], d["confidence"]) for d in out} == {
        ("review", "no_model", None, None)
    }
    truth = {d["item_id"]: labels[int(c)] for d, c in zip(out, y, strict=True)}
    assert sorted(answer_queue(reviewer, name, truth)) == sorted(truth)
    return project, out


def test_breast_cancer_labels_train_a_model_that_scores_new_items(
    loop: Loop, reviewer: Loop, db_url: str, data: Any
) -> None:
    records, y, labels = data
    project, seeded = seeded_project(loop, reviewer, "bc", records[:N_SEED], y[:N_SEED], labels)
    n_seed = outside_holdout(d["item_id"] for d in seeded)
    assert 0.6 * N_SEED < n_seed < 0.8 * N_SEED
    assert project.info["model"] is None
    assert project.metrics()["human_labels"] == N_SEED

    m1 = project.train()
    assert (m1["version"], m1["status"], m1["n_train"]) == (1, "champion", n_seed)
    trained = [not in_holdout(d["item_id"]) for d in seeded]
    counts = np.bincount(y[:N_SEED][trained], minlength=2)
    assert m1["metrics"]["label_counts"] == {labels[0]: int(counts[0]), labels[1]: int(counts[1])}
    info_model = project.info["model"]
    assert (info_model["version"], info_model["status"], info_model["n_train"]) == (
        1, "champion", n_seed)
    assert project.models() == [m1]

    # the rest of the data, without probabilities: the champion scores it
    rest = project.submit(records[N_SEED:])
    threshold = project.info["policy"]["threshold"]
    for d in rest:
        conf = d["confidence"]
        assert conf is not None and 0.5 <= conf <= 1.0
        if conf >= threshold:
            assert d["route"] in ("auto", "audited")
            assert d["reason"] in ("confident", "audit_sample")
            assert d["label"] in labels
        else:
            assert (d["route"], d["reason"], d["label"]) == ("review", "uncertain", None)
    exported = {r["item_id"]: r for r in map(json.loads, project.export("jsonl").splitlines())}
    predicted = []
    for d in rest:
        pred = exported[d["item_id"]]["prediction"]
        assert pred["confidence"] == pytest.approx(d["confidence"])
        if d["label"] is not None:
            assert d["label"] == pred["label"]
        predicted.append(labels.index(pred["label"]))
    accuracy = float(np.mean(np.array(predicted) == y[N_SEED:]))
    assert accuracy > 0.9, accuracy
    routes = [d["route"] for d in rest]
    assert routes.count("auto") + routes.count("audited") > len(rest) / 2
    sample = rest[:25]
    stored = [project.item(d["item_id"])["prediction"] for d in sample]
    for d, pred in zip(sample, stored, strict=True):
        assert pred["model_version"] == 1
        assert pred["confidence"] == pytest.approx(max(pred["proba"])) == pytest.approx(
            d["confidence"])

    # the stored artifact, loaded by a fresh loop on the same database, agrees
    with Loop(db_url) as fresh:
        assert fresh.service._models == {}  # nothing cached: the model comes from the store
        again = fresh.project("bc").submit(
            [{**r, "external_id": "again-" + r["external_id"]}
             for r in records[N_SEED:N_SEED + len(sample)]])
        reloaded = [fresh.project("bc").item(d["item_id"])["prediction"] for d in again]
        assert len(fresh.service._models) == 1
    for first, other in zip(stored, reloaded, strict=True):
        assert other["model_version"] == 1
        np.testing.assert_allclose(other["proba"], first["proba"], rtol=1e-12, atol=1e-15)

    # people answer the uncertain and audited items; a second model replaces the first
    scored = rest + again
    y_scored = np.concatenate([y[N_SEED:], y[N_SEED:N_SEED + len(sample)]])
    truth = {d["item_id"]: labels[int(c)] for d, c in zip(scored, y_scored, strict=True)}
    answered = answer_queue(reviewer, "bc", truth)
    expected = [d["item_id"] for d in scored if d["route"] in ("review", "audited")]
    assert sorted(answered) == sorted(expected)
    m2 = project.train()
    # every reviewed item is a training label, also audited ones the reviewer confirmed
    assert (m2["version"], m2["status"], m2["n_train"]) == (
        2, "champion", n_seed + outside_holdout(expected))
    assert m2["metrics"]["promotion"]["mcnemar"]["p_value"] >= 0.05
    assert [(m["version"], m["status"]) for m in project.models()] == [
        (1, "retired"), (2, "champion")]
    assert project.info["model"]["version"] == 2
    new = project.submit([{**records[-1], "external_id": "latest"}])
    assert project.item(new[0]["item_id"])["prediction"]["model_version"] == 2
    for kind in ("model.trained", "model.promoted"):
        events = loop.audit_events(project="bc", type=kind)
        assert [json.loads(e["body"])["payload"]["version"] for e in events] == [1, 2]
    assert loop.verify_audit()["ok"]


def test_confirmed_audits_are_training_labels(loop: Loop, reviewer: Loop) -> None:
    """An automatic decision a reviewer confirmed on audit is a human label: it trains."""
    project = loop.create_project("audits", labels=["neg", "pos"], policy={"audit_rate": 1.0})
    xs = [float(x) for x in range(-5, 5)]
    out = project.submit([{"data": {"x": x}} for x in xs],
                         proba=[[0.95, 0.05] if x < 0 else [0.05, 0.95] for x in xs])
    assert {d["route"] for d in out} == {"audited"}
    for t in reviewer.project("audits").claim(20):
        reviewer.submit_task(t["task_id"], t["suggestion"]["label"])
    assert project.metrics()["reviews"] == len(xs)
    model = project.train()
    ids = [d["item_id"] for d in out]
    assert model["n_train"] == outside_holdout(ids)
    train_xs = [x for x, i in zip(xs, ids, strict=True) if not in_holdout(i)]
    assert model["metrics"]["label_counts"] == {
        "neg": sum(x < 0 for x in train_xs), "pos": sum(x >= 0 for x in train_xs)}


TEXTS = {
    "complaint": ["broken", "late", "refund", "rude", "damaged", "worst", "missing", "never"],
    "praise": ["great", "love", "fast", "friendly", "perfect", "excellent", "thanks", "wonderful"],
}
FILLER = ["the", "order", "delivery", "item", "service", "was", "my", "and", "it", "very"]


def sentences(n: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    labels = list(TEXTS)
    y = rng.integers(0, 2, size=n)
    out = []
    for c in y:
        words = [*rng.choice(TEXTS[labels[c]], 2, replace=False), *rng.choice(FILLER, 4)]
        out.append(" ".join(rng.permutation(words)))
    return out, y


def test_text_projects_train_and_score(loop: Loop, reviewer: Loop) -> None:
    rng = np.random.default_rng(7)
    labels = list(TEXTS)
    texts, y = sentences(60, rng)
    recs = [{"external_id": f"t-{i}", "data": {"text": t}} for i, t in enumerate(texts)]
    project = loop.create_project("reviews", labels=labels, input="text")
    out = project.submit(recs)
    truth = {d["item_id"]: labels[int(c)] for d, c in zip(out, y, strict=True)}
    answer_queue(reviewer, "reviews", truth)
    model = project.train()
    assert (model["version"], model["n_train"]) == (1, outside_holdout(truth))
    new_texts, new_y = sentences(40, rng)
    scored = project.submit([{"data": {"text": t}} for t in new_texts])
    assert all(d["confidence"] is not None for d in scored)
    preds = [project.item(d["item_id"])["prediction"] for d in scored]
    assert {p["model_version"] for p in preds} == {1}
    accuracy = np.mean([labels.index(p["label"]) == c for p, c in zip(preds, new_y, strict=True)])
    assert accuracy >= 0.9, accuracy
    # a text model does not accept tabular data: the batch is refused, nothing written
    with pytest.raises(InvalidInput, match="text"):
        project.submit([{"data": {"words": 3}}])
    assert project.metrics()["items"] == 100


def test_one_class_is_refused_and_changes_nothing(
    loop: Loop, reviewer: Loop, data: Any
) -> None:
    records, y, labels = data
    benign = [r for r, c in zip(records, y, strict=True) if labels[c] == "benign"][:6]
    project, _ = seeded_project(loop, reviewer, "one", benign, np.ones(6, dtype=int), labels)
    with pytest.raises(InvalidInput) as err:
        project.train()
    assert "'benign'" in str(err.value)
    assert project.info["model"] is None
    assert project.models() == []
    assert loop.audit_events(project="one", type="model.trained") == []
    # one label of the other class later, and training works: version 1, nothing consumed
    malignant = next(r for r, c in zip(records, y, strict=True) if labels[c] == "malignant")
    out = project.submit([malignant])
    answer_queue(reviewer, "one", {out[0]["item_id"]: "malignant"})
    assert project.train()["version"] == 1
    # training is for admins and services
    with pytest.raises(Forbidden):
        reviewer.project("one").train()


def test_concurrent_trainings_get_their_own_versions(
    loop: Loop, reviewer: Loop, data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two trainings that finish fitting at the same moment both land, as versions 2 and 3,
    with exactly one champion (the version numbers must not collide): the first promoted,
    the second rejected, as the champion it was compared with is no longer the champion."""
    records, y, labels = data
    project, _ = seeded_project(loop, reviewer, "race", records[:40], y[:40], labels)
    project.train()
    barrier = threading.Barrier(2, timeout=60)
    real_fit = training_module.fit_model

    def fit_then_wait(*args: Any, **kwargs: Any) -> Any:
        model = real_fit(*args, **kwargs)
        barrier.wait()
        return model

    monkeypatch.setattr(training_module, "fit_model", fit_then_wait)
    results: list[Any] = []

    def train() -> None:
        try:
            results.append(project.train())
        except Exception as exc:  # recorded to be shown by the assertion
            results.append(exc)

    threads = [threading.Thread(target=train) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(isinstance(r, dict) for r in results), results
    assert sorted(r["version"] for r in results) == [2, 3]
    statuses = [(m["version"], m["status"]) for m in project.models()]
    assert statuses == [(1, "retired"), (2, "champion"), (3, "rejected")]
    assert project.info["model"]["version"] == 2
    rejected = project.models()[2]["metrics"]["promotion"]
    assert rejected["reason"] == "the champion changed while this model trained"


# -- over HTTP: training jobs


@pytest.fixture
def tokens(loop: Loop) -> dict[str, str]:
    return {role: loop.create_user(f"{role}-1", role)["token"]
            for role in ("admin", "reviewer", "service")}


@pytest.fixture
def http_no_jobs(db_url: str) -> Iterator[TestClient]:
    """The API with no job runner in its process (jobs run elsewhere, by a worker)."""
    with TestClient(create_app(Settings(database_url=db_url, run_jobs=False))) as client:
        yield client


def poll(http: TestClient, job_id: int, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        r = http.get(f"/api/v1/jobs/{job_id}", headers=headers)
        assert r.status_code == 200, r.text
        job = r.json()
        if job["state"] not in ("queued", "running") or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def test_training_jobs_over_http(
    loop: Loop, reviewer: Loop, data: Any, db_url: str, tokens: dict[str, str],
    http_no_jobs: TestClient,
) -> None:
    records, y, labels = data
    seeded_project(loop, reviewer, "bc", records[:80], y[:80], labels)
    seeded_project(loop, reviewer, "one", [records[i] for i in np.flatnonzero(y == 1)[:5]],
                   np.ones(5, dtype=int), labels)
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    service = {"Authorization": f"Bearer {tokens['service']}"}
    as_reviewer = {"Authorization": f"Bearer {tokens['reviewer']}"}
    http = http_no_jobs

    # queued; asking again while it waits returns the same job
    r = http.post("/api/v1/projects/bc/train", headers=admin)
    assert r.status_code == 202, r.text
    job = r.json()
    assert (job["state"], job["project"], job["kind"], job["result"]) == (
        "queued", "bc", "train", None)
    r2 = http.post("/api/v1/projects/bc/train", headers=service)
    assert r2.status_code == 202 and r2.json()["job_id"] == job["job_id"]
    assert r2.json()["state"] == "queued"
    forbidden = http.post("/api/v1/projects/bc/train", headers=as_reviewer)
    assert forbidden.status_code == 403, forbidden.text
    assert http.get(f"/api/v1/jobs/{job['job_id']}", headers=as_reviewer).status_code == 403
    assert http.get("/api/v1/jobs/999999", headers=admin).status_code == 404
    waiting = http.get(f"/api/v1/jobs/{job['job_id']}", headers=admin).json()
    assert (waiting["state"], waiting["started_at"]) == ("queued", None)

    # a worker (another process on the same database) runs it; polling sees it done
    loop.service.run_job(job["job_id"])
    done = poll(http, job["job_id"], admin)
    assert (done["state"], done["result"], done["error"]) == (
        "done", {"model_version": 1, "status": "champion"}, None)
    assert done["finished_at"] is not None
    project = http.get("/api/v1/projects/bc", headers=service).json()
    assert (project["model"]["version"], project["model"]["status"]) == (1, "champion")
    models = http.get("/api/v1/projects/bc/models", headers=service).json()
    assert [(m["version"], m["status"]) for m in models] == [(1, "champion")]
    assert 0.6 * 80 < models[0]["n_train"] < 0.8 * 80  # the holdout fold does not train
    # a job that is over is not returned again: a new one is queued
    r3 = http.post("/api/v1/projects/bc/train", headers=admin)
    assert r3.status_code == 202 and r3.json()["job_id"] != job["job_id"]
    loop.service.run_job(r3.json()["job_id"])
    assert poll(http, r3.json()["job_id"], admin)["result"]["model_version"] == 2

    # a server that runs its own jobs: one that cannot succeed fails, with the reason
    with TestClient(create_app(Settings(database_url=db_url))) as runner:
        r = runner.post("/api/v1/projects/one/train", headers=admin)
        assert r.status_code == 202, r.text
        failed = poll(runner, r.json()["job_id"], admin)
        assert failed["state"] == "failed", failed
        assert "'benign'" in failed["error"] and "two classes" in failed["error"]
        assert failed["result"] is None
        assert runner.get("/api/v1/projects/one", headers=admin).json()["model"] is None
        assert runner.get("/api/v1/projects/one/models", headers=admin).json() == []
        # and one that can, succeeds
        r = runner.post("/api/v1/projects/bc/train", headers=admin)
        assert poll(runner, r.json()["job_id"], admin)["result"]["model_version"] == 3
    counts = {kind: len(loop.audit_events(type=kind))
              for kind in ("job.queued", "job.done", "job.failed")}
    assert counts == {"job.queued": 4, "job.done": 3, "job.failed": 1}
