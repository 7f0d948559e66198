"""The policy over HTTP: invalid changes are 422 naming the field; the stop switch."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import LABELS, PROJECT, Api, item

RULE = {"name": "high_amount", "if": {"meta.amount": {">": 10000}}, "route": "expert"}

INVALID: dict[str, tuple[dict[str, Any], str]] = {
    "threshold 2": ({"threshold": 2}, "policy.threshold"),
    "threshold a string": ({"threshold": "high"}, "policy.threshold"),
    "negative audit rate": ({"audit_rate": -0.1}, "policy.audit_rate"),
    "stopped not a bool": ({"stopped": "yes"}, "policy.stopped"),
    "unknown field": ({"colour": "red"}, "colour"),
    "rules not a list": ({"rules": RULE}, "policy.rules"),
    "rule with a bad route": ({"rules": [{**RULE, "route": "nowhere"}]}, "policy.rules[0].route"),
    "rule with a bad operator": (
        {"rules": [RULE, {**RULE, "name": "b", "if": {"meta.amount": {"~": 1}}}]},
        "policy.rules[1].if.meta.amount",
    ),
    "rule on an unknown field": (
        {"rules": [{**RULE, "if": {"amount": {">": 1}}}]},
        "policy.rules[0].if",
    ),
    "rule with an unknown key": ({"rules": [{**RULE, "then": 1}]}, "policy.rules[0]"),
    "rules with one name twice": ({"rules": [RULE, RULE]}, "policy.rules"),
    "max below min reviews": ({"min_reviews": 3, "max_reviews": 2}, "policy.max_reviews"),
    "lease of 0 seconds": ({"lease_seconds": 0}, "policy.lease_seconds"),
}


def test_an_invalid_policy_is_422_naming_the_field(api: Api, project: str) -> None:
    before = api.ok("GET", f"/projects/{PROJECT}", "admin")
    events = api.verify()["events"]
    for case, (changes, field) in INVALID.items():
        r = api.call("PATCH", f"/projects/{PROJECT}/policy", "admin", json=changes)
        assert r.status_code == 422, (case, r.text)
        assert field in r.json()["detail"], case
        # the same policy is refused when a project is created with it
        body = {"name": "fresh", "labels": LABELS, "policy": changes}
        r = api.call("POST", "/projects", "admin", json=body)
        assert r.status_code == 422, (case, r.text)
        assert field in r.json()["detail"], case
    assert api.ok("GET", f"/projects/{PROJECT}", "admin") == before
    assert api.call("GET", "/projects/fresh", "admin").status_code == 404
    assert api.verify()["events"] == events


def test_a_valid_change_is_a_new_version_with_an_event(api: Api, project: str) -> None:
    got = api.ok("PATCH", f"/projects/{PROJECT}/policy", "admin", json={"rules": [RULE]})
    assert got["policy_version"] == 2
    assert got["policy"]["rules"] == [RULE]
    assert got["policy"]["threshold"] == 0.9  # untouched fields keep their values
    (event,) = api.events("policy.changed")
    assert event["actor"] == "admin"
    assert api.ok("GET", f"/projects/{PROJECT}", "reviewer")["policy"]["rules"] == [RULE]
    # the gate follows the policy in force
    (unsure,) = api.decisions([item("at-0.7", (0.7, 0.3))])
    assert unsure["route"] == "review"
    api.ok("PATCH", f"/projects/{PROJECT}/policy", "admin", json={"threshold": 0.6})
    (sure,) = api.decisions([item("at-0.7-again", (0.7, 0.3))])
    assert (sure["route"], sure["label"]) == ("auto", "benign")
    item_now = api.ok("GET", f"/projects/{PROJECT}/items/{sure['item_id']}", "admin")
    assert item_now["routes"][0]["policy_version"] == 3


def test_the_stop_switch_sends_confident_items_to_people(api: Api, project: str) -> None:
    (before,) = api.decisions([item("before", (0.99, 0.01))])
    assert (before["route"], before["reason"], before["label"]) == ("auto", "confident", "benign")

    got = api.ok("PATCH", f"/projects/{PROJECT}/policy", "admin",
                 json={"stopped": True, "reason": "test"})
    assert got["policy"]["stopped"] is True
    assert got["policy_version"] == 2
    assert len(api.events("project.stopped")) == 1

    stopped = api.decisions([item("during", (0.999, 0.001)), item("during-2", (0.0, 1.0))])
    for d in stopped:
        assert (d["route"], d["reason"], d["label"]) == ("review", "stopped", None)
    # the item waits for a person, and the person's answer decides it
    tasks = api.claim("reviewer", n=5)
    assert sorted(t["item_id"] for t in tasks) == sorted(d["item_id"] for d in stopped)
    assert {t["reason"] for t in tasks} == {"stopped"}
    assert api.answer(tasks[0]["task_id"], "reviewer", "malignant").status_code == 200
    decided = api.ok("GET", f"/projects/{PROJECT}/items/{tasks[0]['item_id']}", "service")
    assert decided["decision"]["source"] == "reviewer"
    # items decided before the stop keep their decision
    assert api.decisions([item("before")]) == [before]

    api.ok("PATCH", f"/projects/{PROJECT}/policy", "admin",
           json={"stopped": False, "reason": "test"})
    assert len(api.events("project.resumed")) == 1
    (after,) = api.decisions([item("after", (0.99, 0.01))])
    assert (after["route"], after["reason"]) == ("auto", "confident")
    assert api.verify()["ok"] is True
