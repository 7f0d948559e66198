"""The review queue: claiming tasks so that no task is ever held by two people.

A task is claimable when it is ``open``, or ``claimed`` with a lease that has run out.
PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED`` lets concurrent claimers pass each other
without waiting and without ever taking the same row. SQLite: the claim runs inside a
``BEGIN IMMEDIATE`` transaction, so claims are serialised.

The two kinds of claimable task are looked up apart, each an ordered range of an index
(``ix_tasks_claim`` for open tasks of a kind, ``ix_tasks_lease`` for leases that ran out),
and merged in queue order: one query with ``state = 'open' OR (claimed and expired)`` makes
the database read and sort every open task of the project. Leases seldom run out, so the
query for open tasks also says whether any did, and only then are they looked up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    Integer,
    Select,
    bindparam,
    func,
    select,
    update,
)

from loopwise.domain import TaskState
from loopwise.store.tables import predictions, reviews, tasks

WINDOW = 50
"""Open tasks a skill-aware claim chooses among (the first ones in queue order)."""


@dataclass(frozen=True)
class Claimed:
    task_id: int
    item_id: int
    kind: str
    reason: str
    lease_expires_at: datetime
    reclaimed_from: int | None
    """The user whose lease had expired, when the task was taken over."""


def _run_out(t: FromClause) -> ColumnElement[bool]:
    """Claimed, and the lease ran out before ``:now``."""
    return (t.c.state == TaskState.CLAIMED) & (t.c.lease_expires_at < bindparam("now"))


def _queue(claimable: ColumnElement[bool], *extra: ColumnElement[Any]) -> Select[Any]:
    """Up to ``:n`` tasks of project ``:project_id`` of the ``:kinds`` matching
    ``claimable``, in queue order, leaving out items user ``:user_id`` has answered; locked
    on PostgreSQL (passing rows other claimers hold), as they are on SQLite already."""
    answered = (
        select(reviews.c.id)
        .where(reviews.c.item_id == tasks.c.item_id, reviews.c.user_id == bindparam("user_id"))
        .exists()
    )
    return (
        select(
            tasks.c.id,
            tasks.c.item_id,
            tasks.c.kind,
            tasks.c.reason,
            tasks.c.state,
            tasks.c.assignee_id,
            tasks.c.priority,
            *extra,
        )
        .where(
            tasks.c.project_id == bindparam("project_id"),
            claimable,
            tasks.c.kind.in_(bindparam("kinds", expanding=True)),
            ~answered,
        )
        .order_by(tasks.c.priority, tasks.c.id)
        .limit(bindparam("n", type_=Integer))
        .with_for_update(skip_locked=True, of=tasks)
    )


# Built once: building a statement costs more than SQLite takes to run it.
_other = tasks.alias("other")
_OPEN = _queue(
    tasks.c.state == TaskState.OPEN,
    select(_other.c.id)
    .where(
        _other.c.project_id == bindparam("project_id"),
        _other.c.kind.in_(bindparam("kinds", expanding=True)),
        _run_out(_other),
    )
    .exists()
    .label("any_run_out"),
)
_RUN_OUT = _queue(_run_out(tasks))
_CLAIM = (
    update(tasks)
    .where(tasks.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        state=TaskState.CLAIMED,
        assignee_id=bindparam("user_id"),
        lease_expires_at=bindparam("expires"),
        claimed_at=bindparam("now"),
    )
)


def claim_tasks(
    conn: Connection,
    *,
    project_id: int,
    user_id: int,
    kinds: Sequence[str],
    n: int,
    lease_seconds: int,
    now: datetime,
    class_accuracy: Sequence[float] | None = None,
) -> list[Claimed]:
    """Claim up to ``n`` tasks of the given kinds for ``user_id``, oldest first by priority.

    A user never gets a task on an item they have already answered. An expired task takes
    its place in the queue again: it is claimed in priority order with the open ones.

    With ``class_accuracy`` (the user's expected accuracy per true class), the claim
    chooses among the first :data:`WINDOW` claimable tasks: within the best priority,
    those whose predicted class the user judges most accurately come first.
    """
    take = n if class_accuracy is None else max(n, WINDOW)
    params = {
        "project_id": project_id,
        "user_id": user_id,
        "kinds": list(kinds),
        "n": take,
        "now": now,
    }
    rows: Sequence[Any] = conn.execute(_OPEN, params).all()
    if len(rows) < take or (rows and rows[0].any_run_out):
        # Seldom: leases that ran out may come first, or fill the claim.
        expired = conn.execute(_RUN_OUT, params).all()
        rows = sorted([*rows, *expired], key=lambda r: (r.priority, r.id))[:take]
    if class_accuracy is not None and len(rows) > n:
        rows = _by_skill(conn, rows, class_accuracy)[:n]
    if not rows:
        return []
    expires = now + timedelta(seconds=lease_seconds)
    conn.execute(
        _CLAIM, {"ids": [r.id for r in rows], "user_id": user_id, "expires": expires, "now": now}
    )
    return [
        Claimed(
            task_id=r.id,
            item_id=r.item_id,
            kind=r.kind,
            reason=r.reason,
            lease_expires_at=expires,
            reclaimed_from=r.assignee_id if r.state == TaskState.CLAIMED else None,
        )
        for r in rows
    ]


def _by_skill(conn: Connection, rows: Sequence[Any], accuracy: Sequence[float]) -> list[Any]:
    """``rows`` by priority, then the user's accuracy on each item's predicted class (items
    without a prediction count at the user's mean accuracy), then queue order."""
    predicted: dict[int, int] = {}
    for item_id, label in conn.execute(
        select(predictions.c.item_id, predictions.c.label)
        .where(predictions.c.item_id.in_([r.item_id for r in rows]))
        .order_by(predictions.c.id)
    ):
        predicted[item_id] = label  # the latest prediction wins
    mean = sum(accuracy) / len(accuracy)

    def acc(r: Any) -> float:
        label = predicted.get(r.item_id)
        return mean if label is None or not 0 <= label < len(accuracy) else accuracy[label]

    return sorted(rows, key=lambda r: (r.priority, -acc(r), r.id))


@dataclass(frozen=True)
class Workload:
    """Human work of a project: what people finished lately, what they hold, what waits."""

    done: int
    """Tasks finished since the window's start."""
    in_progress: int
    """Tasks claimed, lease still running."""
    waiting: int
    """Open tasks, and claimed ones whose lease ran out."""


def workload(conn: Connection, project_id: int, *, since: datetime, now: datetime) -> Workload:
    """The project's :class:`Workload` (finished since ``since``; held and waiting at ``now``).

    Each count is a range of an index: ``ix_tasks_done`` and ``ix_tasks_queue``."""
    done = conn.execute(
        select(func.count())
        .select_from(tasks)
        .where(tasks.c.project_id == project_id, tasks.c.done_at >= since)
    ).scalar_one()
    held = conn.execute(
        select(tasks.c.state, (tasks.c.lease_expires_at >= now).label("live"), func.count())
        .where(
            tasks.c.project_id == project_id,
            tasks.c.state.in_([TaskState.OPEN.value, TaskState.CLAIMED.value]),
        )
        .group_by(tasks.c.state, "live")
    ).all()
    in_progress = sum(c for s, live, c in held if s == TaskState.CLAIMED and live)
    waiting = sum(c for s, live, c in held if not (s == TaskState.CLAIMED and live))
    return Workload(done=int(done), in_progress=int(in_progress), waiting=int(waiting))
