"""Tests of the completeness rules of the audit trail (``loopwise.audit.completeness``)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from loopwise.audit import (
    COMPLETENESS_KINDS,
    CompletenessChecker,
    CompletenessProblem,
    check_completeness,
)
from loopwise.audit.completeness import OVERRIDE, RESUME, STOP

Event = tuple[Any, ...]


def test_a_complete_trail() -> None:
    events: list[Event] = [
        (1, "item.received", None, {"item": 1}, "triage"),
        (2, OVERRIDE, "expert", {"reason": "label was wrong"}, "triage"),
        (3, STOP, None, {"reason": "promise broken"}, "triage"),
        (4, OVERRIDE, "admin", {"reason": "urgent case"}, "triage"),
        (5, RESUME, "admin", {"reason": "gate recalibrated"}, "triage"),
        (6, "decision.made", "reviewer", {}, "triage"),
    ]
    r = check_completeness(events)
    assert r.ok and r.problem is None
    assert (r.n_events, r.n_overrides, r.n_stops, r.n_resumes) == (6, 2, 1, 1)
    assert dict(r.open_stops) == {}
    assert str(r) == "complete: 6 events, 2 overrides, 1 stop, 1 resume"


@pytest.mark.parametrize(
    ("event", "kind", "text"),
    [
        ((OVERRIDE, "expert", {}), "reason", "decision.overridden by role 'expert' has no reason"),
        ((OVERRIDE, "expert", {"reason": "  "}), "reason", "payload.reason is missing or blank"),
        ((OVERRIDE, "expert", {"reason": 3}), "reason", "has no reason"),
        ((OVERRIDE, "expert", ["reason"]), "reason", "has no reason"),
        ((OVERRIDE, "reviewer", {"reason": "x"}), "role", "(allowed: admin, expert)"),
        ((OVERRIDE, None, {"reason": "x"}), "role", "by an actor of unknown role"),
        ((STOP, None, {}), "reason", "project.stopped by the system or an unknown actor"),
        ((RESUME, "expert", {"reason": "x"}), "role", "project.resumed by role 'expert'"),
        ((RESUME, "admin", {"reason": ""}), "reason", "project.resumed by role 'admin' has no"),
        ((RESUME, None, {"reason": "x"}), "role", "(allowed: admin)"),
    ],
)
def test_each_rule_names_the_event(event: Event, kind: str, text: str) -> None:
    events = [(1, "item.received", None, {}), (2, *event), (3, OVERRIDE, "expert", {})]
    r = check_completeness(events)
    assert not r.ok and r.problem is not None
    assert (r.problem.seq, r.problem.kind) == (2, kind) and kind in COMPLETENESS_KINDS
    assert text in r.problem.message
    assert r.n_events == 2  # it stops at the first problem
    assert str(r).startswith(f"INCOMPLETE at event 2 ({kind}): ")


def test_stops_and_resumes_pair_up_per_project() -> None:
    events: list[Event] = [
        (1, STOP, "admin", {"reason": "drift"}, "a"),
        (2, STOP, None, {"reason": "promise broken"}, "b"),
        (3, STOP, "admin", {"reason": "again"}, "a"),  # already stopped: the first stop stays
        (4, RESUME, "admin", {"reason": "fixed"}, "b"),
        (5, STOP, "admin", {"reason": "global"}),
    ]
    r = check_completeness(events)
    assert r.ok and dict(r.open_stops) == {"a": 1, None: 5}
    assert str(r).endswith("still stopped: 'a' since event 1, None since event 5")
    bad = check_completeness([*events, (6, RESUME, "expert", {"reason": "x"}, "a")])
    assert bad.problem is not None
    assert bad.problem.message.endswith(
        "; the stop at event 1 of project 'a' has no authorised resume"
    )
    # a resume of a project not stopped is checked too, with no stop to name
    lone = check_completeness([(1, RESUME, "reviewer", {"reason": "x"}, "c")])
    assert lone.problem is not None and "the stop" not in lone.problem.message


def test_the_checker_streams_and_keeps_the_first_problem() -> None:
    checker = CompletenessChecker()
    assert checker.feed(1, OVERRIDE, "admin", {"reason": "x"}) is None
    first = checker.feed(2, OVERRIDE, "admin", {})
    assert isinstance(first, CompletenessProblem) and (first.seq, first.kind) == (2, "reason")
    assert checker.feed(3, RESUME, None, {}) is None  # after a problem nothing is checked
    r = checker.result()
    assert r.problem == first and r.n_events == 2


def test_roles_are_configurable_and_stops_carry_over() -> None:
    events: list[Event] = [(1, OVERRIDE, "reviewer", {"reason": "x"})]
    assert not check_completeness(events).ok
    assert check_completeness(events, override_roles=("reviewer",)).ok
    assert not check_completeness([(1, RESUME, "admin", {"reason": "x"})], resume_roles=()).ok
    checker = CompletenessChecker(open_stops={"a": 10})
    checker.feed(11, RESUME, "admin", {"reason": "done"}, "a")
    assert dict(checker.result().open_stops) == {}


def oracle(events: list[Event]) -> tuple[int, str] | None:
    """The rules, written out plainly: (seq, kind) of the first event that breaks one."""
    for seq, type_, role, payload, _project in events:
        has_reason = isinstance(payload.get("reason"), str) and payload["reason"].strip() != ""
        if type_ == OVERRIDE:
            if role not in ("admin", "expert"):
                return seq, "role"
            if not has_reason:
                return seq, "reason"
        elif type_ == STOP and not has_reason:
            return seq, "reason"
        elif type_ == RESUME:
            if role != "admin":
                return seq, "role"
            if not has_reason:
                return seq, "reason"
    return None


def test_random_trails_agree_with_a_plain_statement_of_the_rules() -> None:
    types = [OVERRIDE, STOP, RESUME, "decision.made", "item.received"]
    roles = ["admin", "expert", "reviewer", "service", None]
    reasons: list[dict[str, Any]] = [{"reason": "ok"}, {"reason": " "}, {}, {"reason": None}]
    found = 0
    for seed in range(500):
        rng = random.Random(seed)
        events: list[Event] = []
        for seq in range(1, rng.randint(1, 30) + 1):
            # mostly well-formed, so problems come at varied depths
            good = rng.random() < 0.93
            type_ = rng.choice(types)
            role = "admin" if good else rng.choice(roles)
            payload = {"reason": "ok"} if good else rng.choice(reasons)
            events.append((seq, type_, role, payload, rng.choice(["a", "b"])))
        r = check_completeness(events)
        expected = oracle(events)
        got = None if r.problem is None else (r.problem.seq, r.problem.kind)
        assert got == expected, seed
        found += expected is not None
        if expected is None:  # open stops: projects whose last stop/resume was a stop
            last: dict[str | None, tuple[str, int]] = {}
            for seq, type_, _, _, project in events:
                if type_ == STOP and last.get(project, ("", 0))[0] != STOP:
                    last[project] = (STOP, seq)
                elif type_ == RESUME:
                    last[project] = (RESUME, seq)
            stopped = {p: s for p, (t, s) in last.items() if t == STOP}
            assert dict(r.open_stops) == stopped, seed
    assert 100 < found < 450  # both outcomes are well exercised
