"""People's work through the in-process loop: release, expired leases, escalation, and
audited items whose reviewer disagrees with the model. Every action leaves a sound chain."""

from __future__ import annotations

import time
from typing import Any

import pytest

from loopwise import Loop
from loopwise.errors import Conflict, Forbidden

LABELS = ["benign", "malignant"]


@pytest.fixture
def people(loop: Loop) -> dict[str, Loop]:
    """The loop as admin ("local") and as alice, bob (reviewers) and eve (expert)."""
    for name, role in (("alice", "reviewer"), ("bob", "reviewer"), ("eve", "expert")):
        loop.create_user(name, role)
    return {
        "admin": loop,
        "alice": loop.as_user("alice"),
        "bob": loop.as_user("bob"),
        "eve": loop.as_user("eve"),
    }


def sound(loop: Loop) -> None:
    result = loop.verify_audit()
    assert result["ok"] is True, result["summary"]


def make(loop: Loop, **policy: Any) -> Any:
    return loop.create_project("triage", labels=LABELS, policy={"audit_rate": 0.0, **policy})


def test_release_puts_the_task_back(people: dict[str, Loop]) -> None:
    admin, alice, bob = people["admin"], people["alice"], people["bob"]
    make(admin)
    (d,) = admin.project("triage").submit([{"data": {"x": 1}}], proba=[[0.6, 0.4]])
    (task,) = alice.project("triage").claim()
    assert bob.project("triage").claim() == []
    sound(admin)

    assert alice.release(task["task_id"]) == {"task_id": task["task_id"], "state": "open"}
    sound(admin)
    assert admin.project("triage").metrics()["queue"]["open"] == 1
    with pytest.raises(Conflict, match="not claimed"):
        alice.submit_task(task["task_id"], "benign")
    (again,) = bob.project("triage").claim()
    assert (again["task_id"], again["item_id"]) == (task["task_id"], d["item_id"])
    with pytest.raises(Conflict, match="someone else"):
        alice.release(task["task_id"])
    assert bob.submit_task(task["task_id"], "malignant")["label"] == "malignant"
    sound(admin)
    assert [e["type"] for e in admin.audit_events(type="task.released")] == ["task.released"]


def test_an_expired_lease_passes_the_task_on(people: dict[str, Loop]) -> None:
    admin, alice, bob = people["admin"], people["alice"], people["bob"]
    make(admin, lease_seconds=1)
    admin.project("triage").submit([{"data": {"x": 1}}], proba=[[0.6, 0.4]])
    (task,) = alice.project("triage").claim()
    assert bob.project("triage").claim() == []  # held while the lease runs
    time.sleep(1.2)
    (taken,) = bob.project("triage").claim()
    assert taken["task_id"] == task["task_id"]
    sound(admin)
    with pytest.raises(Conflict):
        alice.submit_task(task["task_id"], "benign")
    with pytest.raises(Conflict):
        alice.release(task["task_id"])
    with pytest.raises(Conflict):
        alice.escalate(task["task_id"])
    bob.submit_task(task["task_id"], "benign")
    sound(admin)
    item = admin.project("triage").item(task["item_id"])
    assert [(r["user"], r["label"]) for r in item["reviews"]] == [("bob", "benign")]
    (expired,) = admin.audit_events(type="task.expired")
    assert expired["project"] == "triage"
    assert '"task_id":' + str(task["task_id"]) in expired["body"]


def test_the_old_holder_of_an_expired_lease_gets_409_even_unclaimed(
    people: dict[str, Loop],
) -> None:
    """Nobody took the task over yet: the lease has still run out."""
    admin, alice = people["admin"], people["alice"]
    make(admin, lease_seconds=1)
    admin.project("triage").submit([{"data": {"x": 1}}], proba=[[0.6, 0.4]])
    (task,) = alice.project("triage").claim()
    time.sleep(1.2)
    with pytest.raises(Conflict, match="lease expired"):
        alice.submit_task(task["task_id"], "benign")
    assert admin.project("triage").metrics()["reviews"] == 0
    (again,) = alice.project("triage").claim()  # claiming anew renews the lease
    assert again["task_id"] == task["task_id"]
    alice.submit_task(task["task_id"], "benign")
    sound(admin)


