"""Tasks over HTTP: 409 for a task not yours, already done or with an expired lease; 404 for
unknown tasks; release and escalate."""

from __future__ import annotations

import time

from tests.api.conftest import PROJECT, Api, item


def review_items(api: Api, n: int) -> list[int]:
    """Submit n items the gate sends to review; their item ids."""
    got = api.decisions([item(f"u-{i}", (0.55, 0.45)) for i in range(n)])
    assert {d["route"] for d in got} == {"review"}
    return [d["item_id"] for d in got]


def test_a_claim_returns_the_task_with_its_item_and_suggestion(api: Api, project: str) -> None:
    (item_id,) = review_items(api, 1)
    for n in (0, -1, 101, "two", None):
        r = api.call("POST", f"/projects/{PROJECT}/tasks/claim", "reviewer", json={"n": n})
        assert r.status_code == 422, (n, r.text)
    assert api.metrics()["queue"]["claimed"] == 0
    (task,) = api.claim("reviewer", n=3)
    assert task["item_id"] == item_id
    assert task["reason"] == "uncertain"
    assert task["suggestion"] == {"label": "benign", "confidence": 0.55}
    assert task["item"]["external_id"] == "u-0"
    assert task["item"]["data"] == {"x": 1.0}
    assert task["lease_expires_at"]
    assert api.claim("reviewer2") == []
    assert api.metrics()["queue"]["claimed"] == 1


def test_submitting_a_task_that_is_not_yours_is_409(api: Api, project: str) -> None:
    item_ids = review_items(api, 2)
    (task,) = api.claim("reviewer")
    for user in ("reviewer2", "expert"):
        r = api.answer(task["task_id"], user, "benign")
        assert r.status_code == 409, r.text
        assert "someone else" in r.json()["detail"]
        for verb in ("release", "escalate"):
            r = api.call("POST", f"/tasks/{task['task_id']}/{verb}", user)
            assert r.status_code == 409, (verb, r.text)
    # an open task nobody claimed is not yours either
    (other_item,) = set(item_ids) - {task["item_id"]}
    got = api.ok("GET", f"/projects/{PROJECT}/items/{other_item}", "admin")
    (other,) = [t["task_id"] for t in got["tasks"]]
    r = api.answer(other, "reviewer", "benign")
    assert r.status_code == 409, r.text
    assert "not claimed" in r.json()["detail"]
    assert api.metrics()["reviews"] == 0
    assert api.answer(task["task_id"], "reviewer", "benign").status_code == 200


def test_submitting_a_task_already_done_is_409(api: Api, project: str) -> None:
    review_items(api, 1)
    (task,) = api.claim("reviewer")
    first = api.answer(task["task_id"], "reviewer", "malignant")
    assert first.status_code == 200, first.text
    assert first.json()["label"] == "malignant"
    for user, label in (("reviewer", "malignant"), ("reviewer", "benign"), ("reviewer2", "benign")):
        r = api.answer(task["task_id"], user, label)
        assert r.status_code == 409, r.text
        assert "already done" in r.json()["detail"]
    assert api.call("POST", f"/tasks/{task['task_id']}/release", "reviewer").status_code == 409
    got = api.ok("GET", f"/projects/{PROJECT}/items/{task['item_id']}", "admin")
    assert len(got["reviews"]) == 1
    assert [(d["label"], d["source"]) for d in got["decisions"]] == [("malignant", "reviewer")]
    assert api.metrics()["reviews"] == 1


def test_submitting_after_the_lease_expired_is_409(api: Api, project: str) -> None:
    api.ok("PATCH", f"/projects/{PROJECT}/policy", "admin", json={"lease_seconds": 1})
    review_items(api, 1)
    (task,) = api.claim("reviewer")
    time.sleep(1.2)
    r = api.answer(task["task_id"], "reviewer", "benign")
    assert r.status_code == 409, r.text
    assert "lease expired" in r.json()["detail"]
    assert api.metrics()["reviews"] == 0
    # the task is open to others again; the new holder may answer it
    (again,) = api.claim("reviewer2")
    assert again["task_id"] == task["task_id"]
    assert api.answer(task["task_id"], "reviewer", "benign").status_code == 409
    assert api.answer(task["task_id"], "reviewer2", "benign").status_code == 200
    (expired,) = api.events("task.expired")
    assert expired["body"]
    assert api.verify()["ok"] is True


def test_an_unknown_task_is_404(api: Api, project: str) -> None:
    review_items(api, 1)
    (task,) = api.claim("reviewer")
    for verb in ("submit", "release", "escalate"):
        body = {"label": "benign"} if verb == "submit" else None
        for task_id in (task["task_id"] + 1, 999_999):
            r = api.call("POST", f"/tasks/{task_id}/{verb}", "reviewer", json=body)
            assert r.status_code == 404, (verb, r.text)
            assert f"task {task_id} not found" in r.json()["detail"]
    assert api.answer(task["task_id"], "reviewer", "benign").status_code == 200


def test_release_gives_the_task_back(api: Api, project: str) -> None:
    review_items(api, 1)
    (task,) = api.claim("reviewer")
    got = api.ok("POST", f"/tasks/{task['task_id']}/release", "reviewer")
    assert got == {"task_id": task["task_id"], "state": "open"}
    assert api.answer(task["task_id"], "reviewer", "benign").status_code == 409
    (again,) = api.claim("reviewer2")
    assert again["task_id"] == task["task_id"]
    assert api.answer(task["task_id"], "reviewer2", "benign").status_code == 200
    assert len(api.events("task.released")) == 1


def test_escalate_makes_an_expert_task_only_experts_may_claim(api: Api, project: str) -> None:
    review_items(api, 1)
    (task,) = api.claim("reviewer")
    r = api.call("POST", f"/tasks/{task['task_id']}/escalate", "reviewer", json={"comment": "?"})
    assert r.status_code == 200, r.text
    expert_task = r.json()["expert_task_id"]
    assert api.answer(task["task_id"], "reviewer", "benign").status_code == 409
    assert api.claim("reviewer") == [] and api.claim("reviewer2") == []
    (got,) = api.claim("expert")
    assert got["task_id"] == expert_task and got["kind"] == "expert"
    assert got["reason"] == "escalated"
    r = api.answer(expert_task, "expert", "malignant")
    assert r.status_code == 200, r.text
    decided = api.ok("GET", f"/projects/{PROJECT}/items/{task['item_id']}", "service")
    assert decided["decision"]["source"] == "expert"
    assert decided["decision"]["label"] == "malignant"
    assert [t["state"] for t in decided["tasks"]] == ["cancelled", "done"]
