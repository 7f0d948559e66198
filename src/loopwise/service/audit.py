"""Reading and verifying the audit trail."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from loopwise.audit import ChainProblem, VerifyResult, verify_chain
from loopwise.errors import InvalidInput
from loopwise.service.base import Principal, ServiceBase
from loopwise.store.events import iter_chain
from loopwise.store.tables import chain_head, events

MAX_EVENTS_PAGE = 1000


class AuditMixin(ServiceBase):
    def verify_audit(self, actor: Principal) -> VerifyResult:
        """Recompute the whole chain; the result names the first broken event.

        Besides the links, the last event must be the head the store recorded, so that
        deleting the newest events is caught too.
        """
        self.require(actor)
        with self.reading() as conn:
            result = verify_chain(iter_chain(conn))
            head = conn.execute(select(chain_head.c.seq, chain_head.c.hash)).first()
        if (
            result.ok
            and head is not None
            and ((result.head_seq or 0) != head.seq or result.head_hash != head.hash)
        ):
            problem = ChainProblem(
                seq=(result.head_seq or 0) + 1,
                kind="gap",
                message=f"the chain ends at event {result.head_seq or 0} but the recorded "
                f"head is event {head.seq}: events were removed from the end",
            )
            return VerifyResult(
                ok=False,
                n_events=result.n_events,
                head_seq=result.head_seq,
                head_hash=result.head_hash,
                problem=problem,
            )
        return result

    def verify_audit_json(self, actor: Principal) -> dict[str, Any]:
        """:meth:`verify_audit` as JSON: ok, events, head, the first problem, a summary."""
        r = self.verify_audit(actor)
        problem = None
        if r.problem is not None:
            problem = {"seq": r.problem.seq, "kind": r.problem.kind, "message": r.problem.message}
        return {"ok": r.ok, "events": r.n_events, "head_seq": r.head_seq,
                "head_hash": r.head_hash, "problem": problem, "summary": str(r)}

    def list_events(
        self,
        actor: Principal,
        *,
        project: str | None = None,
        type: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Events in sequence order after ``after``, optionally of one project or type."""
        self.require(actor)
        if not 1 <= limit <= MAX_EVENTS_PAGE:
            raise InvalidInput(f"limit: must be from 1 to {MAX_EVENTS_PAGE}, got {limit}")
        query = select(events).where(events.c.seq > after)
        if project is not None:
            query = query.where(events.c.project == project)
        if type is not None:
            query = query.where(events.c.type == type)
        with self.reading() as conn:
            rows = conn.execute(query.order_by(events.c.seq).limit(limit)).all()
        return [
            {
                "seq": r.seq,
                "type": r.type,
                "project": r.project,
                "actor": r.actor,
                "at": r.at.isoformat(),
                "body": r.body,
                "prev_hash": r.prev_hash,
                "hash": r.hash,
            }
            for r in rows
        ]
