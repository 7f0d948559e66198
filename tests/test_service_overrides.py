"""Overrides: a new decision with its reason, the old one kept; only admins and experts;
every bad request is refused and writes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from loopwise import Loop
from loopwise.errors import Conflict, Forbidden, InvalidInput, NotFound

LABELS = ["no", "yes"]


def _setup(loop: Any) -> tuple[Any, int, int]:
    """Project ``t``; an automatic decision and an item waiting for review."""
    p = loop.create_project("t", labels=LABELS, policy={"audit_rate": 0.0})
    auto, waiting = p.submit(
        [{"data": {"x": 1}}, {"data": {"x": 2}}], proba=[[0.99, 0.01], [0.6, 0.4]]
    )
    assert auto["route"] == "auto" and waiting["route"] == "review"
    return p, auto["item_id"], waiting["item_id"]


def _events(loop: Any) -> int:
    return int(loop.verify_audit()["events"])


def test_an_override_is_a_new_decision_and_the_old_one_is_kept(loop: Loop) -> None:
    p, auto, _ = _setup(loop)
    loop.create_user("eve", "expert")
    out = loop.as_user("eve").project("t").override(auto, "yes", reason="biopsy says so")
    assert out == {
        "item_id": auto,
        "label": "yes",
        "source": "override",
        "reason": "biopsy says so",
        "by": "eve",
        "previous": {"label": "no", "source": "model"},
    }
    history = p.item(auto)["decisions"]
    assert [(d["label"], d["source"], d["current"]) for d in history] == [
        ("no", "model", False),
        ("yes", "override", True),
    ]
    assert history[1]["reason"] == "biopsy says so" and history[1]["by"] == "eve"
    (event,) = loop.audit_events(type="decision.overridden")
    body = json.loads(event["body"])
    assert body["actor"] == "eve"
    payload = body["payload"]
    assert (payload["previous_label_name"], payload["label_name"]) == ("no", "yes")
    assert payload["previous_source"] == "model" and payload["reason"] == "biopsy says so"
    # Overriding an override: the chain of decisions grows, one current.
    p.override(auto, "no", reason="second opinion")
    assert [d["current"] for d in p.item(auto)["decisions"]] == [False, False, True]
    assert loop.verify_audit()["ok"]


def test_only_admins_and_experts_may_override(loop: Loop) -> None:
    _, auto, _ = _setup(loop)
    for role in ("reviewer", "service"):
        loop.create_user(role, role)
        with pytest.raises(Forbidden):
            loop.as_user(role).project("t").override(auto, "yes", reason="I think so")


@pytest.mark.parametrize(
    ("label", "reason", "error", "match"),
    [
        ("yes", "", InvalidInput, "reason"),
        ("yes", "   ", InvalidInput, "reason"),
        ("yes", "x" * 2001, InvalidInput, "reason"),
        ("maybe", "why", InvalidInput, "label"),
        ("no", "why", InvalidInput, "already"),
    ],
)
def test_bad_overrides_write_nothing(
    loop: Loop, label: str, reason: str, error: type[Exception], match: str
) -> None:
    p, auto, _ = _setup(loop)
    before = _events(loop)
    with pytest.raises(error, match=match):
        p.override(auto, label, reason=reason)
    assert _events(loop) == before
    assert [d["source"] for d in p.item(auto)["decisions"]] == ["model"]


def test_an_undecided_or_unknown_item_cannot_be_overridden(loop: Loop) -> None:
    p, _, waiting = _setup(loop)
    before = _events(loop)
    with pytest.raises(Conflict, match="no decision"):
        p.override(waiting, "yes", reason="early")
    with pytest.raises(NotFound):
        p.override(10_000, "yes", reason="nothing there")
    other = loop.create_project("u", labels=LABELS)
    with pytest.raises(NotFound):  # an item of another project
        other.override(waiting, "yes", reason="wrong project")
    assert _events(loop) == before + 1  # only project u's creation
