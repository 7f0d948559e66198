"""Export decisions and reviews as JSON Lines, CSV or Label Studio tasks, streamed."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, and_, select

from loopwise.domain import Role
from loopwise.errors import InvalidInput
from loopwise.service.base import Principal, ProjectRow, ServiceBase
from loopwise.store.tables import decisions, items, predictions, reviews, routes, users

FORMATS = ("jsonl", "csv", "label-studio")
PAGE = 2000
CSV_COLUMNS = [
    "item_id",
    "external_id",
    "route",
    "reason",
    "predicted",
    "confidence",
    "label",
    "source",
    "reviews",
    "review_labels",
    "data",
    "meta",
]


class ExportMixin(ServiceBase):
    def export(
        self, actor: Principal, project: str, format: str = "jsonl", *, decided_only: bool = False
    ) -> Iterator[str]:
        """Chunks of text: every item with its prediction, route, decision and reviews.

        Checks happen before the first chunk, so a bad request fails before streaming.
        """
        self.require(actor, Role.SERVICE)
        if format not in FORMATS:
            raise InvalidInput(f"format: {format!r} is not one of {list(FORMATS)}")
        with self.reading() as conn:
            p = self.project_row(conn, project)
        return self._export(p, format, decided_only)

    def _export(self, p: ProjectRow, format: str, decided_only: bool) -> Iterator[str]:
        first = True
        if format == "csv":
            buf = io.StringIO()
            csv.writer(buf).writerow(CSV_COLUMNS)
            yield buf.getvalue()
        elif format == "label-studio":
            yield "["
        with self.reading() as conn:
            for page in self._pages(conn, p, decided_only):
                if format == "jsonl":
                    yield "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in page)
                elif format == "csv":
                    buf = io.StringIO()
                    w = csv.writer(buf)
                    for r in page:
                        w.writerow(_csv_row(r))
                    yield buf.getvalue()
                else:
                    parts = [json.dumps(_label_studio(r), ensure_ascii=False) for r in page]
                    if parts:
                        yield ("" if first else ",") + ",".join(parts)
                        first = False
        if format == "label-studio":
            yield "]\n"

    def _pages(
        self, conn: Connection, p: ProjectRow, decided_only: bool
    ) -> Iterator[list[dict[str, Any]]]:
        last = 0
        labels = p.labels
        while True:
            query = (
                select(
                    items.c.id,
                    items.c.external_id,
                    items.c.data,
                    items.c.meta,
                    routes.c.route,
                    routes.c.reason,
                    decisions.c.label,
                    decisions.c.source,
                )
                .join(routes, and_(routes.c.item_id == items.c.id, routes.c.initial.is_(True)))
                .outerjoin(
                    decisions,
                    and_(decisions.c.item_id == items.c.id, decisions.c.current.is_(True)),
                )
                .where(items.c.project_id == p.id, items.c.id > last)
                .order_by(items.c.id)
                .limit(PAGE)
            )
            if decided_only:
                query = query.where(decisions.c.id.is_not(None))
            rows = conn.execute(query).all()
            if not rows:
                return
            lo, hi = rows[0].id, rows[-1].id
            preds: dict[int, Any] = {}
            for pr in conn.execute(
                select(predictions.c.item_id, predictions.c.label, predictions.c.confidence)
                .where(predictions.c.item_id.between(lo, hi))
                .order_by(predictions.c.id)
            ):
                preds.setdefault(pr.item_id, pr)
            revs: dict[int, list[dict[str, Any]]] = {}
            for rv in conn.execute(
                select(
                    reviews.c.item_id,
                    reviews.c.label,
                    reviews.c.seconds,
                    reviews.c.comment,
                    users.c.name,
                )
                .join(users, users.c.id == reviews.c.user_id)
                .where(reviews.c.item_id.between(lo, hi))
                .order_by(reviews.c.id)
            ):
                revs.setdefault(rv.item_id, []).append(
                    {
                        "user": rv.name,
                        "label": labels[rv.label],
                        "seconds": rv.seconds,
                        "comment": rv.comment,
                    }
                )
            page = []
            for r in rows:
                p_row = preds.get(r.id)
                page.append(
                    {
                        "item_id": r.id,
                        "external_id": r.external_id,
                        "data": r.data,
                        "meta": r.meta,
                        "route": r.route,
                        "reason": r.reason,
                        "prediction": None
                        if p_row is None
                        else {"label": labels[p_row.label], "confidence": p_row.confidence},
                        "decision": None
                        if r.label is None
                        else {"label": labels[r.label], "source": r.source},
                        "reviews": revs.get(r.id, []),
                    }
                )
            yield page
            last = hi


def _csv_row(r: dict[str, Any]) -> list[Any]:
    pred, dec = r["prediction"] or {}, r["decision"] or {}
    return [
        r["item_id"],
        r["external_id"],
        r["route"],
        r["reason"],
        pred.get("label"),
        pred.get("confidence"),
        dec.get("label"),
        dec.get("source"),
        len(r["reviews"]),
        ";".join(v["label"] for v in r["reviews"]),
        json.dumps(r["data"], ensure_ascii=False),
        json.dumps(r["meta"], ensure_ascii=False),
    ]


def _choice(label: str) -> list[dict[str, Any]]:
    return [
        {"from_name": "label", "to_name": "input", "type": "choices", "value": {"choices": [label]}}
    ]


def _label_studio(r: dict[str, Any]) -> dict[str, Any]:
    """One Label Studio task (JSON import format) with annotations and the prediction."""
    task: dict[str, Any] = {
        "id": r["item_id"],
        "data": {**r["data"], "external_id": r["external_id"], "meta": r["meta"]},
        "annotations": [
            {"result": _choice(v["label"]), "completed_by": v["user"], "lead_time": v["seconds"]}
            for v in r["reviews"]
        ],
        "predictions": [],
    }
    if r["prediction"]:
        task["predictions"].append(
            {"result": _choice(r["prediction"]["label"]), "score": r["prediction"]["confidence"]}
        )
    return task
