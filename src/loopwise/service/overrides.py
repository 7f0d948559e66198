"""Overrides: an admin or expert replaces an item's decision, always with a reason.

An override is a new decision (source ``override``); the one it replaces is kept with
``current = false``, and the event ``decision.overridden`` records the old and new label
and the reason. Nothing is changed in place.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update

from loopwise.domain import DecisionSource, Role
from loopwise.errors import Conflict, InvalidInput, NotFound
from loopwise.service.base import Principal, ServiceBase
from loopwise.service.projects import MAX_REASON
from loopwise.store.tables import decisions, items


class OverridesMixin(ServiceBase):
    def override(
        self, actor: Principal, project: str, item_id: int, label: str, reason: str
    ) -> dict[str, Any]:
        """Replace the current decision of ``item_id`` by ``label`` (admin or expert).

        Returns ``{"item_id", "label", "source": "override", "reason", "by", "previous":
        {"label", "source"}}``.

        Raises
        ------
        InvalidInput
            ``reason`` blank or too long; ``label`` not one of the project's, or already the
            decision.
        NotFound
            No such project, or no such item in it.
        Conflict
            The item has no decision yet (it waits for people), or it changed meanwhile.
        """
        self.require(actor, Role.EXPERT)
        if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
            raise InvalidInput(
                f"reason: an override needs a non-blank reason of at most {MAX_REASON} characters"
            )
        if isinstance(item_id, bool) or not isinstance(item_id, int):
            raise InvalidInput(f"item: must be an item id (a whole number), got {item_id!r}")
        with self.unit() as u:
            p = self.project_row(u.conn, project)
            idx = p.label_index(label) if isinstance(label, str) else None
            if idx is None:
                raise InvalidInput(f"label: {label!r} is not one of {p.labels}")
            found = u.conn.execute(
                select(items.c.id).where(items.c.id == item_id, items.c.project_id == p.id)
            ).first()
            if found is None:
                raise NotFound(f"item {item_id} not found in project {project!r}")
            old = u.conn.execute(
                select(decisions.c.id, decisions.c.label, decisions.c.source)
                .where(decisions.c.item_id == item_id, decisions.c.current.is_(True))
                .order_by(decisions.c.id.desc())
                .limit(1)
            ).first()
            if old is None:
                raise Conflict(
                    f"item {item_id} has no decision to override yet: it waits for people"
                )
            if old.label == idx:
                raise InvalidInput(f"label: item {item_id} is already decided {label!r}")
            # Compare-and-set: of two overrides of the same decision only one wins.
            res = u.conn.execute(
                update(decisions)
                .where(decisions.c.id == old.id, decisions.c.current.is_(True))
                .values(current=False)
            )
            if res.rowcount != 1:
                raise Conflict(f"the decision of item {item_id} changed meanwhile; try again")
            decision_id = u.conn.execute(
                insert(decisions)
                .values(
                    item_id=item_id,
                    project_id=p.id,
                    label=idx,
                    source=DecisionSource.OVERRIDE.value,
                    user_id=actor.id,
                    reason=reason,
                    current=True,
                    created_at=u.now,
                )
                .returning(decisions.c.id)
            ).scalar_one()
            previous = {"label": p.labels[old.label], "source": old.source}
            u.emit(
                "decision.overridden",
                p.name,
                actor,
                item_id=item_id,
                decision_id=decision_id,
                label=idx,
                label_name=label,
                previous_label=old.label,
                previous_label_name=previous["label"],
                previous_source=old.source,
                reason=reason,
            )
        return {
            "item_id": item_id,
            "label": label,
            "source": DecisionSource.OVERRIDE.value,
            "reason": reason,
            "by": actor.name,
            "previous": previous,
        }
