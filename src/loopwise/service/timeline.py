"""The project over time, for the dashboard: automation and the audited error of automatic
decisions in consecutive windows of submitted items; each person's throughput.

Windows hold equal numbers of items in submission order (so a burst and a quiet week weigh
the same); each says when it ended. The error of a window's automatic decisions is the
share of its answered audits whose reviewer disagreed with the model, weighted by the
inverse of each audit's inclusion probability (a Hájek estimate), with a Wilson interval
at the effective sample size; ``None`` where no audit was answered.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import and_, select

from loopwise.domain import Reason, Role, Route
from loopwise.errors import InvalidInput
from loopwise.oversight import weighted_wilson
from loopwise.service.base import Principal, ServiceBase, utcnow
from loopwise.service.views import first_prediction_id, first_review_id
from loopwise.store.tables import items, predictions, reviews, routes, users

MAX_ITEMS = 200_000
"""Newest items the timeline reads."""


class TimelineMixin(ServiceBase):
    def timeline(self, actor: Principal, project: str, points: int = 24) -> dict[str, Any]:
        """``points`` windows of the project's newest items (at most :data:`MAX_ITEMS`):
        ``{"windows": [{"end", "n", "automation", "auto_error": {estimate, ci, n}}],
        "target_error"}``."""
        self.require_reader(actor)
        points = max(1, min(int(points), 200))
        with self.reading() as conn:
            p = self.project_row(conn, project)
            newest = conn.execute(
                select(items.c.id, items.c.created_at, routes.c.route, routes.c.reason,
                       routes.c.inclusion_prob, predictions.c.label, reviews.c.label)
                .select_from(items)
                .join(routes, and_(routes.c.item_id == items.c.id, routes.c.initial.is_(True)))
                .outerjoin(predictions, predictions.c.id == first_prediction_id(items.c.id))
                .outerjoin(reviews, reviews.c.id == first_review_id(items.c.id))
                .where(items.c.project_id == p.id)
                .order_by(items.c.id.desc()).limit(MAX_ITEMS)
            ).all()
        rows = list(reversed(newest))
        windows: list[dict[str, Any]] = []
        chunks = np.array_split(np.arange(len(rows)), min(points, len(rows))) if rows else []
        for chunk in chunks:
            if chunk.size == 0:
                continue
            part = [rows[i] for i in chunk]
            auto = [r for r in part if r[2] in (Route.AUTO.value, Route.AUDITED.value)
                    and r[3] != Reason.OVER_BUDGET.value]
            answered = [r for r in auto if r[2] == Route.AUDITED.value and r[6] is not None]
            windows.append({
                "end": part[-1][1].isoformat(),
                "n": len(part),
                "automation": sum(r[2] in (Route.AUTO.value, Route.AUDITED.value)
                                  for r in part) / len(part),
                "auto_error": _hajek([(r[5] != r[6], r[4]) for r in answered]),
            })
        return {"windows": windows, "target_error": p.policy.target_error}


    def throughput(self, actor: Principal, project: str, hours: int = 24) -> list[dict[str, Any]]:
        """Answers per person in the project over the last ``hours`` (experts and admins):
        ``[{"name", "answers", "median_seconds"}]``, most answers first (``median_seconds``:
        of the answers that reported their time, None when none did)."""
        self.require(actor, Role.EXPERT)
        if not isinstance(hours, int) or isinstance(hours, bool) or not 1 <= hours <= 24 * 366:
            raise InvalidInput(f"hours: must be a whole number from 1 to 8784, got {hours!r}")
        with self.reading() as conn:
            p = self.project_row(conn, project)
            rows = conn.execute(
                select(users.c.name, reviews.c.seconds)
                .select_from(reviews)
                .join(items, items.c.id == reviews.c.item_id)
                .join(users, users.c.id == reviews.c.user_id)
                .where(items.c.project_id == p.id,
                       reviews.c.created_at >= utcnow() - timedelta(hours=hours))
            ).all()
        by: dict[str, list[float | None]] = {}
        for name, seconds in rows:
            by.setdefault(name, []).append(seconds)
        out = [
            {"name": name, "answers": len(times),
             "median_seconds": float(np.median(timed)) if (timed := [t for t in times
                                                                     if t is not None]) else None}
            for name, times in by.items()
        ]
        return sorted(out, key=lambda r: (-r["answers"], r["name"]))


def _hajek(audits: list[tuple[bool, float]]) -> dict[str, Any]:
    """Weighted error share of answered audits ``(wrong, inclusion_prob)`` with its
    interval (:func:`loopwise.oversight.weighted_wilson`)."""
    if not audits:
        return {"estimate": None, "ci": [None, None], "n": 0}
    iv = weighted_wilson([bool(e) for e, _ in audits],
                         [1.0 / max(pi, 1e-9) for _, pi in audits])
    return {"estimate": iv.estimate,
            "ci": [None if math.isnan(x) else x for x in (iv.low, iv.high)], "n": len(audits)}
