"""Declarative routing rules, evaluated over a whole batch.

A rule (validated by ``loopwise.domain``; see ARCHITECTURE.md, policy ``rules``)::

    {"name": "high_amount", "if": {"meta.amount": {">": 10000},
                                   "prediction.confidence": {"<": 0.6}}, "route": "expert"}

It matches an item when **every** condition holds. Fields: ``meta.<key>[.<key>...]`` and
``data.<key>[...]`` (nested objects), and ``prediction.label`` (the class name when class
names are given, else its index), ``prediction.label_index``, ``prediction.confidence``
(the gate's score), ``prediction.novelty`` (the novelty score, when a detector runs).
Operators: ``> >= < <=`` (both sides numbers, or both strings; booleans are not numbers),
``== !=`` (Python equality, so ``1 == 1.0``), ``in`` / ``not in`` (membership in a list).

**Missing fields never match**: a condition on a field that is absent or ``null`` is
false for every operator, ``!=`` and ``not in`` included — so a rule cannot fire because
a client forgot to send a field, and a rule meant to exclude something must say so on a
field that is present. Values of the wrong type (``"abc" > 5``) do not match either.

>>> rules = compile_rules([{"name": "big", "if": {"meta.amount": {">": 100}}, "route": "expert"}])
>>> match_rules(rules, 3, meta=[{"amount": 500}, {"amount": 5}, {}]).tolist()
[[True, False, False]]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

OPERATORS = frozenset({">", ">=", "<", "<=", "==", "!=", "in", "not in"})
PREDICTION_FIELDS = frozenset({"label", "label_index", "confidence", "novelty"})
_ORDER = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal}
_MISSING = object()


@dataclass(frozen=True)
class Condition:
    """One test: ``field`` (dotted path) ``op`` ``value``."""

    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class Rule:
    """A compiled rule: all ``conditions`` must hold; then the item goes to ``route``."""

    name: str
    route: str
    conditions: tuple[Condition, ...]

    @property
    def reason(self) -> str:
        """The reason code, ``rule:<name>``."""
        return f"rule:{self.name}"


def compile_rules(rules: Sequence[Mapping[str, Any] | Rule]) -> tuple[Rule, ...]:
    """Turn policy rule objects into :class:`Rule` (checks the shape, raises ValueError).

    The policy layer validates rules with messages for people; this check only guards
    the gate against a malformed rule reaching it some other way.
    """
    out: list[Rule] = []
    for i, r in enumerate(rules):
        if isinstance(r, Rule):
            out.append(r)
            continue
        name, route, cond = r.get("name"), r.get("route"), r.get("if")
        if not isinstance(name, str) or not name:
            raise ValueError(f"rules[{i}].name: must be a non-empty string")
        if route not in ("review", "expert"):
            raise ValueError(f"rules[{i}].route: must be 'review' or 'expert', got {route!r}")
        if not isinstance(cond, Mapping) or not cond:
            raise ValueError(f"rules[{i}].if: must be a non-empty object")
        conditions: list[Condition] = []
        for fld, test in cond.items():
            root, _, rest = str(fld).partition(".")
            if root not in ("meta", "data", "prediction") or not rest:
                raise ValueError(f"rules[{i}].if: field {fld!r} must start with meta., data. "
                                 "or prediction.")
            if root == "prediction" and rest not in PREDICTION_FIELDS:
                raise ValueError(f"rules[{i}].if: unknown field {fld!r}; known: "
                                 f"{sorted('prediction.' + f for f in PREDICTION_FIELDS)}")
            if not isinstance(test, Mapping) or not test:
                raise ValueError(f"rules[{i}].if.{fld}: must be an object like {{'>': 1}}")
            for op, value in test.items():
                if op not in OPERATORS:
                    raise ValueError(f"rules[{i}].if.{fld}: unknown operator {op!r}")
                if op in ("in", "not in") and not isinstance(value, list | tuple):
                    raise ValueError(f"rules[{i}].if.{fld}: {op!r} needs a list")
                conditions.append(Condition(str(fld), str(op), value))
        out.append(Rule(name, str(route), tuple(conditions)))
    names = [r.name for r in out]
    if len(set(names)) != len(names):
        raise ValueError("rule names must be unique")
    return tuple(out)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(
        v, bool | np.bool_
    )


def _lookup(obj: Any, keys: Sequence[str]) -> Any:
    for key in keys:
        if not isinstance(obj, Mapping):
            return _MISSING
        obj = obj.get(key, _MISSING)
        if obj is _MISSING:
            return _MISSING
    return _MISSING if obj is None else obj


def _column(records: Sequence[Mapping[str, Any]] | None, keys: Sequence[str], n: int
            ) -> list[Any]:
    if records is None:
        return [_MISSING] * n
    if len(records) != n:
        raise ValueError(f"got {len(records)} meta/data records for {n} items")
    return [_lookup(r, keys) for r in records]


def _numeric(values: Sequence[Any] | npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """Numbers as float, everything else (missing, strings, booleans, NaN) as NaN."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        return values.astype(np.float64, copy=False)
    return np.fromiter(
        (float(v) if _is_number(v) else math.nan for v in values), np.float64, len(values)
    )


