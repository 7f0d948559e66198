"""Pool queries and rollback over HTTP: roles, bad input (422 naming the field), 409."""

from __future__ import annotations

from loopwise.learning import STRATEGIES
from tests.api.conftest import Api


def test_pool_query_roles_and_errors(api: Api) -> None:
    api.make_project("al")
    recs = [{"data": {"x": float(i), "y": float(i % 3)}, "pool": True} for i in range(30)]
    out = api.ok("POST", "/projects/al/items", "service", json={"items": recs})["decisions"]
    assert {(d["route"], d["reason"]) for d in out} == {("pool", "pool")}
    path = "/projects/al/pool/query"
    assert api.call("POST", path, None, json={"n": 5}).status_code == 401
    assert api.call("POST", path, "reviewer", json={"n": 5}).status_code == 403
    assert api.call("POST", "/projects/nope/pool/query", "service", json={"n": 5}
                    ).status_code == 404
    for body in ({"n": 0}, {"n": 31}, {"n": "5"}, {}):
        assert api.call("POST", path, "service", json=body).status_code == 422, body
    r = api.call("POST", path, "service", json={"n": 5, "strategy": "best"})
    assert r.status_code == 422 and ", ".join(STRATEGIES) in r.json()["detail"]
    assert api.metrics("al")["pool"] == {"waiting": 30, "queried": 0}
    got = api.ok("POST", path, "service", json={"n": 5})
    assert len({t["item_id"] for t in got["tasks"]}) == 5 and got["pool_remaining"] == 25
    tasks = api.claim("reviewer", 10, project="al")
    assert sorted(t["task_id"] for t in tasks) == sorted(t["task_id"] for t in got["tasks"])
    assert {t["reason"] for t in tasks} == {"pool_query"}


def test_rollback_roles_and_conflicts(api: Api) -> None:
    api.make_project("rb")
    path = "/projects/rb/models/1/rollback"
    assert api.call("POST", path, "service").status_code == 403
    assert api.call("POST", path, "admin").status_code == 404
    assert api.ok("GET", "/projects/rb/models", "service") == []
