"""The promotion gate: a retrained model replaces the champion only when it is no worse on
the holdout and no less fair; the learning curve and where human labels came from.

Both models are scored on the same held-out human labels (``domain.in_holdout``: a hash of
the item id, so neither model ever trained on them). Accuracy: an exact one-sided McNemar
test on the discordant pairs (``b``: only the champion right, ``c``: only the challenger
right); the challenger is rejected when ``P(X >= b | X ~ Bin(b + c, 1/2)) <
PROMOTION_LEVEL``, i.e. when the data show it worse at the 5% level. Fairness: for each of
the project's sensitive attributes, the gap between the best and the worst accuracy of the
groups large enough to judge (:func:`loopwise.oversight.group_metrics`); the challenger is
rejected when it widens a gap by more than ``policy.fairness_tolerance``.

>>> import numpy as np
>>> y = np.array([0, 1] * 20)
>>> v = decide(y, challenger=y.copy(), champion=1 - y, meta=[{}] * 40, sensitive=[],
...            tolerance=0.05)
>>> v.promote, v.reason
(True, 'better or no worse than the champion on 40 holdout labels')
>>> decide(y, challenger=1 - y, champion=y, meta=[{}] * 40, sensitive=[], tolerance=0.05).promote
False
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import binom
from sqlalchemy import Connection, and_, func, select

from loopwise.domain import DecisionSource, Reason, Route
from loopwise.oversight import group_metrics, weighted_wilson, wilson
from loopwise.service.base import ProjectRow
from loopwise.service.views import human_labeled
from loopwise.store.tables import decisions, model_versions, routes

IntArray = npt.NDArray[np.int64]

PROMOTION_LEVEL = 0.05
"""One-sided level of the McNemar test that rejects a challenger worse than the champion."""


@dataclass(frozen=True)
class Verdict:
    """What the gate decided, why, and the figures behind it (JSON-ready)."""

    promote: bool
    reason: str
    report: dict[str, Any] = field(default_factory=dict)


def holdout_accuracy(y: IntArray, pred: IntArray,
                     weights: npt.NDArray[np.float64] | None = None) -> dict[str, Any]:
    """Accuracy of ``pred`` (n,) against ``y`` (n,) with its 95% Wilson interval and n
    (undefined, with the reason, when n is 0).

    ``weights`` (n,): each label's inverse inclusion probability. The loop asks people about
    uncertain items far more often than about confident ones, so the plain share of right
    answers on labeled items understates a model's accuracy on the stream; weighted
    (Hájek), with :func:`loopwise.oversight.weighted_wilson`'s interval.

    >>> y = np.array([0, 0, 1, 1])
    >>> holdout_accuracy(y, np.array([0, 1, 1, 0]), np.array([10.0, 1, 10, 1]))["estimate"]
    0.9090909090909091
    """
    right = pred == y
    if weights is None or len(y) == 0:
        return wilson(int(np.count_nonzero(right)), len(y)).to_dict()
    out = weighted_wilson(right, weights).to_dict()
    out["labels"] = len(y)
    return out


def mcnemar_worse(y: IntArray, challenger: IntArray, champion: IntArray) -> dict[str, Any]:
    """Exact one-sided McNemar test of "the challenger is less accurate than the champion":
    ``b`` pairs only the champion got right, ``c`` only the challenger; ``p_value`` is
    ``P(X >= b)`` for ``X ~ Bin(b + c, 1/2)`` (1 when there is no discordant pair).

    >>> mcnemar_worse(np.array([0, 0, 0]), np.array([1, 1, 0]), np.array([0, 0, 0]))
    {'b': 2, 'c': 0, 'p_value': 0.25}
    """
    right_new, right_old = challenger == y, champion == y
    b = int(np.count_nonzero(right_old & ~right_new))
    c = int(np.count_nonzero(right_new & ~right_old))
    p = float(binom.sf(b - 1, b + c, 0.5)) if b + c else 1.0
    return {"b": b, "c": c, "p_value": p}


def accuracy_gaps(
    y: IntArray, pred: IntArray, meta: Sequence[Mapping[str, Any]], sensitive: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per sensitive attribute: each known group's accuracy and n, and ``gap``, the best
    minus the worst accuracy among the groups with enough rows (None, with a note, when
    fewer than two groups have)."""
    out: dict[str, dict[str, Any]] = {}
    for attr in sensitive:
        values = np.array([m.get(attr) for m in meta], dtype=object)
        groups: dict[str, Any] = {}
        usable: list[float] = []
        if len(y):
            # Accuracy does not depend on which label is "positive": any label present.
            rep = group_metrics(y, pred, {attr: values}, positive=int(y[0])).attributes[attr]
            for g, stats in rep.by_group.items():
                acc = stats.rates["accuracy"].estimate
                groups[g] = {
                    "n": stats.n,
                    "accuracy": None if np.isnan(acc) else float(acc),
                    "insufficient": stats.insufficient,
                }
                if stats.known and not stats.insufficient and not np.isnan(acc):
                    usable.append(float(acc))
        gap = max(usable) - min(usable) if len(usable) >= 2 else None
        entry: dict[str, Any] = {"gap": gap, "groups": groups}
        if gap is None:
            entry["note"] = "fewer than two groups large enough to compare"
        out[attr] = entry
    return out


