"""Overrides of decisions, and the audit trail's export and checkpoints (issue #6)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from loopwise.api.deps import Actor, ServiceDep

router = APIRouter(prefix="/api/v1", tags=["audit"])


class OverrideIn(BaseModel):
    """A new label for an item's decision, and why (both required)."""

    label: str = Field(description="One of the project's labels.")
    reason: str = Field(description="Why the decision is overridden (non-blank).")


@router.post("/projects/{project}/items/{item_id}/override")
def override(
    project: str, item_id: int, body: OverrideIn, service: ServiceDep, actor: Actor
) -> dict[str, Any]:
    """Override an item's decision (admin or expert): a new decision with the reason; the
    old one is kept, no longer current; event ``decision.overridden``."""
    return service.override(actor, project, item_id, body.label, body.reason)


@router.get("/audit/export")
def audit_export(service: ServiceDep, actor: Actor) -> StreamingResponse:
    """The whole trail as JSONL (admin): header, public keys, checkpoints, roles, events —
    what a third party needs to verify it without the database."""
    lines = service.export_audit(actor)
    return StreamingResponse(
        lines,
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="audit-trail.jsonl"'},
    )


@router.post("/audit/checkpoint")
def audit_checkpoint(service: ServiceDep, actor: Actor) -> dict[str, Any]:
    """Sign a checkpoint at the head of the chain now (admin)."""
    return service.checkpoint_audit(actor)
