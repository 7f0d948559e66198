"""Submitting items over HTTP: validation (422), batch size (413), all-or-nothing batches,
idempotent external ids, and 404 for unknown projects and items."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from loopwise.config import Settings
from tests.api.conftest import LABELS, PROJECT, Api, item

BAD_PROBA: dict[str, tuple[Any, str]] = {
    "too long": ([0.5, 0.25, 0.25], "shape"),
    "too short": ([1.0], "shape"),
    "negative": ([-0.25, 1.25], ">= 0"),
    "infinite": ([math.inf, 0.0], "finite"),
    "NaN": ([math.nan, 0.5], "finite"),
    "sum over 1 + 1e-6": ([0.5 + 2e-6, 0.5], "sum"),
    "sum under 1 - 1e-6": ([0.5 - 2e-6, 0.5], "sum"),
    "sum far from 1": ([0.7, 0.4], "sum"),
    "not numbers": (["a", "b"], "numbers"),
    # numpy would read these as [0.5, 0.5] and [1.0, 0.0]; they are not lists of numbers
    "nested list": ([[0.5, 0.5]], "numbers"),
    "numbers as strings": (["0.5", "0.5"], "numbers"),
    "booleans": ([True, False], "numbers"),
    "an object": ({"benign": 0.5, "malignant": 0.5}, "numbers"),
}


def test_bad_probabilities_are_422_naming_the_item(api: Api, project: str) -> None:
    for case, (proba, words) in BAD_PROBA.items():
        records = [item("ok-0"), item("ok-1", (0.3, 0.7)), item(f"bad-{case}", proba)]
        # json.dumps writes NaN and Infinity as bare tokens, as a careless client would
        r = api.submit_raw(json.dumps({"items": records}))
        assert r.status_code == 422, (case, r.text)
        body = r.json()
        assert len(body["errors"]) == 1, case
        (error,) = body["errors"]
        assert error["loc"] == ["items", 2, "proba"], case
        assert error["external_id"] == f"bad-{case}", case
        assert words in error["msg"], case
        assert "item 2" in body["detail"] and repr(f"bad-{case}") in body["detail"], case
    assert api.metrics()["items"] == 0


def test_the_sum_tolerance_is_one_in_a_million(api: Api, project: str) -> None:
    near = [item("near-hi", (0.5 + 5e-7, 0.5)), item("near-lo", (0.5 - 5e-7, 0.5))]
    got = api.decisions(near)
    assert [d["external_id"] for d in got] == ["near-hi", "near-lo"]
    r = api.submit([item("far", (0.5 + 2e-6, 0.5))])
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["external_id"] == "far"
    assert api.metrics()["items"] == 2


def test_a_label_outside_the_projects_labels_is_422_listing_them(api: Api, project: str) -> None:
    api.decisions([item("u", (0.5, 0.5))])
    (task,) = api.claim("reviewer")
    for wrong in ("Malignant", "cat", ""):
        r = api.answer(task["task_id"], "reviewer", wrong)
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["errors"][0]["allowed"] == LABELS
        assert body["errors"][0]["loc"] == ["label"]
        assert all(label in body["detail"] for label in LABELS)
        assert repr(wrong) in body["detail"]
    assert api.metrics()["reviews"] == 0
    # nothing was spent: the task is still the reviewer's to answer properly
    assert api.answer(task["task_id"], "reviewer", "malignant").status_code == 200


def test_a_bad_batch_writes_nothing_and_lists_every_error(api: Api, project: str) -> None:
    api.decisions([item("before")])
    before = api.counts()
    records: list[Any] = [
        item("good-0"),
        item("bad-1", (0.2, 0.2)),
        item("good-2", (0.5, 0.5)),
        {"external_id": "bad-3", "meta": {}},  # no data
        item("bad-4", (0.5, 0.5), colour="red"),  # unknown field
        item("bad-5", (-1.0, 2.0)),
        item("bad-6", None, meta="f"),  # meta not an object
        "not an object",
        item("good-8", None),
    ]
    r = api.submit(records)
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    assert [(e["loc"][1], e["loc"][2]) for e in errors] == [
        (1, "proba"),
        (3, "data"),
        (4, "item"),
        (5, "proba"),
        (6, "meta"),
        (7, "item"),
    ]
    assert [e["external_id"] for e in errors] == ["bad-1", "bad-3", "bad-4", "bad-5", "bad-6", None]
    assert "6 invalid" in r.json()["detail"]
    assert api.counts() == before
    exported = [row["external_id"] for row in api.export()]
    assert exported == ["before"]
    # the good items alone go through
    got = api.decisions([records[0], records[2], records[8]])
    assert [d["external_id"] for d in got] == ["good-0", "good-2", "good-8"]


def test_a_malformed_body_is_422(api: Api, project: str) -> None:
    for body in ('{"items": [', '{"things": []}', '[{"data": {}}]', '{"items": {"data": {}}}'):
        r = api.submit_raw(body)
        assert r.status_code == 422, (body, r.text)
        assert "body" in r.json()["detail"]
    assert api.metrics()["items"] == 0


def test_a_batch_over_the_maximum_is_413_and_writes_nothing(
    api_factory: Callable[..., Api], project: str
) -> None:
    small = api_factory(max_batch=5)
    before = small.counts()
    r = small.submit([item(f"e-{i}") for i in range(6)])
    assert r.status_code == 413, r.text
    assert "5" in r.json()["detail"]
    assert small.counts() == before
    assert len(small.decisions([item(f"e-{i}") for i in range(5)])) == 5


def test_the_default_maximum_batch_is_10000(api: Api, project: str) -> None:
    assert Settings.model_fields["max_batch"].default == 10_000
    r = api.submit([{"data": {}} for _ in range(10_001)])
    assert r.status_code == 413, r.text
    assert "10000" in r.json()["detail"]
    assert api.metrics()["items"] == 0


def test_an_external_id_submitted_again_returns_the_existing_decision(
    api: Api, project: str
) -> None:
    (first,) = api.decisions([item("c-1", (0.97, 0.03))])
    assert first["route"] == "auto" and first["label"] == "benign"
    # the same id again, even with other probabilities, is the same item and decision
    again = api.decisions([item("c-1", (0.01, 0.99))])
    assert again == [first]
    mixed = api.decisions([item("c-2", (0.5, 0.5)), item("c-1", (0.5, 0.5))])
    assert mixed[1] == first
    assert mixed[0]["route"] == "review" and mixed[0]["item_id"] != first["item_id"]

    got = api.ok("GET", f"/projects/{PROJECT}/items/{first['item_id']}", "service")
    assert got["prediction"]["proba"] == [0.97, 0.03]
    assert [d["source"] for d in got["decisions"]] == ["model"]
    assert [r["external_id"] for r in api.export()] == ["c-1", "c-2"]
    m = api.metrics()
    assert m["items"] == 2 and m["decided"] == 1 and m["queue"]["open"] == 1
    assert len(api.events("items.received")) == 2  # one event a batch that added items
    assert [e["external_id"] for e in api.received()] == ["c-1", "c-2"]


def test_a_resubmitted_review_item_returns_its_human_decision(api: Api, project: str) -> None:
    (first,) = api.decisions([item("r-1", (0.6, 0.4))])
    assert first["route"] == "review" and first["label"] is None
    (task,) = api.claim("reviewer")
    assert api.answer(task["task_id"], "reviewer", "malignant").status_code == 200
    (again,) = api.decisions([item("r-1", (0.6, 0.4))])
    assert again["item_id"] == first["item_id"]
    assert again["route"] == "review" and again["label"] == "malignant"
    assert api.metrics()["items"] == 1
    assert api.claim("reviewer2") == []  # no second task either


def test_the_same_external_id_twice_in_one_batch_is_one_item(api: Api, project: str) -> None:
    got = api.decisions([item("d-1", (0.5, 0.5)), item("d-2"), item("d-1", (0.5, 0.5)), item(None)])
    assert got[0] == got[2]
    assert len({d["item_id"] for d in got}) == 3
    m = api.metrics()
    assert m["items"] == 3
    assert m["queue"]["open"] == 1  # one review task for d-1, not two
    assert [r["external_id"] for r in api.export()] == ["d-1", "d-2", None]


def test_items_without_external_id_are_never_merged(api: Api, project: str) -> None:
    got = api.decisions([item(None), item(None)])
    got += api.decisions([item(None)])
    assert len({d["item_id"] for d in got}) == 3
    assert api.metrics()["items"] == 3


def test_unknown_project_or_item_is_404(api: Api, project: str) -> None:
    (d,) = api.decisions([item("x")])
    api.make_project("other")
    calls: list[tuple[str, str, str, Any]] = [
        ("GET", "/projects/nope", "service", None),
        ("PATCH", "/projects/nope/policy", "admin", {"stopped": True}),
        ("POST", "/projects/nope/items", "service", {"items": [item("x")]}),
        ("POST", "/projects/nope/items", "service", {"items": []}),
        ("GET", "/projects/nope/items/1", "service", None),
        ("POST", "/projects/nope/tasks/claim", "reviewer", {"n": 1}),
        ("GET", "/projects/nope/metrics", "service", None),
        ("GET", "/projects/nope/export", "service", None),
        ("GET", f"/projects/{PROJECT}/items/{d['item_id'] + 1000}", "service", None),
        # an item of another project is not found through this one
        ("GET", f"/projects/other/items/{d['item_id']}", "service", None),
    ]
    for method, path, user, body in calls:
        r = api.call(method, path, user, json=body)
        assert r.status_code == 404, (method, path, r.text)
        assert "not found" in r.json()["detail"]
    assert api.metrics()["items"] == 1


def test_values_are_stored_and_hashed_exactly_as_sent(api: Api, project: str) -> None:
    """Numbers in any notation and integers beyond 64 bits come back as sent, keys in the
    client's order; the audit event hashes the canonical JSON of the data."""
    import hashlib

    from loopwise.audit import canonical_json

    data = {"z": 12345678901234567890123, "a": 0.0031999999999999806, "m": 1e-05, "b": 1e16,
            "t": "é \\ \"q\"\n"}
    meta = {"sex": "f", "account": -(2**64) - 1, "tiny": 1.5e-07}
    rec = {"external_id": "exact", "data": data, "meta": meta, "proba": [0.3, 0.7]}
    r = api.submit_raw(json.dumps({"items": [rec]}))
    assert r.status_code == 200, r.text
    (decision,) = r.json()["decisions"]
    got = api.ok("GET", f"/projects/{project}/items/{decision['item_id']}", "admin")
    assert got["data"] == data and list(got["data"]) == list(data)
    assert got["meta"] == meta
    (payload,) = api.received()
    assert payload["data_sha256"] == hashlib.sha256(canonical_json(data).encode()).hexdigest()
    assert payload["meta"] == meta and payload["proba"] == [0.3, 0.7]
    assert api.verify()["ok"]
