"""The gate of a project: built from its policy, calibrated on its own labels, watched
through its audits.

In promise mode (``policy.target_error`` set) the threshold is certified by
:meth:`loopwise.routing.Gate.calibrate` on the project's stream of items in the holdout
fold (labels the model never trained on): every routed item with its known inclusion
probability, labeled or not, so the certificate accounts for the items people never saw.
Each calibration is a new policy version carrying the gate's state, and an event.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, func, select

from loopwise.domain import Reason, Role, Route, in_holdout
from loopwise.errors import InvalidInput
from loopwise.learning import featurize
from loopwise.routing import Gate, NoveltyDetector
from loopwise.routing.monitor import AuditEstimate, audit_error, promise_broken
from loopwise.service.base import Principal, ProjectRow, Unit
from loopwise.service.projects import ProjectsMixin
from loopwise.service.views import first_prediction_id, human_labeled
from loopwise.store.tables import decisions, events, items, predictions, reviews, routes

WINDOW = 50_000
"""Most recent items a calibration or a promise check looks at."""
SYSTEM = Principal(id=None, name="system", role=Role.ADMIN)
"""Who acts when the service checks its own promise."""
TEMPERATURE_FRACTION = 0.3
"""With ``policy.temperature``: the share of the calibration labels that fits the score's
temperature; the rest certify the threshold on the scaled score."""
MIN_INCLUSION = 1e-9
"""Stands in for a zero audit rate: such items can never be checked, so they count as
possible errors."""


def gate_of(p: ProjectRow, novelty: NoveltyDetector | None = None) -> Gate:
    """The gate the project's current policy version routes with (``novelty``: the
    champion's detector, when the policy turns novelty on)."""
    pol = p.policy
    common: dict[str, Any] = {"audit_rate": pol.audit_rate, "stopped": pol.stopped,
                              "rules": pol.rules, "novelty": novelty}
    if pol.target_error is None:
        return Gate(pol.threshold, **common)
    if p.gate_state is not None:
        return Gate.from_state(p.gate_state, **common)
    return Gate(target_error=pol.target_error, delta=pol.delta, per_class=pol.per_class,
                **common)


def gate_summary(p: ProjectRow) -> dict[str, Any]:
    """What the metrics say about the gate: mode, threshold(s), certificates."""
    gate = gate_of(p)
    if not gate.promise:
        return {"mode": "threshold", "threshold": gate.threshold, "certified": None}
    thr: Any = None
    if gate.certificates_:
        # An uncertified threshold is infinite (nothing automatic): reported as null.
        values = [float(x) if np.isfinite(x) else None
                  for x in np.atleast_1d(np.asarray(gate.threshold_, dtype=np.float64))]
        thr = values if gate.per_class else values[0]
    return {
        "mode": "promise",
        "target_error": gate.target_error,
        "delta": gate.delta,
        "per_class": gate.per_class,
        "certified": gate.certified_,
        "threshold": thr,
        "labels_needed": gate.labels_needed_,
        "temperature": gate.temperature,
        "certificates": [c.to_dict() for c in gate.certificates_],
        "calibrated_at_version": (p.gate_state or {}).get("calibrated_at_version"),
    }


def audit_estimate(conn: Connection, p: ProjectRow) -> AuditEstimate:
    """Error of the automatic decisions made since the gate was last calibrated
    (or all of them in threshold mode), from their audits."""
    since = (p.gate_state or {}).get("calibrated_at_version", 0)
    rows = conn.execute(
        select(routes.c.item_id, routes.c.route, routes.c.inclusion_prob,
               predictions.c.label)
        .select_from(routes)
        .join(predictions, predictions.c.id == first_prediction_id(routes.c.item_id))
        .where(routes.c.project_id == p.id, routes.c.initial.is_(True),
               routes.c.route.in_([Route.AUTO.value, Route.AUDITED.value]),
               routes.c.reason != Reason.OVER_BUDGET.value,  # outside the promise
               routes.c.policy_version >= since)
        .order_by(routes.c.id.desc()).limit(WINDOW)
    ).all()
    audited_ids = [r.item_id for r in rows if r.route == Route.AUDITED.value]
    answers: dict[int, int] = {}
    for start in range(0, len(audited_ids), 5000):
        chunk = audited_ids[start:start + 5000]
        answers.update(conn.execute(
            select(reviews.c.item_id, reviews.c.label)
            .where(reviews.c.item_id.in_(chunk)).order_by(reviews.c.id)
        ).all())
    errors = np.array([
        (int(answers[r.item_id] != r.label) if r.item_id in answers else -1)
        if r.route == Route.AUDITED.value else 0
        for r in rows
    ])
    audited = np.array([r.route == Route.AUDITED.value for r in rows], dtype=bool)
    pi = np.maximum(np.array([r.inclusion_prob for r in rows], dtype=np.float64),
                    MIN_INCLUSION)
    return audit_error(errors, audited, pi)


