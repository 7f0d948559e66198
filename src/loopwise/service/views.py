"""Read models shared by several use cases: what a task shows, what submit returns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, ScalarSelect, Select, bindparam, or_, select

from loopwise.domain import HUMAN_SOURCES
from loopwise.service.base import ProjectRow, ServiceBase
from loopwise.store.tables import decisions, items, predictions, reviews, routes


def human_labeled() -> ColumnElement[bool]:
    """Current decisions that carry a human label: a person decided, or a person reviewed
    the model's decision and it stood (an audit the reviewer confirmed)."""
    return or_(
        decisions.c.source.in_([s.value for s in HUMAN_SOURCES]),
        select(reviews.c.id).where(reviews.c.item_id == decisions.c.item_id).exists(),
    )


def first_prediction_id(item_id: ColumnElement[Any]) -> ScalarSelect[Any]:
    """The id of the item ``item_id``'s first prediction — the one its route was decided
    on — as a correlated subquery: one lookup in ``ix_predictions_item_latest`` per row.
    (A join on a ``GROUP BY item_id`` subquery instead makes SQLite scan a project's routes
    once per item: quadratic.)"""
    first = predictions.alias("first_prediction")
    return (
        select(first.c.id).where(first.c.item_id == item_id).order_by(first.c.id).limit(1)
        .scalar_subquery()
    )


def first_review_id(item_id: ColumnElement[Any]) -> ScalarSelect[Any]:
    """The id of the item ``item_id``'s first review (as :func:`first_prediction_id`)."""
    first = reviews.alias("first_review")
    return (
        select(first.c.id).where(first.c.item_id == item_id).order_by(first.c.id).limit(1)
        .scalar_subquery()
    )


def _newest_prediction(*columns: ColumnElement[Any]) -> Select[Any]:
    """``columns`` of the latest prediction of ``items.id`` (a correlated subquery)."""
    return (
        select(*columns)
        .where(predictions.c.item_id == items.c.id)
        .order_by(predictions.c.id.desc())
        .limit(1)
        .correlate(items)
    )


# Built once: building a statement costs more than SQLite takes to run it.
_latest = predictions.alias("latest")
_TASK_ITEMS = (
    select(
        items.c.id,
        items.c.external_id,
        items.c.data,
        items.c.meta,
        _latest.c.label,
        _latest.c.confidence,
    )
    .select_from(items)
    .outerjoin(_latest, _latest.c.id == _newest_prediction(predictions.c.id).scalar_subquery())
    .where(items.c.id.in_(bindparam("ids", expanding=True)))
)
"""A task's item as a reviewer sees it: its data and the latest prediction."""
_ITEM_STATE = (
    select(
        items.c.external_id,
        routes.c.route,
        routes.c.reason.label("route_reason"),
        _newest_prediction(predictions.c.confidence).scalar_subquery().label("confidence"),
        decisions.c.id.label("decision_id"),
        decisions.c.label.label("decision_label"),
        decisions.c.source.label("decision_source"),
    )
    .select_from(items)
    .outerjoin(routes, (routes.c.item_id == items.c.id) & routes.c.initial)
    .outerjoin(decisions, (decisions.c.item_id == items.c.id) & decisions.c.current)
    .where(items.c.id == bindparam("item_id"))
)


class ViewsMixin(ServiceBase):
    def _task_items(
        self, conn: Connection, p: ProjectRow, item_ids: Sequence[int]
    ) -> dict[int, dict[str, Any]]:
        """What a reviewer sees of each item: its data and the latest prediction's label."""
        return {
            r.id: {
                "item": {"external_id": r.external_id, "data": r.data, "meta": r.meta},
                "suggestion": None
                if r.label is None
                else {"label": p.labels[r.label], "confidence": r.confidence},
            }
            for r in conn.execute(_TASK_ITEMS, {"ids": list(item_ids)})
        }

    @staticmethod
    def _item_state(conn: Connection, item_id: int) -> Any:
        """What submit answers with and decides on: an item's ``external_id``, first
        ``route`` and ``route_reason``, latest ``confidence``, and current decision
        (``decision_id``, ``decision_label``, ``decision_source``; None when undecided)."""
        return conn.execute(_ITEM_STATE, {"item_id": item_id}).one()

    @staticmethod
    def _latest_predictions(conn: Connection, item_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for r in conn.execute(
            select(
                predictions.c.item_id,
                predictions.c.label,
                predictions.c.confidence,
                predictions.c.proba,
                predictions.c.model_version_id,
                predictions.c.novelty,
            )
            .where(predictions.c.item_id.in_(list(item_ids)))
            .order_by(predictions.c.id)
        ):
            out[r.item_id] = {
                "label": r.label,
                "confidence": r.confidence,
                "proba": r.proba,
                "model_version_id": r.model_version_id,
                "novelty": r.novelty,
            }
        return out

    def _summaries(
        self, conn: Connection, p: ProjectRow, item_ids: Sequence[int]
    ) -> dict[int, dict[str, Any]]:
        """The decision summary (as returned by submit) of existing items."""
        if not item_ids:
            return {}
        ids = list(item_ids)
        base = {
            r.id: {
                "item_id": r.id,
                "external_id": r.external_id,
                "route": r.route,
                "reason": r.reason,
                "label": None,
                "confidence": None,
                "decided_by": None,
            }
            for r in conn.execute(
                select(items.c.id, items.c.external_id, routes.c.route, routes.c.reason)
                .join(routes, (routes.c.item_id == items.c.id) & routes.c.initial.is_(True))
                .where(items.c.id.in_(ids))
            )
        }
        for item_id, pr in self._latest_predictions(conn, ids).items():
            base[item_id]["confidence"] = pr["confidence"]
        for r in conn.execute(
            select(decisions.c.item_id, decisions.c.label, decisions.c.source).where(
                decisions.c.item_id.in_(ids), decisions.c.current.is_(True)
            )
        ):
            base[r.item_id]["label"] = p.labels[r.label]
            base[r.item_id]["decided_by"] = r.source
        return base
