"""The review budget and the queue's priority order: what waits, what is taken first, and
what ``over_budget: accept`` lets through (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import update

from loopwise import Loop
from loopwise.errors import InvalidInput
from loopwise.store.tables import tasks

LABELS = ["benign", "malignant"]


@pytest.fixture
def people(loop: Loop) -> dict[str, Loop]:
    loop.create_user("alice", "reviewer")
    loop.create_user("eve", "expert")
    return {"alice": loop.as_user("alice"), "eve": loop.as_user("eve"), "admin": loop}


def submit(loop: Loop, confidences: list[float], **policy: Any) -> list[dict[str, Any]]:
    """A project with these items (top class 0 at the given confidence)."""
    loop.create_project("triage", labels=LABELS, policy={"audit_rate": 0.0, **policy})
    proba = [[c, 1 - c] for c in confidences]
    return loop.project("triage").submit(
        [{"external_id": f"x{i}", "data": {"x": i}, "meta": {"amount": 100 * i}}
         for i in range(len(confidences))], proba=proba)


def test_people_get_the_least_confident_items_first_and_rules_before_them(
    people: dict[str, Loop],
) -> None:
    rule = {"name": "big", "if": {"meta.amount": {">": 450}}, "route": "review"}
    got = submit(people["admin"], [0.8, 0.55, 0.7, 0.65, 0.6, 0.95], rules=[rule],
                 threshold=0.9)
    assert [d["reason"] for d in got] == ["uncertain"] * 5 + ["rule:big"]
    order = [t["item"]["external_id"] for t in people["alice"].project("triage").claim(10)]
    assert order == ["x5", "x1", "x4", "x3", "x2", "x0"]


def test_audits_come_before_uncertain_reviews(people: dict[str, Loop]) -> None:
    """An audit keeps the promise measurable: it must not starve behind a long queue."""
    got = submit(people["admin"], [0.6, 0.99, 0.55], audit_rate=1.0, threshold=0.9)
    assert [d["route"] for d in got] == ["review", "audited", "review"]
    order = [t["item"]["external_id"] for t in people["alice"].project("triage").claim(3)]
    assert order == ["x1", "x2", "x0"]


def test_beyond_the_budget_claims_get_nothing_and_items_wait(
    people: dict[str, Loop], loop: Loop
) -> None:
    got = submit(people["admin"], [0.6] * 6, budget_per_hour=3)
    assert all(d["route"] == "review" for d in got)  # waiting, never accepted
    alice = people["alice"]
    first = alice.project("triage").claim(10)
    assert len(first) == 3  # the hour's budget
    assert alice.project("triage").claim() == []
    assert people["eve"].project("triage").claim() == []  # experts share it
    for t in first:
        alice.submit_task(t["task_id"], "benign")
    assert alice.project("triage").claim() == []  # finished work counts for an hour
    m = loop.project("triage").metrics()["budget"]
    assert m == {**m, "per_hour": 3, "done_last_hour": 3, "in_progress": 0, "waiting": 3,
                 "remaining": 0, "accepted_over_budget": 0}
    # An hour later the room is back.
    with loop.service.db.write() as conn:
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1, seconds=1)
        conn.execute(update(tasks).where(tasks.c.done_at.is_not(None)).values(done_at=an_hour_ago))
    assert len(alice.project("triage").claim(10)) == 3


def test_a_released_task_gives_its_room_back(people: dict[str, Loop]) -> None:
    submit(people["admin"], [0.6] * 4, budget_per_hour=2)
    alice = people["alice"].project("triage")
    held = alice.claim(5)
    assert len(held) == 2 and alice.claim() == []
    people["alice"].release(held[0]["task_id"])
    assert len(alice.claim(5)) == 1


def test_over_budget_accept_sends_the_least_confident_to_people_and_accepts_the_rest(
    people: dict[str, Loop], loop: Loop,
) -> None:
    rule = {"name": "big", "if": {"meta.amount": {">": 750}}, "route": "review"}
    conf = [0.8, 0.55, 0.7, 0.65, 0.6, 0.75, 0.85, 0.58, 0.95]
    got = submit(people["admin"], conf, budget_per_hour=4, over_budget="accept",
                 rules=[rule], threshold=0.9)
    by_id = {d["external_id"]: d for d in got}
    # x8 (rule) takes one place; the three least confident of the others take the rest.
    assert {e for e, d in by_id.items() if d["route"] == "review"} == {"x8", "x1", "x7", "x4"}
    over = {e for e, d in by_id.items() if d["reason"] == "over_budget"}
    assert over == {"x0", "x2", "x3", "x5", "x6"}
    assert all(by_id[e]["route"] == "auto" and by_id[e]["label"] == "benign" for e in over)
    # A later batch finds the queue full: its uncertain items are accepted, a rule's not.
    later = loop.project("triage").submit(
        [{"external_id": "y0", "data": {}, "meta": {"amount": 10}},
         {"external_id": "y1", "data": {}, "meta": {"amount": 10_000}}],
        proba=[[0.51, 0.49], [0.99, 0.01]])
    assert [(d["route"], d["reason"]) for d in later] == [("auto", "over_budget"),
                                                           ("review", "rule:big")]
    m = loop.project("triage").metrics()
    assert m["budget"]["accepted_over_budget"] == 6
    assert m["budget"]["bypass_share"] == pytest.approx(6 / 6)
    assert m["auto_error"]["n_auto"] == 0  # the promise's estimate leaves them out
    recorded = [entry for e in loop.audit_events(type="items.received")
                for entry in json.loads(e["body"])["payload"]["items"]]
    assert sum(entry["reason"] == "over_budget" for entry in recorded) == 6
    assert all(entry["inclusion_prob"] == 0 for entry in recorded
               if entry["reason"] == "over_budget")


def test_over_budget_accept_never_touches_a_stopped_project(people: dict[str, Loop]) -> None:
    got = submit(people["admin"], [0.6] * 5, budget_per_hour=1, over_budget="accept",
                 stopped=True)
    assert {(d["route"], d["reason"]) for d in got} == {("review", "stopped")}


@pytest.mark.parametrize(
    ("policy", "field"),
    [({"over_budget": "drop"}, "over_budget"), ({"budget_per_hour": -1}, "budget_per_hour"),
     ({"novelty": 0}, "novelty"), ({"novelty": 0.9}, "novelty"),
     ({"temperature": "yes"}, "temperature")],
)
def test_bad_budget_novelty_and_temperature_policies_are_refused(
    loop: Loop, policy: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput, match=f"policy.{field}"):
        loop.create_project("p", labels=LABELS, policy=policy)


def test_priority_is_monotone_in_confidence() -> None:
    from loopwise.service.budget import task_priority

    rng = np.random.default_rng(0)
    conf = rng.uniform(0.5, 1.0, 1000)
    n = conf.size
    pr = task_priority(np.full(n, "review"), np.full(n, "uncertain"), np.zeros(n, bool), conf,
                       np.ones(n, bool))
    order = np.argsort(pr, kind="stable")
    assert np.all(np.diff(conf[order]) >= -1e-3)  # ties within a thousandth