def decide(
    y: IntArray,
    *,
    challenger: IntArray,
    champion: IntArray | None,
    meta: Sequence[Mapping[str, Any]],
    sensitive: Sequence[str],
    tolerance: float,
    level: float = PROMOTION_LEVEL,
    weights: npt.NDArray[np.float64] | None = None,
) -> Verdict:
    """The promotion gate on the holdout: labels ``y`` (n,), each model's predicted labels
    (n,) (``champion`` None: there is none, the challenger is promoted), the items' ``meta``
    and the project's ``sensitive`` attributes. ``weights``: see :func:`holdout_accuracy`
    (the accuracies reported are weighted; the paired McNemar test compares the two models
    on the same labeled items, which needs no weights to be valid for them)."""
    report: dict[str, Any] = {
        "level": level,
        "fairness_tolerance": tolerance,
        "holdout_n": len(y),
        "challenger": {
            "accuracy": holdout_accuracy(y, challenger, weights),
            "fairness": accuracy_gaps(y, challenger, meta, sensitive),
        },
    }
    if champion is None:
        return Verdict(True, "first model: there is no champion to compare with", report)
    report["champion"] = {
        "accuracy": holdout_accuracy(y, champion, weights),
        "fairness": accuracy_gaps(y, champion, meta, sensitive),
    }
    if len(y) == 0:
        return Verdict(False, "no holdout labels to compare with the champion", report)
    test = mcnemar_worse(y, challenger, champion)
    report["mcnemar"] = test
    if test["p_value"] < level:
        return Verdict(
            False,
            (
                f"less accurate than the champion on {len(y)} holdout labels (McNemar exact "
                f"one-sided p = {test['p_value']:.3g} < {level}; champion alone right on "
                f"{test['b']}, challenger alone on {test['c']})"
            ),
            report,
        )
    for attr, new in report["challenger"]["fairness"].items():
        old = report["champion"]["fairness"][attr]
        if (
            new["gap"] is not None
            and old["gap"] is not None
            and (new["gap"] - old["gap"] > tolerance)
        ):
            return Verdict(
                False,
                (
                    f"per-group accuracy gap on {attr!r} grows from {old['gap']:.3f} to "
                    f"{new['gap']:.3f}, beyond the tolerance of {tolerance}"
                ),
                report,
            )
    return Verdict(True, f"better or no worse than the champion on {len(y)} holdout labels", report)


def label_source(route: str, reason: str, source: str) -> str:
    """Where a human label came from: ``seed`` (cold start, before any model), ``pool_query``
    (an active-learning query), ``audit`` (an automatic decision sampled for review),
    ``expert`` (escalations, overrides) or ``review`` (the gate's uncertain items)."""
    if reason in (Reason.NO_MODEL.value, Reason.SEED.value):
        return "seed"
    if reason == Reason.POOL_QUERY.value:
        return "pool_query"
    if route == Route.AUDITED.value:
        return "audit"
    if route == Route.EXPERT.value or source in (
        DecisionSource.EXPERT.value,
        DecisionSource.OVERRIDE.value,
    ):
        return "expert"
    return "review"


def labels_by_source(conn: Connection, p: ProjectRow) -> dict[str, int]:
    """Current human labels of the project counted by :func:`label_source`."""
    out = dict.fromkeys(("seed", "review", "audit", "pool_query", "expert"), 0)
    for route, reason, source, n in conn.execute(
        select(routes.c.route, routes.c.reason, decisions.c.source, func.count())
        .join(routes, and_(routes.c.item_id == decisions.c.item_id, routes.c.initial.is_(True)))
        .where(decisions.c.project_id == p.id, decisions.c.current.is_(True), human_labeled())
        .group_by(routes.c.route, routes.c.reason, decisions.c.source)
    ):
        out[label_source(route, reason, source)] += int(n)
    return out


def learning_curve(conn: Connection, p: ProjectRow) -> list[dict[str, Any]]:
    """Per model version, oldest first: human labels it trained on, its holdout accuracy
    (Wilson 95% interval, n) when it was trained, and its status."""
    return [
        {
            "version": r.version,
            "status": r.status,
            "human_labels": r.n_train,
            "holdout_accuracy": (r.metrics or {}).get("holdout_accuracy"),
        }
        for r in conn.execute(
            select(
                model_versions.c.version,
                model_versions.c.status,
                model_versions.c.n_train,
                model_versions.c.metrics,
            )
            .where(model_versions.c.project_id == p.id)
            .order_by(model_versions.c.version)
        )
    ]


def learning_metrics(conn: Connection, p: ProjectRow) -> dict[str, Any]:
    """The metrics keys of issue #4: ``labels_by_source``, ``learning_curve`` and ``pool``
    (items waiting in the pool, and those a query sent to people)."""
    pool: dict[str, int] = dict(
        conn.execute(
            select(routes.c.reason, func.count())
            .where(
                routes.c.project_id == p.id,
                routes.c.initial.is_(True),
                routes.c.reason.in_([Reason.POOL.value, Reason.POOL_QUERY.value]),
            )
            .group_by(routes.c.reason)
        ).all()
    )
    return {
        "labels_by_source": labels_by_source(conn, p),
        "learning_curve": learning_curve(conn, p),
        "pool": {
            "waiting": int(pool.get(Reason.POOL.value, 0)),
            "queried": int(pool.get(Reason.POOL_QUERY.value, 0)),
        },
    }
