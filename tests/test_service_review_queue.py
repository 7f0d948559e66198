"""The review queue's fast paths: queue order with leases that ran out, submit that claims
the next task, the task's project read with its lock, and the short token cache."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import update

from loopwise import Loop
from loopwise.errors import Unauthorized
from loopwise.service import LOCAL
from loopwise.store.tables import users

LABELS = ["benign", "malignant"]


@pytest.fixture
def people(loop: Loop) -> dict[str, Loop]:
    for name, role in (("alice", "reviewer"), ("bob", "reviewer"), ("eve", "expert")):
        loop.create_user(name, role)
    return {name: loop.as_user(name) for name in ("alice", "bob", "eve")} | {"admin": loop}


def unsure(loop: Loop, n: int, **policy: Any) -> list[int]:
    """A project whose n items all go to review; their item ids, oldest first."""
    loop.create_project("triage", labels=LABELS, policy={"audit_rate": 0.0, **policy})
    got = loop.project("triage").submit([{"data": {"x": i}} for i in range(n)],
                                        proba=[[0.6, 0.4]] * n)
    return [d["item_id"] for d in got]


def test_a_task_whose_lease_ran_out_keeps_its_place_in_the_queue(
    people: dict[str, Loop],
) -> None:
    """It is not served after every open task, but in queue order with them."""
    first, second, _ = unsure(people["admin"], 3, lease_seconds=1)
    (held,) = people["alice"].project("triage").claim()
    assert held["item_id"] == first
    assert people["bob"].project("triage").claim()[0]["item_id"] == second
    time.sleep(1.2)
    got = people["eve"].project("triage").claim(2)
    assert [t["item_id"] for t in got] == [first, second]
    assert len(people["admin"].audit_events(type="task.expired")) == 2


def test_a_claim_takes_open_tasks_then_leases_that_ran_out(people: dict[str, Loop]) -> None:
    first, second = unsure(people["admin"], 2, lease_seconds=1)
    people["alice"].project("triage").claim()
    time.sleep(1.2)
    got = people["bob"].project("triage").claim(5)
    assert [t["item_id"] for t in got] == [first, second]
    assert people["alice"].project("triage").claim() == []


def test_submit_can_claim_the_next_task_in_the_same_transaction(
    people: dict[str, Loop],
) -> None:
    admin, alice = people["admin"], people["alice"]
    first, second = unsure(admin, 2)
    (task,) = alice.project("triage").claim()
    svc, who = alice.service, alice.actor
    reply = svc.submit_review(who, task["task_id"], "benign", seconds=2.0, claim_next=True)
    assert (reply["item_id"], reply["label"], reply["decided_by"]) == (first, "benign", "reviewer")
    nxt = reply["next"]
    assert nxt["item_id"] == second
    assert set(nxt) == set(task)
    assert alice.project("triage").claim() == []  # already holds it
    last = svc.submit_review(who, nxt["task_id"], "malignant", claim_next=True)
    assert last["next"] is None
    assert admin.verify_audit()["ok"]
    types = [e["type"] for e in admin.audit_events(project="triage")]
    assert types.count("task.claimed") == 2 and types.count("decision.made") == 2


def test_the_reply_of_submit_is_the_items_decision(people: dict[str, Loop]) -> None:
    """The same summary as the item's own view: route, confidence, label and source."""
    admin, alice = people["admin"], people["alice"]
    (item_id,) = unsure(admin, 1)
    (task,) = alice.project("triage").claim()
    reply = alice.submit_task(task["task_id"], "malignant")
    assert reply == {"item_id": item_id, "external_id": None, "route": "review",
                     "reason": "uncertain", "label": "malignant", "confidence": 0.6,
                     "decided_by": "reviewer"}
    got = alice.project("triage").item(item_id)
    assert got["decision"]["label"] == "malignant"


def test_a_tasks_project_is_read_as_project_row_reads_it(people: dict[str, Loop]) -> None:
    admin, alice = people["admin"], people["alice"]
    unsure(admin, 1)
    admin.project("triage").update_policy(threshold=0.8)
    (task,) = alice.project("triage").claim()
    svc = admin.service
    with svc.unit() as u:
        _, p = svc._task_for_update(u, task["task_id"])
        assert p == svc.project_row(u.conn, "triage")


def test_a_token_is_trusted_for_a_short_while_and_rotation_ends_it_here(loop: Loop) -> None:
    svc = loop.service
    token = loop.create_user("carol", "reviewer")["token"]
    assert svc.cached_principal(token) is None
    carol = svc.authenticate(token)
    assert svc.cached_principal(token) == carol
    svc.rotate_token(LOCAL, "carol")  # in this process: at once
    assert svc.cached_principal(token) is None
    with pytest.raises(Unauthorized):
        svc.authenticate(token)


def test_a_user_deactivated_elsewhere_is_refused_within_the_cache_bound(
    loop: Loop, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = loop.service
    monkeypatch.setattr(svc, "auth_cache_seconds", 0.3)
    token = loop.create_user("dave", "reviewer")["token"]
    svc.authenticate(token)
    with svc.db.write() as conn:  # as another process would
        conn.execute(update(users).where(users.c.name == "dave").values(active=False))
    assert svc.authenticate(token).name == "dave"  # still trusted, within the bound
    time.sleep(0.35)
    with pytest.raises(Unauthorized):
        svc.authenticate(token)
    assert svc.cached_principal(token) is None
