"""Alerts: the policy's rules (``policy.alerts``) on the project's metrics, and webhooks.

A rule watches one metric: ``drift.psi_max`` / ``js_max`` / ``confidence_psi`` /
``label_psi`` / ``review_rate_psi`` (the smallest current window, see
:mod:`loopwise.service.drift`), ``fairness.[model|reviewers|decisions|routing.]<disparity>``
(the finest breakdown; ``decisions`` when no thing is named, see
:mod:`loopwise.service.fairness`), ``auto_error.estimate`` / ``low`` / ``high`` (audits of
automatic decisions), ``review_rate`` and ``automation_rate`` (the most recent 500 items).

Each evaluation is one window: with fewer than ``min_n`` behind the value the rule is
``insufficient`` (its history unchanged); otherwise the window is a breach when the value
is above ``above`` (below ``below``). With ``persistence`` [k, m] the rule is ``confirmed``
when k of its last m windows were breaches, ``suspected`` when fewer were, ``ok`` when none
(a confirmed rule stays confirmed until its last m windows are all clean).
Becoming confirmed raises it (``alert.raised``, once per ``cooldown_minutes``) and runs its
action: ``notify`` (the event and the webhooks), ``tighten`` (also recalibrate the gate in
promise mode), ``stop`` (also set the stop switch, ``project.stopped`` with reason
``alert <name>``); back to ok clears it (``alert.cleared``).

Rules are evaluated after a submitted batch or review at most every
``alert_interval`` seconds per project and process, or on demand.

Webhooks are the project's endpoints (admin); every alert event is POSTed as JSON with
the header ``X-Loopwise-Signature: sha256=<HMAC-SHA256 of the body with the secret>``,
retried with backoff in a background thread, each attempt recorded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import Connection, insert, select, update

from loopwise.domain import Role, Route
from loopwise.errors import InvalidInput, NotFound
from loopwise.service.base import Principal, ProjectRow, Unit, utcnow
from loopwise.service.calibration import SYSTEM, CalibrationMixin, audit_estimate
from loopwise.service.drift import _outputs, drift_from_store, drift_summary
from loopwise.service.fairness import fairness_report
from loopwise.service.review import ReviewMixin
from loopwise.service.submit import SubmitMixin
from loopwise.store.tables import (
    alert_states,
    webhook_deliveries,
    webhooks,
)

ALERT_INTERVAL = 30.0
"""Seconds between automatic evaluations of a project's rules (per process)."""
BACKOFF = (0.0, 1.0, 4.0, 16.0)
"""Waits before each delivery attempt of a webhook."""
RATE_WINDOW = 500
STATES = ("ok", "suspected", "confirmed", "insufficient")


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of ``body``.

    >>> sign("s", b"{}")[:15]
    'sha256=143ca8d5'
    """
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _num(x: Any) -> float | None:
    return None if x is None else float(x)


class _Metrics:
    """The values rules watch, each computed once and only when a rule needs it."""

    def __init__(self, conn: Connection, p: ProjectRow) -> None:
        self.conn, self.p = conn, p
        self._cache: dict[str, Any] = {}

    def _get(self, key: str, compute: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def value(self, metric: str) -> tuple[float | None, int]:
        """(value or None when undefined, n behind it)."""
        head, _, rest = metric.partition(".")
        if head == "drift":
            summary = self._get(
                "drift", lambda: drift_summary(drift_from_store(self.conn, self.p)))
            part, _, name = rest.rpartition(".")  # "reviewers.answers_js": their answers
            windows = summary["reviewers"]["windows"] if part == "reviewers" else (
                summary["windows"])
            if not windows:
                return None, 0
            w = windows[0]
            key = {"label_psi": "predicted_label_psi"}.get(name, name)
            return _num(w.get(key)), int(w["n"])
        if head == "fairness":
            thing, _, name = rest.rpartition(".")
            rep = self._get("fairness", lambda: fairness_report(self.conn, self.p))
            part = rep.get(thing or "decisions")
            if part is None or part["status"] != "ok":
                return None, 0 if part is None else int(part["n"])
            d = part["attributes"][part["finest"]]["disparities"].get(name)
            return (None if d is None else _num(d["estimate"])), int(part["n"])
        if head == "auto_error":
            est = self._get("audit", lambda: audit_estimate(self.conn, self.p))
            v = {"estimate": est.estimate, "low": est.low, "high": est.high}[rest]
            return (None if v != v else float(v)), int(est.n_labeled)
        rows = self._get("recent", lambda: _outputs(self.conn, self.p, None, True, RATE_WINDOW))
        if not rows:
            return None, 0
        reviewed = sum(r.route != Route.AUTO.value for r in rows) / len(rows)
        return (reviewed if metric == "review_rate" else 1 - reviewed), len(rows)


def _state(history: list[bool], k: int) -> str:
    hits = sum(history)
    return "confirmed" if hits >= k else "suspected" if hits else "ok"


def alert_states_of(conn: Connection, p: ProjectRow) -> list[dict[str, Any]]:
    """Each rule of the policy with its last state, value, n and history."""
    rows = {
        r.rule: r
        for r in conn.execute(select(alert_states).where(alert_states.c.project_id == p.id))
    }
    out = []
    for rule in p.policy.alerts:
        r = rows.get(rule["name"])
        out.append(
            {
                "rule": rule,
                "state": "insufficient" if r is None else r.state,
                "value": None if r is None else r.value,
                "n": None if r is None else r.n,
                "history": [] if r is None else list(r.history),
                "raised_at": None if r is None or r.raised_at is None else r.raised_at.isoformat(),
                "evaluated_at": None if r is None else r.evaluated_at.isoformat(),
            }
        )
    return out


class AlertsMixin(CalibrationMixin, SubmitMixin, ReviewMixin):
    alert_interval: float = ALERT_INTERVAL
    webhook_backoff: Sequence[float] = BACKOFF

    # -- hooks: evaluate after a batch or a review, at most every alert_interval seconds
    def on_submitted(self, p: ProjectRow) -> None:
        super().on_submitted(p)
        self._maybe_evaluate(p)

    def on_answered(self, p: ProjectRow) -> None:
        super().on_answered(p)
        self._maybe_evaluate(p)

    def _checked(self) -> dict[str, float]:
        """Project → when its rules were last evaluated here (``time.monotonic``)."""
        checked: dict[str, float] = self.__dict__.setdefault("_alerts_checked", {})
        return checked

    def _due(self, project: str) -> bool:
        """Whether ``project`` is due, marking it evaluated now if so."""
        with self._models_lock:
            last, now = self._checked(), time.monotonic()
            if project in last and now - last[project] < self.alert_interval:
                return False
            last[project] = now
            return True

    def _maybe_evaluate(self, p: ProjectRow) -> None:
        if p.policy.alerts and self._due(p.name):
            self._evaluate(SYSTEM, p.name)

    # -- verbs
    def evaluate_alerts(self, actor: Principal, project: str) -> list[dict[str, Any]]:
        """Evaluate the project's rules now (admin or service); their states."""
        self.require(actor, Role.SERVICE)
        return self._evaluate(actor, project)

    def alerts(self, actor: Principal, project: str) -> list[dict[str, Any]]:
        """Each rule of the policy with its last state (any signed-in role)."""
        self.require_reader(actor)
        with self.reading() as conn:
            p = self.project_row(conn, project)
            return alert_states_of(conn, p)

    def _evaluate(self, actor: Principal, project: str) -> list[dict[str, Any]]:
        with self.unit() as u:
            p = self.project_row(u.conn, project)
            values = _Metrics(u.conn, p)
            known = {
                r.rule: r
                for r in u.conn.execute(
                    select(alert_states).where(alert_states.c.project_id == p.id)
                )
            }
            for rule in p.policy.alerts:
                self._evaluate_rule(u, actor, p, rule, values, known.get(rule["name"]))
            p = self.project_row(u.conn, project)
            result = alert_states_of(u.conn, p)
        self._deliver_pending()
        return result

    def _evaluate_rule(
        self,
        u: Unit,
        actor: Principal,
        p: ProjectRow,
        rule: dict[str, Any],
        values: _Metrics,
        row: Any,
    ) -> None:
        value, n = values.value(rule["metric"])
        history: list[bool] = [] if row is None else list(row.history)
        old = "insufficient" if row is None else row.state
        raised_at = None if row is None else row.raised_at
        k, m = rule["persistence"]
        if value is None or n < rule["min_n"]:
            state = "insufficient"
        else:
            breach = value > rule["above"] if "above" in rule else value < rule["below"]
            history = [*history, bool(breach)][-m:]
            state = _state(history, k)
            if old == "confirmed" and state == "suspected":
                state = "confirmed"  # a raised alert holds until m windows pass clean
        detail = {
            "rule": rule["name"],
            "metric": rule["metric"],
            "value": value,
            "n": n,
            "threshold": rule.get("above", rule.get("below")),
            "direction": "above" if "above" in rule else "below",
            "action": rule["action"],
        }
        if state == "confirmed" and old != "confirmed":
            cool = timedelta(minutes=rule["cooldown_minutes"])
            if raised_at is None or u.now - raised_at >= cool:
                raised_at = u.now
                u.emit("alert.raised", p.name, actor, **detail)
                self._queue_webhooks(u, p, "alert.raised", detail)
                self._act(u, actor, p, rule)
        elif state == "ok" and old == "confirmed":
            u.emit("alert.cleared", p.name, actor, **detail)
            self._queue_webhooks(u, p, "alert.cleared", detail)
        values_row = {
            "state": state,
            "history": history,
            "value": value,
            "n": n,
            "raised_at": raised_at,
            "evaluated_at": u.now,
        }
        if row is None:
            u.conn.execute(
                insert(alert_states).values(project_id=p.id, rule=rule["name"], **values_row)
            )
        else:
            u.conn.execute(
                update(alert_states).where(alert_states.c.id == row.id).values(**values_row)
            )

    def _act(self, u: Unit, actor: Principal, p: ProjectRow, rule: dict[str, Any]) -> None:
        p = self.project_row(u.conn, p.name)
        if rule["action"] == "tighten" and p.policy.target_error is not None:
            self._recalibrate(u, actor, p)
        elif rule["action"] == "stop" and not p.policy.stopped:
            version = self.write_policy_version(
                u, actor, p, p.policy.merged({"stopped": True}), p.gate_state
            )
            u.emit(
                "project.stopped", p.name, actor, version=version, reason=f"alert {rule['name']}"
            )

    # -- webhooks
    def add_webhook(self, actor: Principal, project: str, url: str, secret: str) -> dict[str, Any]:
        """Register an endpoint for the project's alert events (admin)."""
        self.require(actor)
        parsed = urlparse(url) if isinstance(url, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InvalidInput(f"url: must be an http(s) URL, got {url!r}")
        if not isinstance(secret, str) or not 16 <= len(secret) <= 200:
            raise InvalidInput("secret: must be text of 16 to 200 characters")
        with self.unit() as u:
            p = self.project_row(u.conn, project)
            wid = u.conn.execute(
                insert(webhooks)
                .values(project_id=p.id, url=url, secret=secret, active=True, created_at=u.now)
                .returning(webhooks.c.id)
            ).scalar_one()
            u.emit("webhook.added", p.name, actor, webhook_id=wid, url=url)
        return {"webhook_id": wid, "url": url, "active": True}

    def remove_webhook(self, actor: Principal, project: str, webhook_id: int) -> dict[str, Any]:
        """Stop sending to an endpoint (admin)."""
        self.require(actor)
        with self.unit() as u:
            p = self.project_row(u.conn, project)
            res = u.conn.execute(
                update(webhooks)
                .where(
                    webhooks.c.id == webhook_id,
                    webhooks.c.project_id == p.id,
                    webhooks.c.active.is_(True),
                )
                .values(active=False)
            )
            if res.rowcount != 1:
                raise NotFound(f"webhook {webhook_id} not found in project {project!r}")
            u.emit("webhook.removed", p.name, actor, webhook_id=webhook_id)
        return {"webhook_id": webhook_id, "active": False}

    def list_webhooks(self, actor: Principal, project: str) -> list[dict[str, Any]]:
        """The project's endpoints (never their secrets) and their deliveries (admin)."""
        self.require(actor)
        with self.reading() as conn:
            p = self.project_row(conn, project)
            hooks = conn.execute(
                select(webhooks.c.id, webhooks.c.url, webhooks.c.active)
                .where(webhooks.c.project_id == p.id)
                .order_by(webhooks.c.id)
            ).all()
            out = []
            for h in hooks:
                deliveries = conn.execute(
                    select(webhook_deliveries)
                    .where(webhook_deliveries.c.webhook_id == h.id)
                    .order_by(webhook_deliveries.c.id)
                ).all()
                out.append(
                    {
                        "webhook_id": h.id,
                        "url": h.url,
                        "active": h.active,
                        "deliveries": [
                            {
                                "id": d.id,
                                "event": d.event_type,
                                "state": d.state,
                                "attempts": d.attempts,
                            }
                            for d in deliveries
                        ],
                    }
                )
            return out

    @staticmethod
    def _queue_webhooks(u: Unit, p: ProjectRow, event: str, detail: dict[str, Any]) -> None:
        body = json.dumps(
            {"event": event, "project": p.name, "at": u.now.isoformat(), **detail}, sort_keys=True
        )
        for wid in u.conn.execute(
            select(webhooks.c.id).where(webhooks.c.project_id == p.id, webhooks.c.active.is_(True))
        ).scalars():
            u.conn.execute(
                insert(webhook_deliveries).values(
                    webhook_id=wid,
                    event_type=event,
                    payload=body,
                    state="pending",
                    attempts=[],
                    created_at=u.now,
                )
            )

    def _deliver_pending(self) -> None:
        """Send every pending delivery in a background thread (after commit)."""
        with self.reading() as conn:
            ids = list(
                conn.execute(
                    select(webhook_deliveries.c.id).where(webhook_deliveries.c.state == "pending")
                ).scalars()
            )
        with self._models_lock:
            sending: set[int] = self.__dict__.setdefault("_webhooks_sending", set())
            ids = [i for i in ids if i not in sending]
            sending.update(ids)
            threads: list[threading.Thread] = self.__dict__.setdefault("_webhook_threads", [])
            for i in ids:
                t = threading.Thread(target=self._deliver, args=(i,), daemon=True)
                threads.append(t)
                t.start()

    def wait_webhooks(self, timeout: float = 30.0) -> None:
        """Wait for the deliveries under way in this process (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        for t in list(self.__dict__.get("_webhook_threads", [])):
            t.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        """Let deliveries under way finish (bounded), so none writes to a closed database;
        what is still pending is sent by the next evaluation."""
        self.wait_webhooks(timeout=10.0)
        super().close()

    def _deliver(self, delivery_id: int) -> None:
        with self.reading() as conn:
            d = conn.execute(
                select(
                    webhook_deliveries.c.payload,
                    webhook_deliveries.c.event_type,
                    webhooks.c.url,
                    webhooks.c.secret,
                )
                .join(webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id)
                .where(webhook_deliveries.c.id == delivery_id)
            ).one()
        body = d.payload.encode()
        attempts: list[dict[str, Any]] = []
        state = "failed"
        for wait in self.webhook_backoff:
            time.sleep(wait)
            code, error = _post(
                d.url,
                body,
                {"X-Loopwise-Signature": sign(d.secret, body), "X-Loopwise-Event": d.event_type},
            )
            attempts.append({"at": utcnow().isoformat(), "status": code, "error": error})
            ok = code is not None and 200 <= code < 300
            with self.db.write() as conn:
                conn.execute(
                    update(webhook_deliveries)
                    .where(webhook_deliveries.c.id == delivery_id)
                    .values(
                        attempts=attempts,
                        state="delivered" if ok else "pending",
                        delivered_at=utcnow() if ok else None,
                    )
                )
            if ok:
                state = "delivered"
                break
        if state == "failed":
            with self.db.write() as conn:
                conn.execute(
                    update(webhook_deliveries)
                    .where(webhook_deliveries.c.id == delivery_id)
                    .values(state="failed")
                )
        with self._models_lock:
            self.__dict__["_webhooks_sending"].discard(delivery_id)


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
    """POST ``body``; (HTTP status or None, error text or None)."""
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return int(r.status), None
    except urllib.error.HTTPError as exc:
        return int(exc.code), str(exc.reason)
    except (urllib.error.URLError, OSError) as exc:
        return None, str(exc)
