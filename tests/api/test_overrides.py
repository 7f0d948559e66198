"""Overrides, stop/resume with a reason, and the audit trail's export over the REST API."""

from __future__ import annotations

import json

from loopwise.service.audit import verify_export
from tests.api.conftest import PROJECT, Api, item


def _decided(api: Api) -> tuple[int, int]:
    """An automatic decision and an item waiting for review."""
    auto, waiting = api.decisions([item("a"), item("w", proba=(0.6, 0.4))])
    assert auto["route"] == "auto" and waiting["route"] == "review"
    return auto["item_id"], waiting["item_id"]


def test_override_over_http(api: Api, project: str) -> None:
    auto, waiting = _decided(api)
    path = f"/projects/{PROJECT}/items/{auto}/override"
    body = {"label": "malignant", "reason": "pathology report"}
    assert api.call("POST", path, None, json=body).status_code == 401
    assert api.call("POST", path, "reviewer", json=body).status_code == 403
    assert api.call("POST", path, "service", json=body).status_code == 403
    events = api.counts()[1]
    for bad in (
        {"label": "malignant"},
        {"label": "malignant", "reason": " "},
        {"label": "other", "reason": "x"},
        {"reason": "x"},
    ):
        r = api.call("POST", path, "expert", json=bad)
        assert r.status_code == 422, r.text
    assert (
        api.call(
            "POST", f"/projects/{PROJECT}/items/99999/override", "expert", json=body
        ).status_code
        == 404
    )
    r = api.call("POST", f"/projects/{PROJECT}/items/{waiting}/override", "expert", json=body)
    assert r.status_code == 409 and "no decision" in r.json()["detail"]
    assert api.counts()[1] == events  # nothing written by the refused calls
    out = api.ok("POST", path, "expert", json=body)
    assert out["source"] == "override" and out["previous"] == {"label": "benign", "source": "model"}
    got = api.ok("GET", f"/projects/{PROJECT}/items/{auto}", "admin")["decisions"]
    assert [(d["label"], d["current"]) for d in got] == [("benign", False), ("malignant", True)]
    (ev,) = api.events("decision.overridden")
    assert ev["actor"] == "expert"
    assert json.loads(ev["body"])["payload"]["reason"] == "pathology report"


def test_stop_and_resume_carry_a_reason(api: Api, project: str) -> None:
    path = f"/projects/{PROJECT}/policy"
    r = api.call("PATCH", path, "admin", json={"stopped": True})
    assert r.status_code == 422 and "reason" in r.json()["detail"]
    assert (
        api.call("PATCH", path, "expert", json={"stopped": True, "reason": "x"}).status_code == 403
    )
    out = api.ok("PATCH", path, "admin", json={"stopped": True, "reason": "drift on B"})
    assert out["policy"]["stopped"] is True and out["policy_version"] == 2
    assert api.decisions([item("s")])[0]["reason"] == "stopped"
    assert api.verify()["stopped"] == {PROJECT: api.events("project.stopped")[0]["seq"]}
    r = api.call("PATCH", path, "admin", json={"stopped": False})
    assert r.status_code == 422
    api.ok("PATCH", path, "admin", json={"stopped": False, "reason": "fixed in v2"})
    (resumed,) = api.events("project.resumed")
    assert json.loads(resumed["body"])["payload"]["reason"] == "fixed in v2"
    v = api.verify()
    assert v["ok"] and v["stopped"] == {} and v["signatures_checked"] is not None


def test_export_and_checkpoint_over_http(api: Api, project: str) -> None:
    _decided(api)
    assert api.call("GET", "/audit/export", "reviewer").status_code == 403
    assert api.call("POST", "/audit/checkpoint", "expert").status_code == 403
    r = api.call("POST", "/audit/checkpoint", "admin")
    if api.verify()["signing"]:
        assert r.status_code == 200 and r.json()["tree_size"] == api.verify()["events"]
    else:  # PostgreSQL without LOOPWISE_AUDIT_KEY
        assert r.status_code == 409 and "LOOPWISE_AUDIT_KEY" in r.json()["detail"]
    r = api.call("GET", "/audit/export", "admin")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = r.text.splitlines()
    result = verify_export(lines)
    assert result.ok and result.n_events == api.verify()["events"]
    assert result.n_checkpoints == api.verify()["checkpoints"]
