"""Vocabulary shared by every layer: enums, the policy and its validation.

Nothing here imports a web, database or validation library, so the pure algorithm
packages (``routing``, ``learning``, ``audit`` ...) can use it.

>>> p = Policy.from_dict({"threshold": 0.8, "audit_rate": 0.1})
>>> p.threshold, p.audit_rate, p.stopped
(0.8, 0.1, False)
>>> Policy.from_dict({"threshold": 2})
Traceback (most recent call last):
...
loopwise.errors.InvalidInput: policy.threshold: must be a number in [0, 1], got 2
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from loopwise.errors import InvalidInput


class Route(StrEnum):
    """Where an item goes."""

    AUTO = "auto"
    REVIEW = "review"
    EXPERT = "expert"
    AUDITED = "audited"
    POOL = "pool"
    """Waiting unlabeled in the active-learning pool (never routed by the gate)."""


class Reason(StrEnum):
    """Why an item went where it did (``rule:<name>`` is built with :func:`rule_reason`)."""

    CONFIDENT = "confident"
    UNCERTAIN = "uncertain"
    NOVEL = "novel"
    AUDIT_SAMPLE = "audit_sample"
    DISAGREEMENT = "disagreement"
    STOPPED = "stopped"
    OVER_BUDGET = "over_budget"
    NO_MODEL = "no_model"
    ESCALATED = "escalated"
    UNCERTIFIED = "uncertified"
    """The policy makes a promise (target_error) but no threshold is certified yet."""
    SEED = "seed"
    POOL = "pool"
    POOL_QUERY = "pool_query"
    """A pool item an active-learning query chose for people to label."""


def rule_reason(name: str) -> str:
    """The reason code of a rule: ``rule_reason("high_amount") == "rule:high_amount"``."""
    return f"rule:{name}"


class Role(StrEnum):
    """What a user may do: admins configure, experts decide escalations and override,
    reviewers answer tasks, services submit items and read results."""

    ADMIN = "admin"
    EXPERT = "expert"
    REVIEWER = "reviewer"
    SERVICE = "service"


class TaskState(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    DONE = "done"
    CANCELLED = "cancelled"


class DecisionSource(StrEnum):
    MODEL = "model"
    REVIEWER = "reviewer"
    CONSENSUS = "consensus"
    EXPERT = "expert"
    OVERRIDE = "override"


HUMAN_SOURCES = frozenset(
    {
        DecisionSource.REVIEWER,
        DecisionSource.CONSENSUS,
        DecisionSource.EXPERT,
        DecisionSource.OVERRIDE,
    }
)


class InputKind(StrEnum):
    TABULAR = "tabular"
    TEXT = "text"
    IMAGE = "image"


class ModelStatus(StrEnum):
    CHAMPION = "champion"
    CHALLENGER = "challenger"
    RETIRED = "retired"
    REJECTED = "rejected"
    """A challenger the promotion gate turned down (its report says why)."""


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
"""A project's name: URL-safe, lower case, 1-63 characters."""

BREACH_ACTIONS = ("notify", "tighten", "review_all")
"""What happens when audits show the promise broken: an alert only; an alert and a
recalibration on recent labels; an alert and the stop switch."""

OVER_BUDGET_ACTIONS = ("wait", "accept")
"""Beyond ``budget_per_hour``: items wait for people in priority order; or the least
uncertain of them are accepted automatically (reason ``over_budget``, outside the promise).
"""

HOLDOUT_FRACTION = 0.3
"""Share of items whose human labels are held out of training (by a hash of the item id),
so that calibration and model comparison use labels the model never saw."""


