"""Oversight routes: roles, 404, 422, and the JSON / HTML they return."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import item


def test_oversight_routes(api: Any) -> None:
    api.make_project()
    api.submit([item(f"e{i}", meta={"sex": "fm"[i % 2]}) for i in range(40)])
    for path in ("fairness", "drift", "alerts", "report?format=json"):
        assert api.call("GET", f"/projects/triage/{path}", None).status_code == 401
        assert api.call("GET", f"/projects/nope/{path}", "admin").status_code == 404
        assert api.call("GET", f"/projects/triage/{path}", "reviewer").status_code == 200
    fair = api.ok("GET", "/projects/triage/fairness", "service", params={"positive": "benign"})
    assert fair["positive"] == "benign" and fair["routing"]["n"] == 40
    bad = api.call("GET", "/projects/triage/fairness", "admin", params={"positive": "x"})
    assert bad.status_code == 422
    r = api.call("GET", "/projects/triage/report", "reviewer")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    hook = {"url": "http://127.0.0.1:9/x", "secret": "s" * 16}
    assert api.call("POST", "/projects/triage/webhooks", "reviewer", json=hook).status_code == 403
    assert (
        api.call(
            "POST", "/projects/triage/webhooks", "admin", json={**hook, "url": "nope"}
        ).status_code
        == 422
    )
    made = api.ok("POST", "/projects/triage/webhooks", "admin", 201, json=hook)
    assert "secret" not in api.call("GET", "/projects/triage/webhooks", "admin").text
    api.ok("DELETE", f"/projects/triage/webhooks/{made['webhook_id']}", "admin")
    assert (
        api.call("DELETE", f"/projects/triage/webhooks/{made['webhook_id']}", "admin").status_code
        == 404
    )
    assert api.call("POST", "/projects/triage/alerts/evaluate", "reviewer").status_code == 403
    assert api.ok("POST", "/projects/triage/alerts/evaluate", "service") == []
