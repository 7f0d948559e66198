"""People's work: claim a task, answer, release, escalate; and reading an item back."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import bindparam, func, insert, select, update

from loopwise.domain import DecisionSource, Reason, Role, Route, TaskState
from loopwise.errors import Conflict, InvalidInput, NotFound
from loopwise.service.base import (
    PROJECT_COLUMNS,
    Principal,
    ProjectRow,
    Unit,
    project_from_row,
    utcnow,
)
from loopwise.service.budget import EXPERT_PRIORITY, claim_allowance
from loopwise.service.consensus import ConsensusMixin
from loopwise.service.views import ViewsMixin
from loopwise.store.queue import Claimed, claim_tasks
from loopwise.store.tables import (
    decisions,
    gold_tasks,
    items,
    model_versions,
    policy_versions,
    projects,
    reviews,
    routes,
    tasks,
    users,
)

MAX_CLAIM = 100


# The statements of a review, built once (building one costs more than SQLite takes to run
# it). FOR UPDATE is PostgreSQL's row lock; SQLite holds the write lock already.
_TASK_FOR_UPDATE = (
    select(
        tasks.c.id,
        tasks.c.project_id,
        tasks.c.item_id,
        tasks.c.kind,
        tasks.c.state,
        tasks.c.assignee_id,
        tasks.c.lease_expires_at,
        *PROJECT_COLUMNS,
    )
    .join(projects, projects.c.id == tasks.c.project_id)
    .join(
        policy_versions,
        (policy_versions.c.project_id == projects.c.id)
        & (policy_versions.c.version == projects.c.policy_version),
    )
    .where(tasks.c.id == bindparam("task_id"))
    .with_for_update(of=tasks)
)
_INSERT_REVIEW = insert(reviews)
_TASK_DONE = (
    update(tasks)
    .where(tasks.c.id == bindparam("task_id"))
    .values(state=TaskState.DONE, done_at=bindparam("now"))
)
_INSERT_DECISION = insert(decisions)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


class ReviewMixin(ConsensusMixin, ViewsMixin):
    def claim(self, actor: Principal, project: str, n: int = 1) -> list[dict[str, Any]]:
        """Claim up to ``n`` open tasks for the actor (leased for the policy's lease_seconds).

        Experts and admins get escalations first, then reviews; reviewers get reviews.
        Returns an empty list when the queue has nothing for this person.
        """
        self.require(actor, Role.REVIEWER, Role.EXPERT)
        if actor.id is None:
            raise InvalidInput("claiming needs a named user: use loop.as_user(name)")
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_CLAIM:
            raise InvalidInput(f"n: must be a whole number from 1 to {MAX_CLAIM}, got {n!r}")
        with self.unit() as u:
            return self._claim_in(u, actor, self.project_row(u.conn, project), n)

    def _claim_in(self, u: Unit, actor: Principal, p: ProjectRow, n: int) -> list[dict[str, Any]]:
        """Claim up to ``n`` tasks of project ``p`` for ``actor`` inside the unit ``u``."""
        assert actor.id is not None
        kinds = [Route.REVIEW.value]
        if actor.role in (Role.EXPERT, Role.ADMIN):
            kinds.insert(0, Route.EXPERT.value)
        allowance = claim_allowance(u.conn, p, u.now)
        if allowance is not None:
            n = min(n, allowance)  # the hour's review budget is spent: nothing until it frees
            if n == 0:
                return []
        paused, class_accuracy = self._standing(u.conn, p, actor.id)
        if paused:
            return []  # below the project's min_quality until an admin resumes them
        cap = p.policy.max_open_per_reviewer
        if cap is not None:
            n = min(n, cap - self._held(u.conn, p, actor.id, u.now))
            if n <= 0:
                return []
        got = claim_tasks(
            u.conn,
            project_id=p.id,
            user_id=actor.id,
            kinds=kinds,
            n=n,
            lease_seconds=p.policy.lease_seconds,
            now=u.now,
            class_accuracy=class_accuracy,
        )
        if p.policy.gold_rate > 0 and actor.role is Role.REVIEWER:
            got = self._with_gold(u, actor, p, n, got)
        for c in got:
            if c.reclaimed_from is not None:
                u.emit(
                    "task.expired",
                    p.name,
                    None,
                    task_id=c.task_id,
                    item_id=c.item_id,
                    user_id=c.reclaimed_from,
                )
            u.emit(
                "task.claimed",
                p.name,
                actor,
                task_id=c.task_id,
                item_id=c.item_id,
                lease_expires_at=c.lease_expires_at.isoformat(),
            )
        if not got:
            return []
        views = self._task_items(u.conn, p, [c.item_id for c in got])
        self._show_answers(u.conn, p, [(c.item_id, c.kind) for c in got], views)
        return [
            {
                "task_id": c.task_id,
                "item_id": c.item_id,
                "kind": c.kind,
                "reason": c.reason,
                "lease_expires_at": c.lease_expires_at.isoformat(),
                **views[c.item_id],
            }
            for c in got
        ]

    @staticmethod
    def _held(conn: Any, p: ProjectRow, user_id: int, now: datetime) -> int:
        """Tasks the user holds in the project now (claimed, lease running)."""
        return int(
            conn.execute(
                select(func.count())
                .select_from(tasks)
                .where(
                    tasks.c.project_id == p.id,
                    tasks.c.assignee_id == user_id,
                    tasks.c.state == TaskState.CLAIMED,
                    tasks.c.lease_expires_at >= now,
                )
            ).scalar_one()
        )

    def _with_gold(
        self, u: Unit, actor: Principal, p: ProjectRow, n: int, got: list[Claimed]
    ) -> list[Claimed]:
        """Mix gold items into a reviewer's claim at the policy's gold_rate (a reviewer
        with no gold answer yet gets one first); a gold task looks like any review."""
        picked = self._gold_claims(u, actor, p, n, [c.item_id for c in got])
        if not picked:
            return got
        expires = u.now + timedelta(seconds=p.policy.lease_seconds)
        gold: list[Claimed] = []
        for item_id in picked:
            task_id = u.conn.execute(
                insert(tasks)
                .values(
                    project_id=p.id,
                    item_id=item_id,
                    kind=Route.REVIEW.value,
                    reason=Reason.UNCERTAIN.value,
                    state=TaskState.CLAIMED.value,
                    priority=0,
                    assignee_id=actor.id,
                    lease_expires_at=expires,
                    created_at=u.now,
                    claimed_at=u.now,
                )
                .returning(tasks.c.id)
            ).scalar_one()
            u.conn.execute(insert(gold_tasks).values(task_id=task_id, user_id=actor.id))
            gold.append(
                Claimed(task_id, item_id, Route.REVIEW.value, Reason.UNCERTAIN.value, expires, None)
            )
        # the claim keeps its size: gold tasks take the places of the last queue tasks
        surplus = got[max(0, n - len(gold)) :]
        if surplus:
            u.conn.execute(
                update(tasks)
                .where(tasks.c.id.in_([c.task_id for c in surplus]))
                .values(
                    state=TaskState.OPEN, assignee_id=None, lease_expires_at=None, claimed_at=None
                )
            )
        return gold + got[: max(0, n - len(gold))]

    def _show_answers(
        self,
        conn: Any,
        p: ProjectRow,
        held: list[tuple[int, str]],
        views: dict[int, dict[str, Any]],
    ) -> None:
        """Experts see the reviewers' earlier answers (``answers``); reviewers never do. In a
        blind project (``policy.blind``) reviewers see nothing of the model either."""
        if p.policy.blind:
            for item_id, kind in held:
                if kind != Route.EXPERT:
                    views[item_id]["suggestion"] = None
        expert = [i for i, kind in held if kind == Route.EXPERT]
        for item_id, answers in self._expert_answers(conn, p, expert).items():
            views[item_id]["answers"] = answers

    def my_tasks(self, actor: Principal, project: str) -> list[dict[str, Any]]:
        """The tasks the actor holds now (claimed, lease not run out), oldest first."""
        self.require(actor, Role.REVIEWER, Role.EXPERT)
        with self.reading() as conn:
            p = self.project_row(conn, project)
            rows = conn.execute(
                select(
                    tasks.c.id,
                    tasks.c.item_id,
                    tasks.c.kind,
                    tasks.c.reason,
                    tasks.c.lease_expires_at,
                )
                .where(
                    tasks.c.project_id == p.id,
                    tasks.c.assignee_id == actor.id,
                    tasks.c.state == TaskState.CLAIMED,
                    tasks.c.lease_expires_at >= utcnow(),
                )
                .order_by(tasks.c.id)
            ).all()
            views = self._task_items(conn, p, [r.item_id for r in rows]) if rows else {}
            self._show_answers(conn, p, [(r.item_id, r.kind) for r in rows], views)
        return [
            {
                "task_id": r.id,
                "item_id": r.item_id,
                "kind": r.kind,
                "reason": r.reason,
                "lease_expires_at": r.lease_expires_at.isoformat(),
                **views[r.item_id],
            }
            for r in rows
        ]

    @staticmethod
    def _task_for_update(u: Unit, task_id: int) -> tuple[Any, ProjectRow]:
        """The task, locked for update, and its project, in one query."""
        t = u.conn.execute(_TASK_FOR_UPDATE, {"task_id": task_id}).first()
        if t is None:
            raise NotFound(f"task {task_id} not found")
        return t, project_from_row(t)

    @staticmethod
    def _check_holder(t: Any, actor: Principal, now: datetime) -> None:
        if t.state == TaskState.DONE:
            raise Conflict(f"task {t.id} is already done")
        if t.state == TaskState.CANCELLED:
            raise Conflict(f"task {t.id} was escalated or cancelled")
        if t.state == TaskState.OPEN:
            raise Conflict(f"task {t.id} is not claimed; claim it first")
        if t.assignee_id != actor.id:
            raise Conflict(f"task {t.id} is claimed by someone else")
        if t.lease_expires_at is not None and t.lease_expires_at < now:
            raise Conflict(
                f"task {t.id}: your lease expired at {t.lease_expires_at.isoformat()}; claim again"
            )

    def submit_review(
        self,
        actor: Principal,
        task_id: int,
        label: str,
        *,
        comment: str | None = None,
        seconds: float | None = None,
        claim_next: bool = False,
    ) -> dict[str, Any]:
        """Answer a claimed task with a label; returns the item's decision after it.

        With ``claim_next`` the same transaction also claims the actor's next task in the
        project: the reply's ``"next"`` is that task (as :meth:`claim` gives it) or None
        when nothing is waiting.
        """
        self.require(actor, Role.REVIEWER, Role.EXPERT)
        if comment is not None and (not isinstance(comment, str) or len(comment) > 10_000):
            raise InvalidInput("comment: must be text of at most 10,000 characters")
        if seconds is not None and (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not math.isfinite(seconds)
            or seconds < 0
        ):
            raise InvalidInput(f"seconds: must be a number >= 0, got {seconds!r}")
        with self.unit() as u:
            t, p = self._task_for_update(u, task_id)
            if t.kind == Route.EXPERT:
                self.require(actor, Role.EXPERT)
            idx = p.label_index(label) if isinstance(label, str) else None
            if idx is None:
                raise InvalidInput(
                    f"label: {label!r} is not one of this project's labels {p.labels}",
                    errors=[{"loc": ["label"], "msg": "unknown label", "allowed": p.labels}],
                )
            self._check_holder(t, actor, u.now)
            it = self._item_state(u.conn, t.item_id)
            u.conn.execute(
                _INSERT_REVIEW,
                {
                    "task_id": t.id,
                    "item_id": t.item_id,
                    "user_id": actor.id,
                    "label": idx,
                    "seconds": None if seconds is None else float(seconds),
                    "comment": comment,
                    "created_at": u.now,
                },
            )
            u.conn.execute(_TASK_DONE, {"task_id": t.id, "now": u.now})
            u.emit(
                "review.submitted",
                p.name,
                actor,
                task_id=t.id,
                item_id=t.item_id,
                label=idx,
                seconds=seconds,
                comment=comment,
            )
            decided: tuple[int | None, str | None] = (it.decision_label, it.decision_source)
            extra: dict[str, Any] = {}
            gold = None if t.kind == Route.EXPERT else self._gold_label(u.conn, t.id)
            if gold is not None and actor.id is not None:
                # A gold answer scores the reviewer and never changes the item's decision.
                truth = np.zeros((len(p.labels), len(p.labels)))
                truth[gold, idx] = 1.0
                self._add_counts(u, p, {actor.id: truth}, {actor.id: gold == idx})
                u.emit(
                    "gold.answered",
                    p.name,
                    actor,
                    task_id=t.id,
                    item_id=t.item_id,
                    label=idx,
                    correct=gold == idx,
                )
                extra["gold"] = {"correct": gold == idx, "label": p.labels[gold]}
            elif t.kind == Route.REVIEW and p.policy.max_reviews > 1:
                v, answers = self._verdict(u, p, t.item_id)
                if v.status == "settled":
                    source = (
                        DecisionSource.CONSENSUS if v.n_answers > 1 else DecisionSource.REVIEWER
                    )
                    if it.decision_id is None or it.decision_label != v.label:
                        decided = (v.label, self._decide(u, actor, p, t, it, v.label, source))
                    if v.n_answers > 1:
                        self._learn_from_consensus(u, p, v, answers)
                    extra["consensus"] = {
                        "status": v.status,
                        "n_answers": v.n_answers,
                        "confidence": v.confidence,
                    }
                else:
                    extra["consensus"] = self._open_next(u, p, t, v)
            elif it.decision_id is None or it.decision_label != idx or t.kind == Route.EXPERT:
                decided = (idx, self._decide(u, actor, p, t, it, idx))
                if t.kind == Route.EXPERT and p.policy.max_reviews > 1:
                    self._learn_from_expert(u, p, t.item_id, idx)
            reply: dict[str, Any] = {
                "item_id": t.item_id,
                "external_id": it.external_id,
                "route": it.route,
                "reason": it.route_reason,
                "label": None if decided[0] is None else p.labels[decided[0]],
                "confidence": it.confidence,
                "decided_by": decided[1],
                **extra,
            }
            if claim_next:
                got = self._claim_in(u, actor, p, 1)
                reply["next"] = got[0] if got else None
        if it.route == Route.AUDITED.value and p.policy.target_error is not None:
            # An audit answer is new evidence on the promise: check it (after commit).
            self.on_audit_answered(p.name)
        self.on_answered(p)
        return reply

    @staticmethod
    def _decide(
        u: Unit,
        actor: Principal,
        p: ProjectRow,
        t: Any,
        it: Any,
        idx: int,
        source: DecisionSource | None = None,
    ) -> str:
        """Make ``idx`` the decision on task ``t``'s item (``it``: its state, whose current
        decision is replaced); returns the decision's source (by default the task's:
        ``expert`` or ``reviewer``)."""
        if source is None:
            source = DecisionSource.EXPERT if t.kind == Route.EXPERT else DecisionSource.REVIEWER
        reason = None
        if it.decision_id is not None:
            reason = (
                "audit_disagreement"
                if it.decision_source == DecisionSource.MODEL
                else "expert_decision"
            )
            u.conn.execute(
                update(decisions).where(decisions.c.id == it.decision_id).values(current=False)
            )
        u.conn.execute(
            _INSERT_DECISION,
            {
                "item_id": t.item_id,
                "project_id": p.id,
                "label": idx,
                "source": source.value,
                "user_id": actor.id,
                "reason": reason,
                "current": True,
                "created_at": u.now,
            },
        )
        u.emit(
            "decision.made",
            p.name,
            actor,
            item_id=t.item_id,
            label=idx,
            source=source.value,
            replaces=it.decision_id,
            previous_label=it.decision_label,
        )
        return source.value

    def release(self, actor: Principal, task_id: int) -> dict[str, Any]:
        """Give a claimed task back to the queue."""
        self.require(actor, Role.REVIEWER, Role.EXPERT)
        with self.unit() as u:
            t, p = self._task_for_update(u, task_id)
            self._check_holder(t, actor, u.now)
            # A gold task belongs to its reviewer: given back, it ends (a task like any
            # other in the reply, so gold stays indistinguishable).
            is_gold = self._gold_label(u.conn, t.id) is not None
            u.conn.execute(
                update(tasks)
                .where(tasks.c.id == t.id)
                .values(state=TaskState.CANCELLED, done_at=u.now)
                if is_gold
                else update(tasks)
                .where(tasks.c.id == t.id)
                .values(
                    state=TaskState.OPEN, assignee_id=None, lease_expires_at=None, claimed_at=None
                )
            )
            u.emit("task.released", p.name, actor, task_id=t.id, item_id=t.item_id)
            return {"task_id": t.id, "state": TaskState.OPEN.value}

    def escalate(
        self, actor: Principal, task_id: int, comment: str | None = None
    ) -> dict[str, Any]:
        """Send the item of a claimed task to an expert; the task ends, an expert task opens."""
        self.require(actor, Role.REVIEWER, Role.EXPERT)
        with self.unit() as u:
            t, p = self._task_for_update(u, task_id)
            self._check_holder(t, actor, u.now)
            u.conn.execute(
                update(tasks)
                .where(tasks.c.id == t.id)
                .values(state=TaskState.CANCELLED, done_at=u.now)
            )
            new_id = u.conn.execute(
                insert(tasks)
                .values(
                    project_id=p.id,
                    item_id=t.item_id,
                    kind=Route.EXPERT.value,
                    reason=Reason.ESCALATED.value,
                    state=TaskState.OPEN.value,
                    priority=EXPERT_PRIORITY,
                    created_at=u.now,
                )
                .returning(tasks.c.id)
            ).scalar_one()
            u.conn.execute(
                insert(routes).values(
                    item_id=t.item_id,
                    project_id=p.id,
                    route=Route.EXPERT.value,
                    reason=Reason.ESCALATED.value,
                    policy_version=p.policy_version,
                    inclusion_prob=1.0,
                    initial=False,
                    created_at=u.now,
                )
            )
            u.emit(
                "task.escalated",
                p.name,
                actor,
                task_id=t.id,
                item_id=t.item_id,
                expert_task_id=new_id,
                comment=comment,
            )
            return {"task_id": t.id, "state": TaskState.CANCELLED.value, "expert_task_id": new_id}

    def get_item(self, actor: Principal, project: str, item_id: int) -> dict[str, Any]:
        """An item with its prediction, routes, tasks, reviews and decisions."""
        self.require(actor, Role.REVIEWER, Role.EXPERT, Role.SERVICE)
        with self.reading() as conn:
            p = self.project_row(conn, project)
            it = conn.execute(
                select(items).where(items.c.id == item_id, items.c.project_id == p.id)
            ).first()
            if it is None:
                raise NotFound(f"item {item_id} not found in project {project!r}")
            pred = self._latest_predictions(conn, [item_id]).get(item_id)
            if pred is not None:
                version = None
                if pred["model_version_id"] is not None:
                    version = conn.execute(
                        select(model_versions.c.version).where(
                            model_versions.c.id == pred["model_version_id"]
                        )
                    ).scalar_one()
                pred = {
                    "label": p.labels[pred["label"]],
                    "confidence": pred["confidence"],
                    "proba": pred["proba"],
                    "model_version": version,
                    "novelty": pred["novelty"],
                }
            route_rows = conn.execute(
                select(routes).where(routes.c.item_id == item_id).order_by(routes.c.id)
            ).all()
            review_rows = conn.execute(
                select(reviews, users.c.name.label("user"))
                .join(users, users.c.id == reviews.c.user_id)
                .where(reviews.c.item_id == item_id)
                .order_by(reviews.c.id)
            ).all()
            decision_rows = conn.execute(
                select(decisions, users.c.name.label("user"))
                .outerjoin(users, users.c.id == decisions.c.user_id)
                .where(decisions.c.item_id == item_id)
                .order_by(decisions.c.id)
            ).all()
            task_rows = conn.execute(
                select(tasks.c.id, tasks.c.kind, tasks.c.state, tasks.c.reason)
                .where(tasks.c.item_id == item_id)
                .order_by(tasks.c.id)
            ).all()
        history = [
            {
                "label": p.labels[d.label],
                "source": d.source,
                "by": d.user,
                "reason": d.reason,
                "current": d.current,
                "created_at": _iso(d.created_at),
            }
            for d in decision_rows
        ]
        current = next((h for h in history if h["current"]), None)
        return {
            "item_id": it.id,
            "external_id": it.external_id,
            "data": it.data,
            "meta": it.meta,
            "created_at": _iso(it.created_at),
            "prediction": pred,
            "route": route_rows[0].route if route_rows else None,
            "reason": route_rows[0].reason if route_rows else None,
            "routes": [
                {
                    "route": r.route,
                    "reason": r.reason,
                    "policy_version": r.policy_version,
                    "inclusion_prob": r.inclusion_prob,
                    "created_at": _iso(r.created_at),
                }
                for r in route_rows
            ],
            "tasks": [
                {"task_id": t.id, "kind": t.kind, "state": t.state, "reason": t.reason}
                for t in task_rows
            ],
            "reviews": [
                {
                    "user": r.user,
                    "label": p.labels[r.label],
                    "seconds": r.seconds,
                    "comment": r.comment,
                    "created_at": _iso(r.created_at),
                }
                for r in review_rows
            ],
            "decision": current,
            "decisions": history,
        }