def in_holdout(item_id: int) -> bool:
    """Whether an item belongs to the fixed holdout (a hash of its id; no randomness).

    >>> round(sum(in_holdout(i) for i in range(10_000)) / 10_000, 1)
    0.3
    """
    digest = hashlib.sha256(f"loopwise-holdout:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < HOLDOUT_FRACTION * 2**64


_RULE_OPS = frozenset({">", ">=", "<", "<=", "==", "!=", "in", "not in"})


def _number(value: Any, name: str, lo: float, hi: float) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not lo <= value <= hi:
        raise InvalidInput(f"policy.{name}: must be a number in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)


def _count(value: Any, name: str, lo: int, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < lo:
        raise InvalidInput(f"policy.{name}: must be a whole number >= {lo}, got {value!r}")
    return value


def _validate_rule(rule: Any, i: int) -> dict[str, Any]:
    where = f"policy.rules[{i}]"
    if not isinstance(rule, dict):
        raise InvalidInput(f"{where}: must be an object with name, if and route")
    unknown = set(rule) - {"name", "if", "route"}
    if unknown:
        raise InvalidInput(f"{where}: unknown keys {sorted(unknown)}; allowed: name, if, route")
    name = rule.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        raise InvalidInput(f"{where}.name: must be 1-64 letters, digits, '_', '.', '-'")
    if rule.get("route") not in (Route.REVIEW, Route.EXPERT):
        raise InvalidInput(
            f"{where}.route: must be 'review' or 'expert', got {rule.get('route')!r}"
        )
    cond = rule.get("if")
    if not isinstance(cond, dict) or not cond:
        raise InvalidInput(f"{where}.if: must be a non-empty object of field -> {{op: value}}")
    for fld, test in cond.items():
        if not isinstance(fld, str) or fld.split(".")[0] not in ("meta", "data", "prediction"):
            raise InvalidInput(
                f"{where}.if: field {fld!r} must start with 'meta.', 'data.' or 'prediction.'"
            )
        if not isinstance(test, dict) or not test:
            raise InvalidInput(f"{where}.if.{fld}: must be an object like {{'>': 10000}}")
        for op, operand in test.items():
            if op not in _RULE_OPS:
                raise InvalidInput(
                    f"{where}.if.{fld}: unknown operator {op!r}; known: {sorted(_RULE_OPS)}"
                )
            if op in ("in", "not in") and not isinstance(operand, list):
                raise InvalidInput(f"{where}.if.{fld}: {op!r} needs a list, got {operand!r}")
    return {"name": name, "if": cond, "route": str(rule["route"])}


ALERT_ACTIONS = ("notify", "tighten", "stop")
"""What a confirmed alert does: an event and webhooks; also recalibrate the gate; also
set the stop switch."""

ALERT_METRIC = re.compile(
    r"^(drift\.(psi_max|js_max|confidence_psi|label_psi|review_rate_psi"
    r"|reviewers\.(answers_js|agreement_psi|agreement_difference))"
    r"|fairness\.((model|reviewers|decisions|routing)\.)?[a-z_]+"
    r"|auto_error\.(estimate|low|high)|review_rate|automation_rate)$"
)
"""The metrics an alert rule may watch (see ``loopwise.service.alerts``)."""


def validate_alerts(rules: Any) -> list[dict[str, Any]]:
    """Validate ``policy.alerts``: each rule ``{"name", "metric", "above" | "below",
    "min_n" [200], "persistence" [[1, 1]] (k of m evaluations), "cooldown_minutes" [60],
    "action" ["notify"]}``; returns the rules with defaults filled in."""
    if not isinstance(rules, list):
        raise InvalidInput(f"policy.alerts: must be a list, got {type(rules).__name__}")
    out: list[dict[str, Any]] = []
    for i, r in enumerate(rules):
        where = f"policy.alerts[{i}]"
        keys = {"name", "metric", "above", "below", "min_n", "persistence",
                "cooldown_minutes", "action"}
        if not isinstance(r, dict) or set(r) - keys:
            raise InvalidInput(f"{where}: must be an object with keys among {sorted(keys)}")
        name, metric = r.get("name"), r.get("metric")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
            raise InvalidInput(f"{where}.name: must be 1-64 letters, digits, '_', '.', '-'")
        if not isinstance(metric, str) or not ALERT_METRIC.fullmatch(metric):
            raise InvalidInput(f"{where}.metric: unknown metric {metric!r}")
        if ("above" in r) == ("below" in r):
            raise InvalidInput(f"{where}: give exactly one of 'above' and 'below'")
        side = "above" if "above" in r else "below"
        bound = _number(r[side], f"alerts[{i}].{side}", -1e12, 1e12)
        min_n = _count(r.get("min_n", 200), f"alerts[{i}].min_n", 1)
        km = r.get("persistence", [1, 1])
        ok = (isinstance(km, list) and len(km) == 2
              and all(isinstance(x, int) and not isinstance(x, bool) for x in km)
              and 1 <= km[0] <= km[1] <= 100)
        if not ok:
            raise InvalidInput(f"{where}.persistence: must be [k, m] with 1 <= k <= m <= 100")
        cooldown = _number(r.get("cooldown_minutes", 60), f"alerts[{i}].cooldown_minutes",
                           0, 1e6)
        action = r.get("action", "notify")
        if action not in ALERT_ACTIONS:
            raise InvalidInput(
                f"{where}.action: must be one of {list(ALERT_ACTIONS)}, got {action!r}")
        out.append({"name": name, "metric": metric, side: bound, "min_n": min_n,
                    "persistence": list(km), "cooldown_minutes": cooldown,
                    "action": action})
    if len({r["name"] for r in out}) != len(out):
        raise InvalidInput("policy.alerts: rule names must be unique")
    return out


AUDIT_INPUTS = ("hash", "data")
"""What audit events keep of an input: its SHA-256 only, or the raw data too."""


def _audit_inputs(value: Any) -> str:
    if value not in AUDIT_INPUTS:
        raise InvalidInput(
            f"policy.audit_inputs: must be one of {list(AUDIT_INPUTS)}, got {value!r}"
        )
    return str(value)


@dataclass(frozen=True)
class Policy:
    """The rules a project's gate and queue follow (see ARCHITECTURE.md, "policy").

    Build one with :meth:`from_dict`, which validates every field and names the bad one.
    """

    threshold: float = 0.9
    target_error: float | None = None
    delta: float = 0.1
    audit_rate: float = 0.02
    stopped: bool = False
    rules: list[dict[str, Any]] = field(default_factory=list)
    budget_per_hour: int | None = None
    min_reviews: int = 1
    max_reviews: int = 1
    consensus_confidence: float = 0.95
    retrain_every: int | None = None
    strategy: str = "margin"
    lease_seconds: int = 600
    per_class: bool = False
    on_breach: str = "notify"
    over_budget: str = "wait"
    novelty: float | None = None
    temperature: bool = False
    blind: bool = False
    min_quality: float | None = None
    """Reviewers whose quality score (>= 20 scored answers) falls below it are paused."""
    gold_rate: float = 0.0
    """Share of reviewers' claims that are gold items (known labels)."""
    max_open_per_reviewer: int | None = None
    """Most tasks one person may hold at once in the project."""
    alerts: list[dict[str, Any]] = field(default_factory=list)
    fairness_tolerance: float = 0.05
    """Most a challenger may widen a per-group accuracy gap and still be promoted."""
    audit_inputs: str = "hash"
    """What ``items.received`` events keep of each input: ``hash`` (its SHA-256, so personal
    data can be erased from items while the trail still proves what was decided on) or
    ``data`` (the raw input too)."""

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> Policy:
        """Validate ``raw`` (missing fields take their defaults); raise InvalidInput."""
        raw = dict(raw or {})
        known = set(cls.__dataclass_fields__)
        unknown = set(raw) - known
        if unknown:
            raise InvalidInput(f"policy: unknown fields {sorted(unknown)}; known: {sorted(known)}")
        d = asdict(cls())
        d.update(raw)
        stopped = d["stopped"]
        if not isinstance(stopped, bool):
            raise InvalidInput(f"policy.stopped: must be true or false, got {stopped!r}")
        target = d["target_error"]
        if target is not None:
            target = _number(target, "target_error", 0.0, 1.0)
            if target <= 0:
                raise InvalidInput("policy.target_error: must be > 0")
        rules = d["rules"]
        if not isinstance(rules, list):
            raise InvalidInput(f"policy.rules: must be a list, got {type(rules).__name__}")
        checked = [_validate_rule(r, i) for i, r in enumerate(rules)]
        names = [r["name"] for r in checked]
        if len(set(names)) != len(names):
            raise InvalidInput("policy.rules: rule names must be unique")
        min_r = _count(d["min_reviews"], "min_reviews", 1)
        max_r = _count(d["max_reviews"], "max_reviews", 1)
        assert min_r is not None and max_r is not None
        if max_r < min_r:
            raise InvalidInput(f"policy.max_reviews ({max_r}) must be >= min_reviews ({min_r})")
        strategy = d["strategy"]
        if not isinstance(strategy, str) or not strategy:
            raise InvalidInput(f"policy.strategy: must be a strategy name, got {strategy!r}")
        lease = _count(d["lease_seconds"], "lease_seconds", 1)
        assert lease is not None
        if not isinstance(d["per_class"], bool):
            raise InvalidInput(f"policy.per_class: must be true or false, got {d['per_class']!r}")
        if d["on_breach"] not in BREACH_ACTIONS:
            raise InvalidInput(
                f"policy.on_breach: must be one of {list(BREACH_ACTIONS)}, got {d['on_breach']!r}"
            )
        if d["over_budget"] not in OVER_BUDGET_ACTIONS:
            raise InvalidInput(
                f"policy.over_budget: must be one of {list(OVER_BUDGET_ACTIONS)}, "
                f"got {d['over_budget']!r}"
            )
        novelty = d["novelty"]
        if novelty is not None:
            novelty = _number(novelty, "novelty", 0.0, 0.5)
            if novelty <= 0:
                raise InvalidInput("policy.novelty: must be > 0 (the share of ordinary items "
                                   "flagged as novel), or null to turn novelty off")
        if not isinstance(d["blind"], bool):
            raise InvalidInput(f"policy.blind: must be true or false, got {d['blind']!r}")
        if not isinstance(d["temperature"], bool):
            raise InvalidInput(
                f"policy.temperature: must be true or false, got {d['temperature']!r}"
            )
        return cls(
            threshold=_number(d["threshold"], "threshold", 0.0, 1.0),
            target_error=target,
            delta=_number(d["delta"], "delta", 1e-9, 0.5),
            audit_rate=_number(d["audit_rate"], "audit_rate", 0.0, 1.0),
            stopped=stopped,
            rules=checked,
            budget_per_hour=_count(d["budget_per_hour"], "budget_per_hour", 0, optional=True),
            min_reviews=min_r,
            max_reviews=max_r,
            consensus_confidence=_number(
                d["consensus_confidence"], "consensus_confidence", 0.5, 1.0
            ),
            retrain_every=_count(d["retrain_every"], "retrain_every", 1, optional=True),
            strategy=strategy,
            lease_seconds=lease,
            per_class=d["per_class"],
            on_breach=d["on_breach"],
            over_budget=d["over_budget"],
            novelty=novelty,
            temperature=d["temperature"],
            blind=d["blind"],
            min_quality=None if d["min_quality"] is None
            else _number(d["min_quality"], "min_quality", 0.0, 1.0),
            gold_rate=_number(d["gold_rate"], "gold_rate", 0.0, 1.0),
            max_open_per_reviewer=_count(
                d["max_open_per_reviewer"], "max_open_per_reviewer", 1, optional=True
            ),
            alerts=validate_alerts(d["alerts"]),
            fairness_tolerance=_number(d["fairness_tolerance"], "fairness_tolerance", 0.0, 1.0),
            audit_inputs=_audit_inputs(d["audit_inputs"]),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy; ``Policy.from_dict(p.to_dict()) == p``."""
        return asdict(self)

    def merged(self, changes: dict[str, Any]) -> Policy:
        """A new policy with ``changes`` applied on top of this one, validated."""
        return Policy.from_dict({**self.to_dict(), **changes})
