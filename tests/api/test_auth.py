"""Who may do what over HTTP: 401 without a valid token, 403 for a role not allowed."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import LABELS, PROJECT, Api, item

# (method, path, json body) of routes that need a signed-in user.
PROTECTED: list[tuple[str, str, Any]] = [
    ("GET", "/projects", None),
    ("POST", "/projects", {"name": "other", "labels": LABELS}),
    ("GET", f"/projects/{PROJECT}", None),
    ("PATCH", f"/projects/{PROJECT}/policy", {"stopped": True}),
    ("POST", f"/projects/{PROJECT}/items", {"items": [item("a")]}),
    ("GET", f"/projects/{PROJECT}/items/1", None),
    ("POST", f"/projects/{PROJECT}/tasks/claim", {"n": 1}),
    ("POST", "/tasks/1/submit", {"label": "benign"}),
    ("POST", "/tasks/1/release", None),
    ("POST", "/tasks/1/escalate", None),
    ("GET", f"/projects/{PROJECT}/metrics", None),
    ("GET", f"/projects/{PROJECT}/export", None),
    ("POST", "/users", {"name": "mallory", "role": "admin"}),
    ("GET", "/audit", None),
    ("GET", "/audit/verify", None),
]


def test_no_token_or_a_bad_token_is_401_and_changes_nothing(api: Api, project: str) -> None:
    api.decisions([item("a", (0.5, 0.5))])  # a review task (id 1) that could be touched
    before = api.counts()
    bad_headers: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer lw_not-a-token"},
        {"Authorization": f"Bearer {api.tokens['admin']}x"},
        {"Authorization": f"Basic {api.tokens['admin']}"},
        {"Authorization": "Bearer "},
    ]
    for method, path, body in PROTECTED:
        for headers in bad_headers:
            r = api.call(method, path, None, json=body, headers=headers)
            assert r.status_code == 401, (method, path, headers, r.text)
            assert "detail" in r.json()
            assert r.headers["www-authenticate"] == "Bearer"
    assert api.counts() == before
    assert api.call("GET", "/projects/other", "admin").status_code == 404
    assert api.metrics()["queue"]["open"] == 1
    assert api.ok("GET", f"/projects/{PROJECT}", "admin")["policy"]["stopped"] is False


def test_a_reviewer_on_admin_routes_is_403_and_changes_nothing(api: Api, project: str) -> None:
    before = api.counts()
    version = api.ok("GET", f"/projects/{PROJECT}", "reviewer")["policy_version"]
    admin_only: list[tuple[str, str, Any]] = [
        ("POST", "/projects", {"name": "other", "labels": LABELS}),
        ("PATCH", f"/projects/{PROJECT}/policy", {"stopped": True}),
        ("POST", "/users", {"name": "mallory", "role": "admin"}),
        ("GET", "/users", None),
        ("GET", "/audit", None),
        ("GET", "/audit/verify", None),
    ]
    for user in ("reviewer", "service"):
        for method, path, body in admin_only:
            r = api.call(method, path, user, json=body)
            assert r.status_code == 403, (user, method, path, r.text)
            assert "admin" in r.json()["detail"]
    assert api.counts() == before
    project_now = api.ok("GET", f"/projects/{PROJECT}", "admin")
    assert project_now["policy_version"] == version
    assert project_now["policy"]["stopped"] is False
    assert api.call("GET", "/projects/other", "admin").status_code == 404
    assert "mallory" not in {u["name"] for u in api.ok("GET", "/users", "admin")}


def test_the_admin_may_do_what_the_reviewer_may_not(api: Api, project: str) -> None:
    """The same requests succeed for the admin, so the 403s above are about the role."""
    api.ok("POST", "/projects", "admin", 201, json={"name": "other", "labels": LABELS})
    stop = {"stopped": True, "reason": "test"}
    assert api.ok("PATCH", f"/projects/{PROJECT}/policy", "admin", json=stop)["policy"]["stopped"]
    made = api.ok("POST", "/users", "admin", 201, json={"name": "carol", "role": "reviewer"})
    assert made["name"] == "carol" and made["role"] == "reviewer"
    assert made["token"].startswith("lw_")
    again = api.call("POST", "/users", "admin", json={"name": "carol", "role": "admin"})
    assert again.status_code == 409, again.text
    # the new token works at once, with the role it was given
    api.tokens["carol"] = made["token"]
    assert api.claim("carol") == []
    assert api.call("GET", "/audit", "carol").status_code == 403
    events = api.ok("GET", "/audit", "admin")["events"]
    assert {"project.created", "policy.changed", "user.created"} <= {e["type"] for e in events}
    assert api.verify()["ok"] is True


def test_a_service_token_may_submit_items_but_not_claim_or_answer(api: Api, project: str) -> None:
    (d,) = api.decisions([item("s-1", (0.5, 0.5))])
    assert d["route"] == "review"
    r = api.call("POST", f"/projects/{PROJECT}/tasks/claim", "service", json={"n": 1})
    assert r.status_code == 403, r.text
    assert "service" in r.json()["detail"]
    # the task is still there for a reviewer, so the 403 did not claim it
    (task,) = api.claim("reviewer")
    assert task["item_id"] == d["item_id"]
    assert api.answer(task["task_id"], "service", "benign").status_code == 403
    assert api.call("POST", f"/tasks/{task['task_id']}/release", "service").status_code == 403
    assert api.call("POST", f"/tasks/{task['task_id']}/escalate", "service").status_code == 403
    assert api.metrics()["reviews"] == 0
    # the service may read what it submitted
    got = api.ok("GET", f"/projects/{PROJECT}/items/{d['item_id']}", "service")
    assert got["external_id"] == "s-1"
    assert api.answer(task["task_id"], "reviewer", "benign").status_code == 200


def test_reviewers_and_experts_may_not_submit_items(api: Api, project: str) -> None:
    for user in ("reviewer", "expert"):
        r = api.submit([item(f"{user}-1")], user=user)
        assert r.status_code == 403, r.text
    assert api.metrics()["items"] == 0
