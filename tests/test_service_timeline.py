"""The dashboard's timeline: automation and the audited error of automatic decisions per
window of items, on both databases."""

from __future__ import annotations

import pytest

from loopwise import Loop


def test_windows_show_automation_and_the_audited_error(loop: Loop) -> None:
    loop.create_user("rev", "reviewer")
    project = loop.create_project("t", labels=["a", "b"], policy={"audit_rate": 1.0})
    # first 100 items: half confident; next 100: all confident
    proba = [[0.95, 0.05] if i % 2 or i >= 100 else [0.6, 0.4] for i in range(200)]
    project.submit([{"external_id": f"i{i}", "data": {"i": i}} for i in range(200)],
                   proba=proba)
    rev = loop.as_user("rev")
    while tasks := rev.project("t").claim(100):
        for t in tasks:
            i = int(t["item"]["external_id"][1:])
            # audits of the second hundred: every fourth is wrong; of the first: none
            rev.submit_task(t["task_id"], "b" if i >= 100 and i % 4 == 0 else "a")
    tl = project.timeline(points=2) if hasattr(project, "timeline") else (
        loop.service.timeline(loop.actor, "t", points=2))
    first, second = tl["windows"]
    assert (first["n"], second["n"]) == (100, 100)
    assert first["automation"] == pytest.approx(0.5) and second["automation"] == 1.0
    assert first["auto_error"]["estimate"] == 0.0 and first["auto_error"]["n"] == 50
    assert second["auto_error"]["estimate"] == pytest.approx(0.25)
    lo, hi = second["auto_error"]["ci"]
    assert lo < 0.25 < hi
    assert tl["target_error"] is None


def test_an_empty_project_has_no_windows(loop: Loop) -> None:
    loop.create_project("e", labels=["a", "b"])
    assert loop.service.timeline(loop.actor, "e")["windows"] == []


def test_throughput_counts_each_persons_answers_of_the_last_day(loop: Loop) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from loopwise.errors import Forbidden, InvalidInput
    from loopwise.store.tables import reviews

    for name in ("ann", "bob"):
        loop.create_user(name, "reviewer")
    project = loop.create_project("pace", labels=["a", "b"], policy={"audit_rate": 0.0})
    project.submit([{"data": {"i": i}} for i in range(5)], proba=[[0.6, 0.4]] * 5)
    ann, bob = loop.as_user("ann"), loop.as_user("bob")
    for t, secs in zip(ann.project("pace").claim(3), (10.0, 30.0, None), strict=True):
        ann.submit_task(t["task_id"], "a", seconds=secs)
    (t,) = bob.project("pace").claim(1)
    bob.submit_task(t["task_id"], "b", seconds=5.0)
    got = loop.service.throughput(loop.actor, "pace")
    assert got == [{"name": "ann", "answers": 3, "median_seconds": 20.0},
                   {"name": "bob", "answers": 1, "median_seconds": 5.0}]
    with loop.service.db.write() as conn:  # bob's answer was two days ago
        conn.execute(update(reviews).where(reviews.c.label == 1)
                     .values(created_at=datetime.now(UTC) - timedelta(days=2)))
    assert [r["name"] for r in loop.service.throughput(loop.actor, "pace")] == ["ann"]
    with pytest.raises(Forbidden):
        loop.service.throughput(ann.actor, "pace")
    with pytest.raises(InvalidInput):
        loop.service.throughput(loop.actor, "pace", hours=0)