class CalibrationMixin(ProjectsMixin):
    def recalibrate(self, actor: Principal, project: str) -> dict[str, Any]:
        """Certify the gate's threshold(s) again on the project's holdout labels (promise
        mode); a new policy version and a ``gate.calibrated`` event. Returns the summary."""
        self.require(actor, Role.SERVICE)
        with self.unit() as u:
            p = self.project_row(u.conn, project)
            if p.policy.target_error is None:
                raise InvalidInput(
                    f"project {project!r} has no promise to calibrate: set "
                    "policy.target_error (and delta)"
                )
            self._recalibrate(u, actor, p)
            p = self.project_row(u.conn, project)
        return gate_summary(p)

    def _recalibrate(self, u: Unit, actor: Principal, p: ProjectRow) -> None:
        proba, y, pi, selected, rows = self._stream(u.conn, p)
        pol = p.policy
        det, X = self._stream_novelty(u.conn, p, rows)
        gate = Gate(target_error=pol.target_error, delta=pol.delta, per_class=pol.per_class,
                    audit_rate=pol.audit_rate, rules=pol.rules, novelty=det)
        if len(y):
            # Rules and novelty send their items to people whatever the score: the
            # threshold is certified on the others only.
            gate.calibrate(proba, y, inclusion_prob=pi, selected=selected, X=X,
                           meta=[r.meta for r in rows], data=[r.data for r in rows],
                           labels=p.labels,
                           temperature_fraction=TEMPERATURE_FRACTION if pol.temperature
                           else None, random_state=self.child_rng())
        state = gate.state()
        state["calibrated_at_version"] = p.policy_version + 1
        old = gate_summary(p)
        version = self.write_policy_version(u, actor, p, pol, state)
        new = gate_summary(replace(p, gate_state=state))
        u.emit("gate.calibrated", p.name, actor, version=version, n=len(y),
               old_threshold=old.get("threshold"), new_threshold=new["threshold"],
               certified=new["certified"], target_error=pol.target_error, delta=pol.delta,
               labels_needed=new["labels_needed"], certificates=new["certificates"])

    def _stream_novelty(self, conn: Connection, p: ProjectRow, rows: list[Any]
                        ) -> tuple[NoveltyDetector | None, Any]:
        """The champion's novelty detector (when the policy turns novelty on) and the
        features (n, d) of the stream's items its model scored (others: never novel)."""
        if p.policy.novelty is None or p.champion_id is None or not rows:
            return None, None
        det = self.load_novelty(conn, p.champion_id, p.policy.novelty)
        if det is None or det.mean_ is None:
            return None, None
        model = self.load_model(conn, p.champion_id)
        X = np.tile(det.mean_, (len(rows), 1))
        own = [i for i, r in enumerate(rows) if r.model_version_id is not None]
        if own:
            X[own] = featurize(model.kind, [rows[i].data for i in own], model.features)
        return det, X

    def _stream(self, conn: Connection, p: ProjectRow) -> tuple[Any, Any, Any, Any, list[Any]]:
        """The holdout fold of the stream: (proba (n, k), y (n,) with -1 for no label,
        inclusion probabilities (n,), selected for review (n,), the rows: id, data, meta,
        model_version_id, ...)."""
        rows = conn.execute(
            select(items.c.id, items.c.data, items.c.meta, predictions.c.proba,
                   predictions.c.model_version_id, routes.c.route, routes.c.inclusion_prob)
            .select_from(items)
            .join(routes, and_(routes.c.item_id == items.c.id, routes.c.initial.is_(True)))
            .join(predictions, predictions.c.id == first_prediction_id(items.c.id))
            .where(items.c.project_id == p.id)
            .order_by(items.c.id.desc()).limit(WINDOW)
        ).all()
        rows = [r for r in rows if in_holdout(r.id)]
        k = len(p.labels)
        if not rows:
            empty = np.zeros(0)
            return np.zeros((0, k)), empty.astype(np.int64), empty, empty.astype(bool), []
        ids = [r.id for r in rows]
        proba = np.array([r.proba for r in rows], dtype=np.float64)
        if p.champion_id is not None:
            own = [i for i, r in enumerate(rows) if r.model_version_id is not None]
            if own:
                model = self.load_model(conn, p.champion_id)
                proba[own] = model.predict_proba([rows[i].data for i in own])
        labels = dict(conn.execute(
            select(decisions.c.item_id, decisions.c.label)
            .where(decisions.c.item_id.in_(ids), decisions.c.current.is_(True), human_labeled())
        ).all())
        y = np.array([labels.get(i, -1) for i in ids], dtype=np.int64)
        pi = np.maximum(np.array([r.inclusion_prob for r in rows]), MIN_INCLUSION)
        selected = np.array([r.route != Route.AUTO.value for r in rows])
        return proba, y, pi, selected, rows

    def on_audit_answered(self, project: str) -> None:
        self.check_promise(SYSTEM, project)

    def check_promise(self, actor: Principal, project: str) -> dict[str, Any]:
        """Compare the audited error with the promise; when the interval's lower end is
        above ``target_error`` an ``alert.promise_broken`` event fires and the policy's
        ``on_breach`` action applies (notify, tighten = recalibrate, review_all = stop)."""
        self.require(actor, Role.SERVICE)
        with self.unit() as u:
            p = self.project_row(u.conn, project)
            est = audit_estimate(u.conn, p)
            eps = p.policy.target_error
            broken = eps is not None and promise_broken(est, eps)
            if broken and not self._already_alerted(u.conn, p.name):
                action = p.policy.on_breach
                u.emit("alert.promise_broken", p.name, actor, target_error=eps,
                       estimate=est.to_dict(), action=action)
                if action == "tighten":
                    self._recalibrate(u, actor, p)
                elif action == "review_all" and not p.policy.stopped:
                    version = self.write_policy_version(
                        u, actor, p, p.policy.merged({"stopped": True}), p.gate_state)
                    u.emit("project.stopped", p.name, actor, version=version,
                           reason="promise broken")
        return {"broken": broken, "estimate": est.to_dict(), "target_error": eps}

    @staticmethod
    def _already_alerted(conn: Connection, project: str) -> bool:
        """A broken promise alerts once until the gate is calibrated again."""
        def last(kind: str) -> int:
            return int(conn.execute(
                select(func.max(events.c.seq))
                .where(events.c.project == project, events.c.type == kind)
            ).scalar() or 0)

        alert = last("alert.promise_broken")
        return alert > 0 and alert > last("gate.calibrated")

