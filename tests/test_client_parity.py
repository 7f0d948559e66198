"""``Loop`` (in-process) and ``Client`` (HTTP) offer the same verbs with the same results.

One scenario, written once against the verbs, runs on an in-process ``Loop`` and on a
``Client`` talking to a live server (each on a fresh database of the same kind, so that
ids line up). Every result is compared after masking what legitimately differs between
two runs (timestamps, tokens, hashes); errors must be the same exception types.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import loopwise
from loopwise import Client, Conflict, Forbidden, InvalidInput, Loop, NotFound

LABELS = ["cat", "dog"]
PROJECT = "parity"

VOLATILE = {
    "created_at",
    "lease_expires_at",
    "oldest_open_at",
    "started_at",
    "finished_at",
    "at",
    "token",
    "hash",
    "prev_hash",
    "head_hash",
    "artifact_sha256",
}
"""Keys whose values differ between any two runs (clock, randomness, chain hashes)."""


def mask(obj: Any) -> Any:
    """``obj`` with the values of volatile keys replaced, recursively."""
    if isinstance(obj, dict):
        return {k: "<masked>" if k in VOLATILE else mask(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [mask(v) for v in obj]
    return obj


def plain(obj: Any) -> Any:
    """What the value looks like after a JSON round trip (tuples to lists ...)."""
    return json.loads(json.dumps(obj))


def error_type(fn: Callable[[], Any]) -> type[BaseException] | None:
    try:
        fn()
    except loopwise.LoopwiseError as exc:
        return type(exc)
    return None


def scenario(admin: Any, as_user: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """The whole loop through the public verbs; ``admin`` is a Loop or a Client acting as
    an admin, ``as_user(created_user)`` the same kind of object acting as that user."""
    out: dict[str, Any] = {}
    rev_user = admin.create_user("rita", "reviewer")
    exp_user = admin.create_user("ezra", "expert")
    out["create_user"] = rev_user
    assert set(rev_user) == {"id", "name", "role", "token"}
    assert rev_user["token"].startswith("lw_")
    reviewer, expert = as_user(rev_user), as_user(exp_user)

    project = admin.create_project(
        PROJECT, labels=LABELS, sensitive=["group"],
        policy={"threshold": 0.8, "audit_rate": 0.0},
    )
    assert project.name == PROJECT
    out["info"] = project.info
    assert admin.project(PROJECT).name == PROJECT

    # -- submit: with probabilities (auto / review), then without (no model yet: review)
    given = project.submit(
        [
            {"external_id": "a-1", "data": {"x": 0.1, "y": 1.0}, "meta": {"group": "g1"}},
            {"external_id": "a-2", "data": {"x": 0.5, "y": 0.0}, "meta": {"group": "g2"}},
            {"external_id": "a-3", "data": {"x": 0.9, "y": 1.0}, "meta": {"group": "g1"}},
        ],
        proba=[[0.95, 0.05], [0.6, 0.4], [0.1, 0.9]],
    )
    out["submit_proba"] = given
    assert [d["route"] for d in given] == ["auto", "review", "auto"]
    assert [d["reason"] for d in given] == ["confident", "uncertain", "confident"]
    assert [d["label"] for d in given] == ["cat", None, "dog"]
    assert [d["confidence"] for d in given] == [0.95, 0.6, 0.9]
    bare = project.submit([
        {"external_id": "b-1", "data": {"x": 2.0, "y": 3.0}, "meta": {"group": "g2"}},
        {"external_id": "b-2", "data": {"x": -1.0, "y": -2.0}, "meta": {"group": "g1"}},
    ])
    out["submit_bare"] = bare
    assert [(d["route"], d["reason"], d["label"], d["confidence"]) for d in bare] == [
        ("review", "no_model", None, None)
    ] * 2
    again = project.submit([{"external_id": "a-1", "data": {"x": 0.1, "y": 1.0}}])
    out["submit_again"] = again
    assert again[0]["item_id"] == given[0]["item_id"] and again[0]["label"] == "cat"
    ids = {d["external_id"]: d["item_id"] for d in given + bare}

    out["item_auto"] = project.item(ids["a-1"])
    out["item_bare"] = project.item(ids["b-1"])
    assert out["item_auto"]["decision"]["source"] == "model"
    assert out["item_bare"]["prediction"] is None

    # -- a reviewer claims, releases, claims again, answers, escalates
    rp = reviewer.project(PROJECT)
    first = rp.claim()
    out["claim_1"] = first
    assert [t["item_id"] for t in first] == [ids["a-2"]]
    assert first[0]["suggestion"] == {"label": "cat", "confidence": 0.6}
    out["release"] = reviewer.release(first[0]["task_id"])
    assert out["release"]["state"] == "open"
    claimed = rp.claim(2)
    out["claim_2"] = claimed
    assert [t["item_id"] for t in claimed] == [ids["a-2"], ids["b-1"]]
    out["answer"] = reviewer.submit_task(claimed[0]["task_id"], "cat", comment="ok", seconds=3)
    assert out["answer"]["label"] == "cat"
    out["escalate"] = reviewer.escalate(claimed[1]["task_id"], "not sure")
    assert out["escalate"]["state"] == "cancelled"
    esc = expert.project(PROJECT).claim()
    out["claim_expert"] = esc
    assert [(t["item_id"], t["kind"]) for t in esc] == [(ids["b-1"], "expert")]
    out["expert_answer"] = expert.submit_task(esc[0]["task_id"], "dog", seconds=10)
    last = rp.claim()
    assert [t["item_id"] for t in last] == [ids["b-2"]]
    out["last_answer"] = reviewer.submit_task(last[0]["task_id"], "cat", seconds=1.5)
    assert rp.claim() == []

    # -- the same errors, as the same types
    out["errors"] = {
        "unknown project": error_type(lambda: admin.project("no-such-project")),
        "unknown item": error_type(lambda: project.item(10**9)),
        "task done": error_type(lambda: reviewer.submit_task(claimed[0]["task_id"], "cat")),
        "reviewer creates a project": error_type(
            lambda: reviewer.create_project("mine", labels=LABELS)),
        "reviewer trains": error_type(lambda: rp.train()),
        "bad policy": error_type(lambda: project.update_policy(threshold=3)),
    }
    extra = project.submit([{"external_id": "c-1", "data": {"x": 0.3, "y": 0.3}}],
                           proba=[[0.5, 0.5]])
    task = rp.claim()[0]
    out["errors"]["bad label"] = error_type(lambda: reviewer.submit_task(task["task_id"], "cow"))
    reviewer.release(task["task_id"])
    out["submit_tie"] = extra

    out["metrics"] = project.metrics()
    assert out["metrics"]["items"] == 6
    assert out["metrics"]["decisions_by_source"] == {"model": 2, "reviewer": 2, "expert": 1}

    # -- learn: the human labels (a-2 cat, b-1 dog, b-2 cat) outside the holdout train
    # version 1 (one of the three is in the holdout fold); the first model is promoted
    out["train"] = project.train()
    assert (out["train"]["version"], out["train"]["status"], out["train"]["n_train"]) == (
        1, "champion", 2)
    out["models"] = project.models()
    assert [m["version"] for m in out["models"]] == [1]
    # -- oversight: the same figures in-process and over HTTP
    out["fairness"] = project.fairness()
    assert set(out["fairness"]) >= {"model", "decisions", "routing"}
    out["drift"] = project.drift()
    out["alerts"] = project.alerts()
    report = project.report("json")
    assert isinstance(report, dict)
    out["report_keys"] = sorted(report)
    html = project.report()
    assert isinstance(html, str) and html.lstrip().lower().startswith("<!doctype html")
    scored = project.submit([{"external_id": "d-1", "data": {"x": 1.5, "y": 2.5}},
                             {"external_id": "d-2", "data": {"x": 0.0, "y": -1.0}}])
    out["submit_scored"] = scored
    assert all(d["confidence"] is not None and d["reason"] != "no_model" for d in scored)
    out["item_scored"] = project.item(scored[0]["item_id"])
    assert out["item_scored"]["prediction"]["model_version"] == 1

    # -- a project whose people gave one label only cannot train, the same way
    solo = admin.create_project("solo", labels=LABELS)
    solo.submit([{"data": {"x": 1.0}}, {"data": {"x": 2.0}}])
    for t in reviewer.project("solo").claim(2):
        reviewer.submit_task(t["task_id"], "dog")
    with pytest.raises(InvalidInput, match="'dog'") as failed:
        solo.train()
    out["errors"]["one class"] = type(failed.value)
    assert solo.info["model"] is None and solo.models() == []

    # -- policy: the stop switch sends everything to people
    out["policy"] = project.update_policy(stopped=True, reason="parity check")
    assert out["policy"]["policy"]["stopped"] is True and out["policy"]["policy_version"] == 2
    stopped = project.submit([{"external_id": "e-1", "data": {"x": 0.0}}], proba=[[1.0, 0.0]])
    out["submit_stopped"] = stopped
    assert (stopped[0]["route"], stopped[0]["reason"]) == ("review", "stopped")
    out["info_after"] = project.info

    # -- export in every format, audit trail
    for fmt in ("jsonl", "csv", "label-studio"):
        out[f"export_{fmt}"] = project.export(fmt)
    out["export_decided"] = project.export("jsonl", decided_only=True)
    rows = [json.loads(line) for line in out["export_jsonl"].splitlines()]
    decided = [json.loads(line) for line in out["export_decided"].splitlines()]
    # 5: the model trained on two labels is unsure of d-1 and d-2, which wait for people
    assert decided == [r for r in rows if r["decision"] is not None] and len(decided) == 5
    assert {r["external_id"]: r["route"] for r in rows}.keys() >= {"d-1", "d-2"}
    assert {r["route"] for r in rows if r["external_id"] in ("d-1", "d-2")} == {"review"}
    assert [r["item_id"] for r in rows] == sorted(r["item_id"] for r in rows)
    assert len(rows) == len(list(csv.reader(io.StringIO(out["export_csv"])))) - 1 == 9
    assert len(json.loads(out["export_label-studio"])) == 9
    out["export_errors"] = {
        "format": error_type(lambda: project.export("xml")),
        "reviewer": error_type(lambda: rp.export("jsonl")),
    }
    out["verify"] = admin.verify_audit()
    assert out["verify"]["ok"] is True and out["verify"]["problem"] is None
    # filters left at None filter nothing (as in-process)
    out["events"] = admin.audit_events(project=PROJECT, type=None, limit=1000)
    assert {e["project"] for e in out["events"]} == {PROJECT}
    assert len(out["events"]) > 20
    out["events_decisions"] = admin.audit_events(type="decision.made")
    assert len(out["events_decisions"]) == 5  # 3 here, 2 in "solo"
    out["errors"]["reviewer reads audit"] = error_type(lambda: reviewer.audit_events())
    return out


def comparable(key: str, value: Any) -> Any:
    if key in ("errors", "export_errors"):
        return {k: None if v is None else v.__name__ for k, v in value.items()}
    value = mask(plain(value))
    if key == "verify":
        # the HTTP run has training-job events besides; the chain's length differs
        return {k: v for k, v in value.items()
                if k not in ("events", "head_seq", "summary", "root", "stopped")}
    if key.startswith("events"):
        kept = []
        for e in value:
            if e["type"].startswith("job."):
                continue  # only the HTTP run trains in a background job
            body = json.loads(e["body"])
            actor = e["actor"]
            if e["type"].startswith("model."):
                actor = "<trainer>"  # the job's own identity over HTTP
            kept.append({"type": e["type"], "project": e["project"], "actor": actor,
                         "payload": mask(body["payload"])})
        return kept
    return value


@pytest.fixture
def other_db_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second fresh database of the same kind as ``db_url``."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'in-process.db'}"
        return
    import psycopg

    base, _, _name = db_url.rpartition("/")
    name = f"lw_test_{uuid.uuid4().hex[:12]}"
    admin_dsn = db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bootstrap_admin(url: str) -> str:
    """Create the user "admin" on the database at ``url``; its token."""
    with Loop(url) as lp:
        return str(lp.create_user("admin", "admin")["token"])


def test_loop_and_client_give_the_same_results(live_server: Any, other_db_url: str) -> None:
    # in-process
    bootstrap_admin(other_db_url)
    with Loop(other_db_url, random_state=0) as lp:
        local = scenario(lp.as_user("admin"), lambda u: lp.as_user(u["name"]))
    # over HTTP
    token = bootstrap_admin(live_server.db_url)
    clients: list[Client] = []

    def client_for(user: dict[str, Any]) -> Client:
        c = Client(live_server.url, token=user["token"])
        clients.append(c)
        return c

    try:
        remote = scenario(client_for({"token": token}), client_for)
    finally:
        for c in clients:
            c.close()

    assert set(local) == set(remote)
    expected_errors = {
        "unknown project": NotFound,
        "unknown item": NotFound,
        "task done": Conflict,
        "reviewer creates a project": Forbidden,
        "reviewer trains": Forbidden,
        "bad policy": InvalidInput,
        "bad label": InvalidInput,
        "reviewer reads audit": Forbidden,
        "one class": InvalidInput,
    }
    assert local["errors"] == expected_errors
    assert local["export_errors"] == {"format": InvalidInput, "reviewer": Forbidden}
    mismatched = {}
    for key in local:
        a, b = comparable(key, local[key]), comparable(key, remote[key])
        if a != b:
            mismatched[key] = {"loop": a, "client": b}
    assert not mismatched, json.dumps(mismatched, indent=1, default=str)[:6000]
    # the model trained the same way on both sides gives the same probabilities
    pa = local["item_scored"]["prediction"]["proba"]
    pb = remote["item_scored"]["prediction"]["proba"]
    assert all(math.isclose(x, y, rel_tol=1e-9) for x, y in zip(pa, pb, strict=True))


@pytest.mark.skipif(importlib.util.find_spec("pandas") is None, reason="pandas not installed")
def test_dataframe_records(live_server: Any, other_db_url: str) -> None:
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({
        "external_id": ["r-1", "r-2", "r-3"],
        "age": [34.0, np.nan, 61.0],
        "income": [1200, 800, 4000],
        "sex": ["f", "m", None],
    })
    token = bootstrap_admin(live_server.db_url)
    with Loop(other_db_url) as lp, Client(live_server.url, token=token) as client:
        for backend in (lp, client):
            project = backend.create_project("frame", labels=LABELS, sensitive=["sex"],
                                             policy={"audit_rate": 0.0})
            out = project.submit(frame, proba=[[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
            assert [d["external_id"] for d in out] == ["r-1", "r-2", "r-3"]
            assert [d["route"] for d in out] == ["auto", "review", "review"]
            items = [project.item(d["item_id"]) for d in out]
            assert [it["external_id"] for it in items] == ["r-1", "r-2", "r-3"]
            assert [it["data"] for it in items] == [
                {"age": 34.0, "income": 1200},
                {"age": None, "income": 800},
                {"age": 61.0, "income": 4000},
            ]
            assert [it["meta"] for it in items] == [{"sex": "f"}, {"sex": "m"}, {"sex": None}]


def test_submit_reply_says_who_decided(db_url: str) -> None:
    """A submit reply has the same fields for new and repeated items, in-process and over
    HTTP, and a decided item's reply names who decided it (here: the model)."""
    from starlette.testclient import TestClient

    from loopwise.config import Settings
    from loopwise.server import create_app

    token = bootstrap_admin(db_url)
    records = [{"external_id": "s-1", "data": {"x": 1.0}}, {"external_id": "s-2", "data": {}}]
    proba = [[0.99, 0.01], [0.5, 0.5]]
    with Loop(db_url) as lp:
        project = lp.create_project("who", labels=LABELS, policy={"audit_rate": 0.0})
        fresh = project.submit(records, proba=proba)
        repeat = project.submit(records, proba=proba)
    app = create_app(Settings(database_url=db_url, run_jobs=False))
    with TestClient(app) as http:
        r = http.post("/api/v1/projects/who/items",
                      headers={"Authorization": f"Bearer {token}"},
                      json={"items": [{**rec, "external_id": f"h{rec['external_id']}",
                                       "proba": p} for rec, p in zip(records, proba, strict=True)]})
        assert r.status_code == 200, r.text
        over_http = r.json()["decisions"]
    assert [d["route"] for d in fresh] == ["auto", "review"]
    assert fresh == repeat
    assert [set(d) for d in over_http] == [set(d) for d in fresh]
    assert [d.get("decided_by") for d in fresh] == ["model", None]
    assert [d.get("decided_by") for d in over_http] == ["model", None]
