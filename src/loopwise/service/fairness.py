"""Fairness from the store: per-group metrics of four things, by the project's ``sensitive``
attributes (keys of each item's ``meta``; a missing value is the group ``unknown``).

* ``model`` — the model's first prediction against the human label, over items with a
  human decision, each weighted by ``1 / inclusion probability`` of its route (people see
  every uncertain item but only a sample of the confident ones).
* ``reviewers`` — each review against the item's final decision; ``override_rate`` is a
  reviewer changing the model's label.
* ``decisions`` — the final decisions: selection rates, and how often the decision of an
  item sent to people differs from the model's (``override_rate``).
* ``routing`` — every item: ``review_rate`` (sent to people), and ``auto_error``, the
  error of automatic decisions from answered audits weighted by ``1 / inclusion``.

The positive class is the project's second label unless ``positive`` names another; with
more than two labels the rates are one-vs-rest for that label (``accuracy`` counts every
class). One query per thing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, select

from loopwise.domain import Route
from loopwise.errors import InvalidInput
from loopwise.oversight import GroupReport, group_metrics
from loopwise.service.base import Principal, ProjectRow, ServiceBase
from loopwise.service.views import first_prediction_id, human_labeled
from loopwise.store.tables import decisions, items, predictions, reviews, routes

THINGS = ("model", "reviewers", "decisions", "routing")
SUMMARY_DISPARITIES = (
    "demographic_parity_difference",
    "equalized_odds_difference",
    "review_rate_difference",
    "override_rate_difference",
    "auto_error_difference",
)


def _human() -> Any:
    """Each item's current human label (a subquery: ``item_id``, ``label``)."""
    return (
        select(decisions.c.item_id, decisions.c.label)
        .where(decisions.c.current.is_(True), human_labeled())
        .subquery()
    )


def _groups(metas: list[Any], sensitive: list[str]) -> dict[str, list[Any]]:
    return {a: [(m or {}).get(a) for m in metas] for a in sensitive}


def _run(label: str, rows: int, compute: Any) -> dict[str, Any]:
    """``compute()`` as JSON, or why there is nothing to say."""
    if rows == 0:
        return {"status": "no data", "n": 0, "reason": f"no {label} yet"}
    try:
        rep: GroupReport = compute()
    except ValueError as exc:  # e.g. the positive label never occurs
        return {"status": "undefined", "n": rows, "reason": str(exc)}
    return {"status": "ok", "n": rows, **rep.to_dict()}


