"""Policy validation: every bad field is named, defaults are those of ARCHITECTURE.md."""

from __future__ import annotations

import pytest

from loopwise.domain import Policy
from loopwise.errors import InvalidInput


def test_defaults_match_the_architecture() -> None:
    p = Policy.from_dict({})
    assert (p.threshold, p.audit_rate, p.stopped, p.rules) == (0.9, 0.02, False, [])
    assert (p.min_reviews, p.max_reviews, p.consensus_confidence) == (1, 1, 0.95)
    assert (p.budget_per_hour, p.retrain_every, p.strategy) == (None, None, "margin")


def test_round_trip() -> None:
    p = Policy.from_dict({"threshold": 0.7, "rules": [
        {"name": "big", "if": {"meta.amount": {">": 10000}}, "route": "expert"}]})
    assert Policy.from_dict(p.to_dict()) == p
    assert p.merged({"stopped": True}).stopped


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"threshold": 2}, "threshold"),
        ({"threshold": "high"}, "threshold"),
        ({"threshold": float("nan")}, "threshold"),
        ({"audit_rate": -0.1}, "audit_rate"),
        ({"stopped": "yes"}, "stopped"),
        ({"target_error": 0}, "target_error"),
        ({"min_reviews": 0}, "min_reviews"),
        ({"min_reviews": 3, "max_reviews": 2}, "max_reviews"),
        ({"budget_per_hour": -1}, "budget_per_hour"),
        ({"retrain_every": 1.5}, "retrain_every"),
        ({"lease_seconds": 0}, "lease_seconds"),
        ({"colour": "red"}, "unknown fields"),
        ({"rules": {}}, "rules"),
        ({"rules": [{"name": "x", "if": {"meta.a": {">": 1}}, "route": "auto"}]}, "route"),
        ({"rules": [{"name": "x", "if": {"amount": {">": 1}}, "route": "expert"}]}, "meta."),
        ({"rules": [{"name": "x", "if": {"meta.a": {"~": 1}}, "route": "expert"}]}, "operator"),
        ({"rules": [{"name": "x", "if": {"meta.a": {"in": 1}}, "route": "expert"}]}, "list"),
        ({"rules": [{"name": "bad name", "if": {"meta.a": {">": 1}}, "route": "expert"}]},
         "name"),
        ({"rules": [{"name": "x", "if": {"meta.a": {">": 1}}, "route": "expert"},
                    {"name": "x", "if": {"meta.b": {">": 1}}, "route": "review"}]}, "unique"),
    ],
)
def test_bad_policies_are_rejected_naming_the_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput, match=field):
        Policy.from_dict(raw)
