"""Appending to the hash-chained event log.

Writers collect events during their transaction and append them just before commit, so the
lock on ``chain_head`` (the only serialisation point across processes) is held briefly.
When the chain passes a multiple of the signer's interval, the signed checkpoint is written
in the same transaction (:mod:`loopwise.store.checkpoints`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from loopwise.audit import event_body, link
from loopwise.store.bulk import bind_value, insert_rows
from loopwise.store.checkpoints import Signer, write_checkpoints
from loopwise.store.tables import chain_head, events


@dataclass
class PendingEvent:
    """An event not yet in the chain."""

    type: str
    project: str | None
    actor: str | None
    payload: dict[str, Any] = field(default_factory=dict)


def append_events(
    conn: Connection,
    pending: Sequence[PendingEvent],
    at: datetime,
    *,
    signer: Signer | None = None,
) -> int:
    """Chain ``pending`` after the current head and insert them; returns the new head seq.

    On PostgreSQL the head row is locked (``FOR UPDATE``) until the transaction ends. With a
    ``signer``, every checkpoint the new events complete is signed and stored too.
    """
    if not pending:
        return -1
    query = select(chain_head.c.seq, chain_head.c.hash).where(chain_head.c.id == 1)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    head = conn.execute(query).one()
    first, stamp = head.seq + 1, at.isoformat()
    bodies = [
        event_body(
            seq=first + i,
            type=e.type,
            at=stamp,
            actor=e.actor,
            project=e.project,
            payload=e.payload,
        )
        for i, e in enumerate(pending)
    ]
    hashes = link(head.hash, bodies)
    prevs = [head.hash, *hashes[:-1]]
    at_value = bind_value(conn, events.c.at, at)
    insert_rows(
        conn,
        events,
        ("seq", "type", "project", "actor", "at", "body", "prev_hash", "hash"),
        [
            (first + i, e.type, e.project, e.actor, at_value, bodies[i], prevs[i], hashes[i])
            for i, e in enumerate(pending)
        ],
    )
    last = head.seq + len(pending)
    conn.execute(update(chain_head).where(chain_head.c.id == 1).values(seq=last, hash=hashes[-1]))
    if signer is not None and signer.due(head.seq, last):
        write_checkpoints(conn, signer, last, at)
    return int(last)


def iter_chain(
    conn: Connection, *, batch: int = 20_000
) -> Iterator[tuple[int, str, str, str, str]]:
    """Every event as ``(seq, prev_hash, hash, body, type)`` in sequence order, in pages."""
    last = 0
    cols = (events.c.seq, events.c.prev_hash, events.c.hash, events.c.body, events.c.type)
    while True:
        rows = conn.execute(
            select(*cols).where(events.c.seq > last).order_by(events.c.seq).limit(batch)
        ).all()
        if not rows:
            return
        for r in rows:
            yield (r[0], r[1], r[2], r[3], r[4])
        last = rows[-1][0]
