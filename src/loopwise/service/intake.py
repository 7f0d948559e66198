"""New items: their rows, and what the audit trail keeps of each one's input.

Shared by routed submissions (:mod:`loopwise.service.submit`) and pool items
(:mod:`loopwise.service.pool`), so every ``items.received`` entry carries the same record of
its input whichever way the item came in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loopwise.audit import canonical_json
from loopwise.service.base import ProjectRow, Unit
from loopwise.store.bulk import bind_value, insert_rows, json_text, new_ids
from loopwise.store.tables import items


@dataclass(frozen=True)
class NewItems:
    """What writing a batch of items gave, in the records' order."""

    ids: list[int]
    external_ids: list[str | None]
    metas: list[dict[str, Any]]
    at: Any
    """``created_at`` as the driver takes it (for the batch's other rows)."""


def write_items(u: Unit, p: ProjectRow, records: Sequence[Mapping[str, Any]]) -> NewItems:
    """Insert ``records`` as new items of project ``p`` (one statement)."""
    conn = u.conn
    ids = new_ids(conn, items, len(records))
    exts = [r.get("external_id") for r in records]
    metas = [dict(r.get("meta") or {}) for r in records]
    at = bind_value(conn, items.c.created_at, u.now)  # every created_at is a UTCDateTime
    insert_rows(
        conn,
        items,
        ("id", "project_id", "external_id", "data", "meta", "created_at"),
        [
            (ids[i], p.id, exts[i], json_text(r["data"]), json_text(metas[i]), at)
            for i, r in enumerate(records)
        ],
    )
    return NewItems(ids=ids, external_ids=exts, metas=metas, at=at)


def received_entry(
    p: ProjectRow, new: NewItems, i: int, record: Mapping[str, Any], *, route: str, reason: str,
    inclusion_prob: float,
) -> dict[str, Any]:
    """The ``items.received`` entry of the batch's ``i``-th item: its input's SHA-256 (over
    canonical JSON), meta, route, reason and inclusion probability; the raw input too when
    ``policy.audit_inputs`` is ``"data"``; the external id when there is one."""
    entry: dict[str, Any] = {
        "item_id": new.ids[i],
        "data_sha256": hashlib.sha256(canonical_json(record["data"]).encode()).hexdigest(),
        "meta": new.metas[i],
        "route": route,
        "reason": reason,
        "inclusion_prob": inclusion_prob,
    }
    if p.policy.audit_inputs == "data":  # else the hash only (erasable inputs)
        entry["data"] = record["data"]
    if new.external_ids[i] is not None:
        entry["external_id"] = new.external_ids[i]
    return entry