def test_escalate_opens_an_expert_task(people: dict[str, Loop]) -> None:
    admin, alice, bob, eve = people["admin"], people["alice"], people["bob"], people["eve"]
    make(admin)
    (d,) = admin.project("triage").submit([{"data": {"x": 1}}], proba=[[0.6, 0.4]])
    (task,) = alice.project("triage").claim()
    out = alice.escalate(task["task_id"], comment="looks odd")
    assert out["state"] == "cancelled"
    sound(admin)
    with pytest.raises(Conflict):
        alice.submit_task(task["task_id"], "benign")
    assert alice.project("triage").claim() == []
    assert bob.project("triage").claim() == []
    with pytest.raises(Forbidden):
        bob.submit_task(out["expert_task_id"], "benign")
    (expert_task,) = eve.project("triage").claim()
    assert expert_task["task_id"] == out["expert_task_id"]
    assert (expert_task["kind"], expert_task["reason"]) == ("expert", "escalated")
    assert eve.submit_task(expert_task["task_id"], "malignant")["label"] == "malignant"
    sound(admin)
    item = admin.project("triage").item(d["item_id"])
    assert item["decision"]["source"] == "expert" and item["decision"]["by"] == "eve"
    assert [r["route"] for r in item["routes"]] == ["review", "expert"]
    assert [(t["kind"], t["state"]) for t in item["tasks"]] == [
        ("review", "cancelled"),
        ("expert", "done"),
    ]
    m = admin.project("triage").metrics()
    assert m["decisions_by_source"] == {"expert": 1}
    assert m["queue"]["open"] == 0


def test_a_reviewer_who_disagrees_with_an_audited_item_corrects_it(
    people: dict[str, Loop],
) -> None:
    admin, alice = people["admin"], people["alice"]
    triage = make(admin, audit_rate=1.0, threshold=0.9)
    wrong, right = triage.submit(
        [{"external_id": "w", "data": {"x": 1}}, {"external_id": "r", "data": {"x": 2}}],
        proba=[[0.95, 0.05], [0.97, 0.03]],
    )
    for d in (wrong, right):  # decided by the model, and sent to review at random
        assert (d["route"], d["reason"], d["label"]) == ("audited", "audit_sample", "benign")
    m = triage.metrics()
    assert m["decisions_by_source"] == {"model": 2}
    assert m["corrections"] == 0 and m["auto_error"]["n"] == 0
    sound(admin)

    tasks = {t["item_id"]: t["task_id"] for t in alice.project("triage").claim(n=2)}
    assert set(tasks) == {wrong["item_id"], right["item_id"]}
    corrected = alice.submit_task(tasks[wrong["item_id"]], "malignant")
    assert (corrected["label"], corrected["decided_by"]) == ("malignant", "reviewer")
    sound(admin)
    item = triage.item(wrong["item_id"])
    assert item["decision"]["source"] == "reviewer"
    assert item["decision"]["label"] == "malignant" and item["decision"]["by"] == "alice"
    assert [(h["label"], h["source"], h["current"]) for h in item["decisions"]] == [
        ("benign", "model", False),
        ("malignant", "reviewer", True),
    ]
    m = triage.metrics()
    assert m["corrections"] == 1
    assert (m["auto_error"]["errors"], m["auto_error"]["n"]) == (1, 1)
    # Horvitz-Thompson over both automatic decisions; the pending audit may still be wrong,
    # so the exact interval reaches 1.
    assert m["auto_error"]["estimate"] == 0.5 and m["auto_error"]["ci"][1] == 1.0
    assert m["decisions_by_source"] == {"model": 1, "reviewer": 1}

    agreed = alice.submit_task(tasks[right["item_id"]], "benign")
    assert (agreed["label"], agreed["decided_by"]) == ("benign", "model")
    sound(admin)
    item = triage.item(right["item_id"])
    assert [(h["label"], h["source"]) for h in item["decisions"]] == [("benign", "model")]
    assert [r["label"] for r in item["reviews"]] == ["benign"]
    m = triage.metrics()
    assert m["corrections"] == 1
    assert (m["auto_error"]["errors"], m["auto_error"]["n"]) == (1, 2)
    assert m["auto_error"]["estimate"] == pytest.approx(0.5)
    assert m["agreement"]["n"] == 2 and m["agreement"]["estimate"] == pytest.approx(0.5)
    assert m["reviews"] == 2 and m["decisions_by_source"] == {"model": 1, "reviewer": 1}
    assert len(admin.audit_events(type="decision.made")) == 1
