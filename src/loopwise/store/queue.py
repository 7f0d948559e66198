"""The review queue: claiming tasks so that no task is ever held by two people.

A task is claimable when it is ``open``, or ``claimed`` with a lease that has run out.
PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED`` lets concurrent claimers pass each other
without waiting and without ever taking the same row. SQLite: the claim runs inside a
``BEGIN IMMEDIATE`` transaction, so claims are serialised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, and_, or_, select, update

from loopwise.domain import TaskState
from loopwise.store.tables import reviews, tasks


@dataclass(frozen=True)
class Claimed:
    task_id: int
    item_id: int
    kind: str
    reason: str
    lease_expires_at: datetime
    reclaimed_from: int | None
    """The user whose lease had expired, when the task was taken over."""


def claim_tasks(
    conn: Connection,
    *,
    project_id: int,
    user_id: int,
    kinds: Sequence[str],
    n: int,
    lease_seconds: int,
    now: datetime,
) -> list[Claimed]:
    """Claim up to ``n`` tasks of the given kinds for ``user_id``, oldest first by priority.

    A user never gets a task on an item they have already answered.
    """
    claimable = or_(
        tasks.c.state == TaskState.OPEN,
        and_(tasks.c.state == TaskState.CLAIMED, tasks.c.lease_expires_at < now),
    )
    answered = select(reviews.c.item_id).where(reviews.c.user_id == user_id)
    query = (
        select(
            tasks.c.id,
            tasks.c.item_id,
            tasks.c.kind,
            tasks.c.reason,
            tasks.c.state,
            tasks.c.assignee_id,
        )
        .where(
            tasks.c.project_id == project_id,
            tasks.c.kind.in_(list(kinds)),
            claimable,
            tasks.c.item_id.not_in(answered),
        )
        .order_by(tasks.c.priority, tasks.c.id)
        .limit(n)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=tasks)
    rows = conn.execute(query).all()
    if not rows:
        return []
    expires = now + timedelta(seconds=lease_seconds)
    conn.execute(
        update(tasks)
        .where(tasks.c.id.in_([r.id for r in rows]))
        .values(
            state=TaskState.CLAIMED, assignee_id=user_id, lease_expires_at=expires, claimed_at=now
        )
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


def lock_task(conn: Connection, task_id: int) -> Row[Any] | None:
    """The task row, locked for update on PostgreSQL (SQLite holds the write lock already)."""
    query = select(tasks).where(tasks.c.id == task_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).first()
