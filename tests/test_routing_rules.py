"""Declarative rules over a batch: operators, nested fields, missing fields never match."""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopwise.routing import Gate, compile_rules, match_rules

OPS = [">", ">=", "<", "<=", "==", "!=", "in", "not in"]
_PY = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _reference(value: Any, op: str, operand: Any, present: bool) -> bool:
    """One condition on one item, as the docs say, in plain Python."""
    if not present or value is None:
        return False
    if op in _PY:
        if _number(operand) and _number(value):
            return bool(_PY[op](value, operand))
        if isinstance(operand, str) and isinstance(value, str):
            return bool(_PY[op](value, operand))
        return False
    if op == "==":
        return bool(value == operand)
    if op == "!=":
        return bool(value != operand)
    inside = any(value == x for x in operand)
    return inside if op == "in" else not inside


values = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(-5, 5, allow_nan=False),
    st.sampled_from(["a", "b", "vip"]), st.lists(st.integers(0, 2), max_size=2),
)
operands = st.one_of(st.integers(-5, 5), st.floats(-5, 5, allow_nan=False),
                     st.sampled_from(["a", "b", "vip"]), st.booleans())


@given(st.lists(st.tuples(st.booleans(), values), min_size=1, max_size=30),
       st.sampled_from(OPS), operands, st.lists(operands, max_size=3))
@settings(max_examples=300, deadline=None)
def test_vectorised_rules_match_the_plain_reference(
    items: list[tuple[bool, Any]], op: str, operand: Any, members: list[Any]
) -> None:
    arg = members if op in ("in", "not in") else operand
    rules = compile_rules([{"name": "r", "if": {"meta.x": {op: arg}}, "route": "review"}])
    meta = [{"x": v} if present else {"y": 1} for present, v in items]
    got = match_rules(rules, len(items), meta=meta)[0]
    want = [_reference(v, op, arg, present) for present, v in items]
    assert got.tolist() == want


@given(st.sampled_from(OPS), operands)
@settings(max_examples=100, deadline=None)
def test_missing_fields_never_match(op: str, operand: Any) -> None:
    arg = [operand] if op in ("in", "not in") else operand
    rules = compile_rules([{"name": "r", "if": {"meta.a.b": {op: arg}}, "route": "expert"}])
    meta = [{}, {"a": None}, {"a": {}}, {"a": {"b": None}}, {"a": 3}]
    assert not match_rules(rules, 5, meta=meta).any()
    assert not match_rules(rules, 5).any()  # no meta at all


def test_all_conditions_must_hold_and_nested_paths_work() -> None:
    rules = compile_rules([{
        "name": "r", "route": "expert",
        "if": {"meta.amount": {">": 100, "<=": 1000}, "data.shop.country": {"in": ["fr", "de"]}},
    }])
    meta = [{"amount": 500}, {"amount": 500}, {"amount": 5000}, {"amount": 500}]
    data = [{"shop": {"country": "fr"}}, {"shop": {"country": "us"}},
            {"shop": {"country": "de"}}, {"shop": "fr"}]
    assert match_rules(rules, 4, meta=meta, data=data)[0].tolist() == [True, False, False, False]


def test_prediction_fields() -> None:
    rules = compile_rules([
        {"name": "mal", "if": {"prediction.label": {"==": "malignant"}}, "route": "expert"},
        {"name": "low", "if": {"prediction.confidence": {"<": 0.6}}, "route": "review"},
        {"name": "idx", "if": {"prediction.label_index": {"in": [0]}}, "route": "review"},
    ])
    pred = {"label": np.array(["benign", "malignant", "benign"]),
            "label_index": np.array([0, 1, 0]), "confidence": np.array([0.9, 0.95, 0.5])}
    m = match_rules(rules, 3, prediction=pred)
    assert m.tolist() == [[False, True, False], [False, False, True], [True, False, True]]
    gate = Gate(0.8, rules=[
        {"name": "mal", "if": {"prediction.label": {"==": "malignant"}}, "route": "expert"}])
    b = gate.route(np.array([[0.1, 0.9], [0.9, 0.1]]), labels=["benign", "malignant"])
    assert b.route.tolist() == ["expert", "auto"] and b.reason[0] == "rule:mal"


def test_nan_prediction_is_missing() -> None:
    rules = compile_rules([{"name": "r", "if": {"prediction.novelty": {"!=": 1.0}},
                            "route": "expert"}])
    m = match_rules(rules, 2, prediction={"novelty": np.array([np.nan, 2.0])})
    assert m[0].tolist() == [False, True]


@pytest.mark.parametrize(("rule", "message"), [
    ({"name": "", "if": {"meta.a": {">": 1}}, "route": "expert"}, "name"),
    ({"name": "r", "if": {"meta.a": {">": 1}}, "route": "auto"}, "route"),
    ({"name": "r", "if": {}, "route": "expert"}, "non-empty"),
    ({"name": "r", "if": {"x.a": {">": 1}}, "route": "expert"}, "must start"),
    ({"name": "r", "if": {"prediction.foo": {">": 1}}, "route": "expert"}, "unknown field"),
    ({"name": "r", "if": {"meta.a": {"~": 1}}, "route": "expert"}, "operator"),
    ({"name": "r", "if": {"meta.a": {"in": 1}}, "route": "expert"}, "list"),
])
def test_malformed_rules_are_named(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compile_rules([rule])


def test_duplicate_names_and_wrong_lengths() -> None:
    r = {"name": "r", "if": {"meta.a": {">": 1}}, "route": "expert"}
    with pytest.raises(ValueError, match="unique"):
        compile_rules([r, r])
    with pytest.raises(ValueError, match="records"):
        match_rules(compile_rules([r]), 3, meta=[{}])


def test_policy_rules_validated_by_the_domain_compile_here() -> None:
    from loopwise.domain import Policy

    pol = Policy.from_dict({"rules": [
        {"name": "high_amount", "if": {"meta.amount": {">": 10000},
                                       "prediction.confidence": {"<": 0.6}}, "route": "expert"},
    ]})
    gate = Gate(pol.threshold, rules=pol.rules, audit_rate=0.0)
    b = gate.route(np.array([[0.55, 0.45], [0.55, 0.45], [0.99, 0.01]]),
                   meta=[{"amount": 20_000}, {"amount": 5}, {"amount": 20_000}])
    assert b.route.tolist() == ["expert", "review", "auto"]
    assert b.reason.tolist() == ["rule:high_amount", "uncertain", "confident"]


def test_rules_on_many_items_are_fast_enough() -> None:
    """Per-item Python runs only to read meta fields; 100k items in well under a second."""
    import time

    rules = compile_rules([{"name": "r", "if": {"meta.amount": {">": 10}}, "route": "expert"}])
    meta = [{"amount": i % 20} for i in range(100_000)]
    t = time.perf_counter()
    m = match_rules(rules, 100_000, meta=meta)
    assert time.perf_counter() - t < 2.0
    assert m.sum() == 45_000