def fairness_report(conn: Connection, p: ProjectRow, positive: str | None = None) -> dict[str, Any]:
    """The four group reports of a project (JSON-ready; see the module docstring)."""
    pos = p.labels[1] if positive is None else positive
    if pos not in p.labels:
        raise InvalidInput(f"positive: {pos!r} is not one of this project's labels {p.labels}")
    out: dict[str, Any] = {
        "project": p.name,
        "positive": pos,
        "sensitive": p.sensitive,
        "labels": p.labels,
    }
    if not p.sensitive:
        out["note"] = "the project has no sensitive attributes to audit"
        return out
    names = np.array(p.labels, dtype=object)
    hum = _human()
    base = (
        select(
            items.c.meta,
            predictions.c.label.label("pred"),
            hum.c.label.label("human"),
            routes.c.route,
            routes.c.inclusion_prob,
        )
        .select_from(items)
        .join(routes, and_(routes.c.item_id == items.c.id, routes.c.initial.is_(True)))
        .join(predictions, predictions.c.id == first_prediction_id(items.c.id))
        .outerjoin(hum, hum.c.item_id == items.c.id)
        .where(items.c.project_id == p.id)
    )

    # routing: every routed item (its first prediction, route, audit and human label)
    r = conn.execute(base).all()
    pred = names[[x.pred for x in r]] if r else names[:0]
    human = np.array([None if x.human is None else p.labels[x.human] for x in r], dtype=object)
    pi = np.array([x.inclusion_prob for x in r], dtype=np.float64)
    route = np.array([x.route for x in r], dtype=object)
    audited = (route == Route.AUDITED.value) & (human != None)  # noqa: E711
    groups = _groups([x.meta for x in r], p.sensitive)
    out["routing"] = _run(
        "routed items",
        len(r),
        lambda: group_metrics(
            human,
            pred,
            groups,
            positive=pos,
            reviewed=route != Route.AUTO.value,
            audited=audited,
            inclusion=np.where(audited, pi, 1.0),
        ),
    )

    # model: items with a human label, weighted by 1 / inclusion
    has = human != None  # noqa: E711
    out["model"] = _run(
        "human labels",
        int(has.sum()),
        lambda: group_metrics(
            human[has],
            pred[has],
            {a: np.asarray(v, dtype=object)[has] for a, v in groups.items()},
            positive=pos,
            sample_weight=1.0 / np.maximum(pi[has], 1e-9),
        ),
    )

    # decisions: every current decision, with the model's label of the item
    d = conn.execute(
        select(items.c.meta, decisions.c.label, predictions.c.label.label("pred"), routes.c.route)
        .select_from(decisions)
        .join(items, items.c.id == decisions.c.item_id)
        .join(routes, and_(routes.c.item_id == items.c.id, routes.c.initial.is_(True)))
        .join(predictions, predictions.c.id == first_prediction_id(items.c.id))
        .where(decisions.c.project_id == p.id, decisions.c.current.is_(True))
    ).all()
    out["decisions"] = _run(
        "decisions",
        len(d),
        lambda: group_metrics(
            None,
            names[[x.label for x in d]],
            _groups([x.meta for x in d], p.sensitive),
            positive=pos,
            reviewed=np.array([x.route != Route.AUTO.value for x in d]),
            model_pred=names[[x.pred for x in d]],
        ),
    )

    # reviewers: each answer against the final decision and the model's label
    v = conn.execute(
        select(
            items.c.meta,
            reviews.c.label,
            decisions.c.label.label("final"),
            predictions.c.label.label("pred"),
        )
        .select_from(reviews)
        .join(items, items.c.id == reviews.c.item_id)
        .join(decisions, and_(decisions.c.item_id == items.c.id, decisions.c.current.is_(True)))
        .join(predictions, predictions.c.id == first_prediction_id(items.c.id))
        .where(items.c.project_id == p.id)
    ).all()
    out["reviewers"] = _run(
        "reviews",
        len(v),
        lambda: group_metrics(
            names[[x.final for x in v]],
            names[[x.label for x in v]],
            _groups([x.meta for x in v], p.sensitive),
            positive=pos,
            model_pred=names[[x.pred for x in v]],
        ),
    )
    return out


def fairness_summary(report: dict[str, Any]) -> dict[str, Any]:
    """What the metrics show of a fairness report: per thing, the finest breakdown's
    worst disparities (value, interval, groups) and its insufficient groups."""
    out: dict[str, Any] = {"positive": report["positive"], "sensitive": report["sensitive"]}
    for thing in THINGS:
        rep = report.get(thing)
        if rep is None:
            continue
        if rep["status"] != "ok":
            out[thing] = {"status": rep["status"], "n": rep["n"], "reason": rep["reason"]}
            continue
        finest = rep["attributes"][rep["finest"]]
        disp = {
            k: {
                key: finest["disparities"][k][key]
                for key in ("estimate", "ci", "groups", "insufficient")
            }
            for k in SUMMARY_DISPARITIES
            if k in finest["disparities"]
        }
        out[thing] = {
            "status": "ok",
            "n": rep["n"],
            "attribute": rep["finest"],
            "disparities": disp,
            "insufficient_groups": [g for g, s in finest["groups"].items() if s["insufficient"]],
        }
    return out


class FairnessMixin(ServiceBase):
    def fairness(
        self, actor: Principal, project: str, positive: str | None = None
    ) -> dict[str, Any]:
        """Per-group metrics and disparities of the model, the reviewers, the final
        decisions and the routing (any signed-in role)."""
        self.require_reader(actor)
        with self.reading() as conn:
            return fairness_report(conn, self.project_row(conn, project), positive)
