"""Export: every item with its prediction, route, decision and reviews, as JSON Lines, CSV
or Label Studio tasks; in-process and over HTTP, streamed in item order."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from loopwise import Forbidden, InvalidInput, Loop
from loopwise.config import Settings
from loopwise.server import create_app

LABELS = ["no", "yes"]
CSV_HEADER = [
    "item_id", "external_id", "route", "reason", "predicted", "confidence", "label", "source",
    "reviews", "review_labels", "data", "meta",
]
ROW_KEYS = {"item_id", "external_id", "data", "meta", "route", "reason", "prediction",
            "decision", "reviews"}


@pytest.fixture
def tokens(loop: Loop) -> dict[str, str]:
    return {name: loop.create_user(name, role)["token"]
            for name, role in (("rev", "reviewer"), ("exp", "expert"), ("svc", "service"))}


@pytest.fixture
def http(db_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=db_url, run_jobs=False))) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# What each item of the small loop ends up as: route, reason, prediction, decision, reviews.
EXPECTED: dict[str, dict[str, Any]] = {
    "e-auto": {"route": "auto", "reason": "confident",
               "prediction": {"label": "no", "confidence": 0.97},
               "decision": {"label": "no", "source": "model"}, "reviews": []},
    "e-audit": {"route": "audited", "reason": "audit_sample",
                "prediction": {"label": "yes", "confidence": 0.95},
                "decision": {"label": "no", "source": "reviewer"},
                "reviews": [{"user": "rev", "label": "no", "seconds": 4.0,
                             "comment": "a cat, not a dog"}]},
    "e-confirm": {"route": "audited", "reason": "audit_sample",
                  "prediction": {"label": "no", "confidence": 0.92},
                  "decision": {"label": "no", "source": "model"},
                  "reviews": [{"user": "rev", "label": "no", "seconds": 2.0, "comment": None}]},
    "e-review": {"route": "review", "reason": "uncertain",
                 "prediction": {"label": "no", "confidence": 0.6},
                 "decision": {"label": "yes", "source": "reviewer"},
                 "reviews": [{"user": "rev", "label": "yes", "seconds": 3.0, "comment": None}]},
    "e-esc": {"route": "review", "reason": "uncertain",
              "prediction": {"label": "yes", "confidence": 0.55},
              "decision": {"label": "no", "source": "expert"},
              "reviews": [{"user": "exp", "label": "no", "seconds": 30.0,
                           "comment": "checked the file"}]},
    "e-open": {"route": "review", "reason": "no_model", "prediction": None, "decision": None,
               "reviews": []},
}


def small_loop(loop: Loop) -> dict[str, int]:
    """Auto, audited-and-corrected, audited-and-confirmed, reviewed, escalated and open
    items; their item ids by external id."""
    project = loop.create_project("ex", labels=LABELS, sensitive=["group"],
                                  policy={"audit_rate": 0.0, "threshold": 0.9})
    ids: dict[str, int] = {}

    def submit(ext: str, proba: list[float] | None, **data: Any) -> None:
        rec = {"external_id": ext, "data": data, "meta": {"group": ext[-1]}}
        out = project.submit([rec], proba=None if proba is None else [proba])
        assert out[0]["route"] == EXPECTED[ext]["route"], out
        ids[ext] = out[0]["item_id"]

    submit("e-auto", [0.97, 0.03], x=1.0, note="plain")
    project.update_policy(audit_rate=1.0)
    submit("e-audit", [0.05, 0.95], x=2.0, note="ünïcode, \"quoted\"\nnewline")
    submit("e-confirm", [0.92, 0.08], x=3.0)
    project.update_policy(audit_rate=0.0)
    submit("e-review", [0.6, 0.4], x=4.0)
    submit("e-esc", [0.45, 0.55], x=5.0)
    submit("e-open", None, x=6.0)

    rev, exp = loop.as_user("rev"), loop.as_user("exp")
    by_item = {t["item_id"]: t["task_id"] for t in rev.project("ex").claim(10)}
    assert set(by_item) == {ids[e] for e in ("e-audit", "e-confirm", "e-review", "e-esc",
                                             "e-open")}
    rev.submit_task(by_item[ids["e-audit"]], "no", comment="a cat, not a dog", seconds=4)
    rev.submit_task(by_item[ids["e-confirm"]], "no", seconds=2)
    rev.submit_task(by_item[ids["e-review"]], "yes", seconds=3)
    rev.escalate(by_item[ids["e-esc"]], "not sure")
    rev.release(by_item[ids["e-open"]])
    (task,) = exp.project("ex").claim(1)  # escalations come first for experts
    assert task["item_id"] == ids["e-esc"]
    exp.submit_task(task["task_id"], "no", comment="checked the file", seconds=30)
    return ids


def jsonl_rows(text: str) -> list[dict[str, Any]]:
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_jsonl_csv_and_label_studio(loop: Loop, tokens: dict[str, str]) -> None:
    ids = small_loop(loop)
    project = loop.project("ex")
    by_id = {v: k for k, v in ids.items()}

    rows = jsonl_rows(project.export("jsonl"))
    assert [r["item_id"] for r in rows] == sorted(ids.values())
    for r in rows:
        ext = by_id[r["item_id"]]
        assert set(r) == ROW_KEYS
        assert r["external_id"] == ext
        assert r["meta"] == {"group": ext[-1]}
        assert {k: r[k] for k in EXPECTED[ext]} == EXPECTED[ext], ext
    assert rows[1]["data"] == {"x": 2.0, "note": "ünïcode, \"quoted\"\nnewline"}

    table = list(csv.reader(io.StringIO(project.export("csv"), newline="")))
    assert table[0] == CSV_HEADER
    assert len(table) == 1 + len(rows)
    for line, r in zip(table[1:], rows, strict=True):
        got = dict(zip(CSV_HEADER, line, strict=True))
        exp = EXPECTED[r["external_id"]]
        assert int(got["item_id"]) == r["item_id"]
        assert got["external_id"] == r["external_id"]
        assert (got["route"], got["reason"]) == (exp["route"], exp["reason"])
        pred, dec = exp["prediction"] or {}, exp["decision"] or {}
        assert got["predicted"] == pred.get("label", "")
        assert got["confidence"] == ("" if not pred else repr(pred["confidence"]))
        assert (got["label"], got["source"]) == (dec.get("label", ""), dec.get("source", ""))
        assert int(got["reviews"]) == len(exp["reviews"])
        assert got["review_labels"] == ";".join(v["label"] for v in exp["reviews"])
        assert json.loads(got["data"]) == r["data"]
        assert json.loads(got["meta"]) == r["meta"]

    tasks = json.loads(project.export("label-studio"))
    assert isinstance(tasks, list) and [t["id"] for t in tasks] == [r["item_id"] for r in rows]
    for t, r in zip(tasks, rows, strict=True):
        exp = EXPECTED[r["external_id"]]
        assert {"data", "annotations", "predictions"} <= set(t)
        assert t["data"] == {**r["data"], "external_id": r["external_id"], "meta": r["meta"]}
        assert len(t["annotations"]) == len(exp["reviews"])
        for ann, review in zip(t["annotations"], exp["reviews"], strict=True):
            (result,) = ann["result"]
            assert result["type"] == "choices"
            assert result["value"] == {"choices": [review["label"]]}
            assert ann["completed_by"] == review["user"]
            assert ann["lead_time"] == review["seconds"]
        if exp["prediction"] is None:
            assert t["predictions"] == []
        else:
            (prediction,) = t["predictions"]
            assert prediction["result"][0]["value"] == {"choices": [exp["prediction"]["label"]]}
            assert prediction["score"] == exp["prediction"]["confidence"]

    # decided_only leaves out the item nobody has decided yet, in every format
    decided = [r for r in rows if r["decision"] is not None]
    assert len(decided) == len(rows) - 1
    assert jsonl_rows(project.export("jsonl", decided_only=True)) == decided
    assert len(list(csv.reader(io.StringIO(project.export("csv", decided_only=True))))) == 6
    ls = json.loads(project.export("label-studio", decided_only=True))
    assert [t["id"] for t in ls] == [r["item_id"] for r in decided]

    with pytest.raises(InvalidInput, match="xml"):
        project.export("xml")
    with pytest.raises(Forbidden):
        loop.as_user("rev").project("ex").export()


def test_export_over_http(loop: Loop, tokens: dict[str, str], http: TestClient) -> None:
    small_loop(loop)
    project = loop.project("ex")
    media = {"jsonl": "application/x-ndjson", "csv": "text/csv",
             "label-studio": "application/json"}
    for fmt, kind in media.items():
        for decided_only in (False, True):
            r = http.get("/api/v1/projects/ex/export", headers=bearer(tokens["svc"]),
                         params={"format": fmt, "decided_only": decided_only})
            assert r.status_code == 200, r.text
            assert r.headers["content-type"].startswith(kind)
            assert "attachment" in r.headers["content-disposition"]
            assert r.text == project.export(fmt, decided_only=decided_only)
    unknown = http.get("/api/v1/projects/ex/export", headers=bearer(tokens["svc"]),
                       params={"format": "xml"})
    assert unknown.status_code == 422, unknown.text
    assert "xml" in unknown.text or "format" in unknown.text
    assert http.get("/api/v1/projects/ex/export",
                    headers=bearer(tokens["rev"])).status_code == 403
    assert http.get("/api/v1/projects/ex/export",
                    headers=bearer(tokens["exp"])).status_code == 403
    assert http.get("/api/v1/projects/ex/export").status_code == 401
    assert http.get("/api/v1/projects/nope/export",
                    headers=bearer(tokens["svc"])).status_code == 404


N_BIG = 5000


def test_export_of_5000_items_streams_all_in_order(
    loop: Loop, tokens: dict[str, str], http: TestClient
) -> None:
    big = loop.create_project("big", labels=["a", "b", "c"], policy={"audit_rate": 0.0})
    other = loop.create_project("other", labels=LABELS)
    rng = np.random.default_rng(3)
    ids: list[int] = []
    for batch in range(5):  # the other project's items interleave: ids are not contiguous
        n = N_BIG // 5
        proba = rng.dirichlet([0.3, 0.3, 0.3], size=n)
        recs = [{"external_id": f"b-{batch * n + i}", "data": {"i": batch * n + i}}
                for i in range(n)]
        ids += [d["item_id"] for d in big.submit(recs, proba=proba)]
        other.submit([{"data": {"j": j}} for j in range(7)], proba=[[0.99, 0.01]] * 7)
    assert len(ids) == N_BIG and ids == sorted(ids)
    n_decided = big.metrics()["decided"]
    assert 0 < n_decided < N_BIG

    with http.stream("GET", "/api/v1/projects/big/export", headers=bearer(tokens["svc"]),
                     params={"format": "jsonl"}) as r:
        assert r.status_code == 200
        assert "content-length" not in r.headers  # streamed, not built whole
        rows = [json.loads(line) for line in r.iter_lines() if line]
    assert [row["item_id"] for row in rows] == ids
    assert [row["external_id"] for row in rows] == [f"b-{i}" for i in range(N_BIG)]
    assert all(row["prediction"] is not None for row in rows)
    assert sum(row["decision"] is not None for row in rows) == n_decided

    r = http.get("/api/v1/projects/big/export", headers=bearer(tokens["svc"]),
                 params={"format": "label-studio"})
    tasks = r.json()
    assert [t["id"] for t in tasks] == ids
    assert all(len(t["predictions"]) == 1 for t in tasks)
    table = list(csv.reader(io.StringIO(big.export("csv"))))
    assert [int(line[0]) for line in table[1:]] == ids
    decided = jsonl_rows(big.export("jsonl", decided_only=True))
    assert len(decided) == n_decided
    assert [d["item_id"] for d in decided] == [row["item_id"] for row in rows
                                               if row["decision"] is not None]
    decided_ls = json.loads(big.export("label-studio", decided_only=True))
    assert len(decided_ls) == n_decided
