"""Metrics computed from the store: routing, automation, agreement, error of auto decisions."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Connection, and_, func, select

from loopwise.domain import Reason, Route, TaskState
from loopwise.oversight import wilson
from loopwise.routing.monitor import promise_broken
from loopwise.service.alerts import alert_states_of
from loopwise.service.base import Principal, ProjectRow, ServiceBase, utcnow
from loopwise.service.budget import current_workload
from loopwise.service.calibration import audit_estimate, gate_summary
from loopwise.service.consensus import agreement_reviewers
from loopwise.service.drift import oversight_summaries
from loopwise.service.promotion import learning_metrics
from loopwise.service.views import first_prediction_id, human_labeled
from loopwise.store.tables import (
    decisions,
    items,
    model_versions,
    predictions,
    reviews,
    routes,
    tasks,
)


class MetricsMixin(ServiceBase):
    def _novelty_summary(self, conn: Connection, p: ProjectRow, flagged: int) -> dict[str, Any]:
        """The novelty check: on or off, whether the champion's detector can flag anything
        at the policy's level (it needs ``1/alpha - 1`` calibration scores), and how many
        items it sent to experts."""
        alpha = p.policy.novelty
        det = (None if p.champion_id is None
               else self.load_novelty(conn, p.champion_id, alpha or 0.01))
        n_cal = 0 if det is None or det.calibration_scores_ is None else (
            int(det.calibration_scores_.size))
        return {
            "alpha": alpha,
            "detector": det is not None,
            "calibration_n": n_cal,
            "active": alpha is not None and det is not None and math.isfinite(det.threshold_),
            "calibration_needed": None if alpha is None else max(0, math.ceil(1 / alpha - 1)),
            "flagged": flagged,
        }

    def _budget(self, conn: Connection, p: ProjectRow, over: int, n_auto: int) -> dict[str, Any]:
        """The review budget: the hour's work against it, and the automatic decisions that
        bypassed the promise because people had no room (``over_budget: accept``)."""
        w = current_workload(conn, p, utcnow())
        per_hour = p.policy.budget_per_hour
        return {
            "per_hour": per_hour,
            "over_budget": p.policy.over_budget,
            "done_last_hour": w.done,
            "in_progress": w.in_progress,
            "waiting": w.waiting,
            "remaining": None if per_hour is None else max(0, per_hour - w.done - w.in_progress),
            "accepted_over_budget": over,
            # share of automatic decisions the promise does not cover
            "bypass_share": over / n_auto if n_auto else None,
        }


    def metrics(self, actor: Principal, project: str) -> dict[str, Any]:
        """Counts by route and reason, automation, human–model agreement, the estimated
        error of automatic decisions (from audited items, with a 95% interval and its n)."""
        self.require_reader(actor)
        with self.reading() as conn:
            p = self.project_row(conn, project)
            return self._metrics(conn, p)

    def _metrics(self, conn: Connection, p: ProjectRow) -> dict[str, Any]:
        initial = and_(routes.c.project_id == p.id, routes.c.initial.is_(True))
        by_route: dict[str, int] = {}
        by_reason: dict[str, int] = {}
        for r in conn.execute(
            select(routes.c.route, routes.c.reason, func.count())
            .where(initial)
            .group_by(routes.c.route, routes.c.reason)
        ):
            by_route[r[0]] = by_route.get(r[0], 0) + r[2]
            by_reason[r[1]] = by_reason.get(r[1], 0) + r[2]
        n_items = sum(by_route.values())
        n_auto = by_route.get(Route.AUTO.value, 0) + by_route.get(Route.AUDITED.value, 0)

        queue = {s.value: 0 for s in TaskState}
        for r in conn.execute(
            select(tasks.c.state, func.count())
            .where(tasks.c.project_id == p.id)
            .group_by(tasks.c.state)
        ):
            queue[r[0]] = r[1]
        oldest = conn.execute(
            select(func.min(tasks.c.created_at)).where(
                tasks.c.project_id == p.id, tasks.c.state == TaskState.OPEN
            )
        ).scalar()

        by_source = {
            r[0]: r[1]
            for r in conn.execute(
                select(decisions.c.source, func.count())
                .where(decisions.c.project_id == p.id, decisions.c.current.is_(True))
                .group_by(decisions.c.source)
            )
        }
        # Each review against the prediction the reviewer saw (an item's first prediction).
        rows = conn.execute(
            select(reviews.c.label, predictions.c.label, routes.c.route, routes.c.inclusion_prob)
            .select_from(reviews)
            .join(items, items.c.id == reviews.c.item_id)
            .join(predictions, predictions.c.id == first_prediction_id(reviews.c.item_id))
            .join(routes, and_(routes.c.item_id == reviews.c.item_id, routes.c.initial.is_(True)))
            .where(items.c.project_id == p.id)
        ).all()
        agree = sum(1 for r in rows if r[0] == r[1])
        audited = [r[0] != r[1] for r in rows if r[2] == Route.AUDITED.value]
        est = audit_estimate(conn, p)
        n_reviews = conn.execute(
            select(func.count())
            .select_from(reviews)
            .join(items, items.c.id == reviews.c.item_id)
            .where(items.c.project_id == p.id)
        ).scalar_one()
        n_models = conn.execute(
            select(func.count()).where(model_versions.c.project_id == p.id)
        ).scalar_one()
        target = p.policy.target_error
        return {
            "project": p.name,
            "items": n_items,
            "by_route": by_route,
            "by_reason": by_reason,
            "automation_rate": n_auto / n_items if n_items else None,
            "decided": sum(by_source.values()),
            "decisions_by_source": by_source,
            "human_labels": conn.execute(
                select(func.count()).where(decisions.c.project_id == p.id,
                                           decisions.c.current.is_(True), human_labeled())
            ).scalar_one(),
            "queue": {**queue, "oldest_open_at": None if oldest is None else oldest.isoformat()},
            "reviews": n_reviews,
            "agreement": wilson(agree, len(rows)).to_dict(),
            "auto_error": {
                "estimate": None if math.isnan(est.estimate) else est.estimate,
                "ci": [None if math.isnan(x) else x for x in (est.low, est.high)],
                "level": est.level,
                "n": est.n_labeled,
                "errors": est.n_errors,
                "n_auto": est.n_auto,
                "n_audited": est.n_audited,
                "method": "inverse-propensity estimate, exact (Clopper-Pearson) interval",
                "target": target,
                "promise_broken": target is not None and promise_broken(est, target),
            },
            "corrections": sum(audited),
            "gate": gate_summary(p),
            "budget": self._budget(conn, p, by_reason.get(Reason.OVER_BUDGET.value, 0), n_auto),
            "novelty": self._novelty_summary(conn, p, by_reason.get(Reason.NOVEL.value, 0)),
            "threshold": p.policy.threshold,
            "policy_version": p.policy_version,
            "model_versions": n_models,
            **learning_metrics(conn, p),  # labels_by_source, learning_curve, pool (issue #4)
            "agreement_reviewers": agreement_reviewers(conn, p),
            **oversight_summaries(self.db, conn, p),  # fairness, drift (cached, issue #6)
            "alerts": alert_states_of(conn, p),
        }
