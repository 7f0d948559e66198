"""Users and the audit trail (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from loopwise.api.deps import Actor, ServiceDep
from loopwise.api.schemas import UserIn, UserOut

router = APIRouter(prefix="/api/v1", tags=["admin"])


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserOut)
def create_user(body: UserIn, service: ServiceDep, actor: Actor) -> dict[str, Any]:
    """Create a user; the token is in this reply only."""
    return service.create_user(actor, body.name, body.role)


@router.get("/users")
def list_users(service: ServiceDep, actor: Actor) -> list[dict[str, Any]]:
    """Every user (no tokens)."""
    return service.list_users(actor)


@router.get("/audit")
def audit_events(service: ServiceDep, actor: Actor, project: str | None = None,
                 type: str | None = None, after: int = 0,
                 limit: int = 100) -> dict[str, Any]:
    """Events in order after sequence number ``after``; filter by project or type."""
    return {"events": service.list_events(actor, project=project, type=type, after=after,
                                          limit=limit)}


@router.get("/audit/verify")
def audit_verify(service: ServiceDep, actor: Actor) -> dict[str, Any]:
    """Recompute the hash chain; names the first broken event."""
    return service.verify_audit_json(actor)
