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
