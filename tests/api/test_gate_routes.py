"""The gate's routes over HTTP: who may calibrate and check, and what they answer."""

from __future__ import annotations

from tests.api.conftest import PROJECT, Api, item


def test_calibrate_and_check_need_admin_or_service(api: Api) -> None:
    api.make_project(target_error=0.05, audit_rate=0.1)
    for user in ("reviewer", "expert"):
        assert api.call("POST", f"/projects/{PROJECT}/calibrate", user).status_code == 403
        assert api.call("POST", f"/projects/{PROJECT}/promise/check", user).status_code == 403
    assert api.call("POST", f"/projects/{PROJECT}/calibrate", None).status_code == 401
    summary = api.ok("POST", f"/projects/{PROJECT}/calibrate", "service")
    assert summary["mode"] == "promise" and summary["certified"] is False
    assert summary["labels_needed"] > 0
    check = api.ok("POST", f"/projects/{PROJECT}/promise/check", "admin")
    assert check["broken"] is False and check["target_error"] == 0.05
    assert api.call("POST", "/projects/nope/calibrate", "admin").status_code == 404


def test_uncertified_promise_sends_everything_to_people(api: Api) -> None:
    api.make_project(target_error=0.05)
    [d] = api.decisions([item("x", (0.999, 0.001))])
    assert (d["route"], d["reason"], d["label"]) == ("review", "uncertified", None)
    gate = api.metrics()["gate"]
    assert gate["mode"] == "promise" and not gate["certified"]


def test_calibrating_a_project_without_a_promise_is_422(api: Api, project: str) -> None:
    r = api.call("POST", f"/projects/{project}/calibrate", "admin")
    assert r.status_code == 422 and "target_error" in r.json()["detail"]