def _test(values: Sequence[Any] | npt.NDArray[Any], op: str, operand: Any
          ) -> npt.NDArray[np.bool_]:
    n = len(values)
    if op in _ORDER:
        if _is_number(operand):
            nums = _numeric(values)
            with np.errstate(invalid="ignore"):
                out: npt.NDArray[np.bool_] = _ORDER[op](nums, float(operand))
            return out
        if isinstance(operand, str):
            fn = _ORDER[op]
            return np.fromiter(
                (isinstance(v, str) and bool(fn(v, operand)) for v in values), bool, n
            )
        return np.zeros(n, dtype=bool)
    if isinstance(values, np.ndarray):
        if op in ("==", "!="):
            if values.dtype.kind in "iuf" and not _is_number(operand):
                return np.zeros(n, dtype=bool) if op == "==" else ~np.isnan(_numeric(values))
            eq = np.asarray(values == operand, dtype=bool)
            if values.dtype.kind == "f":
                present: npt.NDArray[np.bool_] = ~np.isnan(values)
                return eq if op == "==" else present & ~eq
            return eq if op == "==" else ~eq
        member: npt.NDArray[np.bool_] = (
            np.isin(values, np.asarray(list(operand), dtype=object)) if len(operand)
            else np.zeros(n, dtype=bool)
        )
        if values.dtype.kind == "f":
            present = ~np.isnan(values)
            return present & member if op == "in" else present & ~member
        return member if op == "in" else ~member
    if op == "==":
        return np.fromiter((v is not _MISSING and _eq(v, operand) for v in values), bool, n)
    if op == "!=":
        return np.fromiter((v is not _MISSING and not _eq(v, operand) for v in values), bool, n)
    items = list(operand)
    if op == "in":
        return np.fromiter((v is not _MISSING and _member(v, items) for v in values), bool, n)
    return np.fromiter((v is not _MISSING and not _member(v, items) for v in values), bool, n)


def _eq(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _member(v: Any, items: list[Any]) -> bool:
    return any(_eq(v, x) for x in items)


def match_rules(
    rules: Sequence[Rule],
    n: int,
    *,
    meta: Sequence[Mapping[str, Any]] | None = None,
    data: Sequence[Mapping[str, Any]] | None = None,
    prediction: Mapping[str, npt.ArrayLike] | None = None,
) -> npt.NDArray[np.bool_]:
    """Which rule matches which item.

    Parameters
    ----------
    rules : compiled rules (:func:`compile_rules`).
    n : number of items.
    meta, data : ``n`` objects each, or ``None`` (every field missing).
    prediction : arrays of length ``n`` keyed by ``label``, ``label_index``,
        ``confidence``, ``novelty`` (a missing key: the field is missing; ``NaN`` in a float
        array: missing for that item).

    Returns
    -------
    (len(rules), n) bool.
    """
    out = np.zeros((len(rules), n), dtype=bool)
    cache: dict[str, Sequence[Any] | npt.NDArray[Any]] = {}
    pred = prediction or {}
    for i, rule in enumerate(rules):
        hit = np.ones(n, dtype=bool)
        for cond in rule.conditions:
            if cond.field not in cache:
                root, _, rest = cond.field.partition(".")
                if root == "prediction":
                    if rest in pred:
                        arr = np.asarray(pred[rest])
                        if arr.shape != (n,):
                            raise ValueError(f"prediction.{rest} must have shape ({n},)")
                        cache[cond.field] = arr
                    else:
                        cache[cond.field] = [_MISSING] * n
                else:
                    cache[cond.field] = _column(meta if root == "meta" else data,
                                                rest.split("."), n)
            hit &= _test(cache[cond.field], cond.op, cond.value)
            if not hit.any():
                break
        out[i] = hit
    return out
