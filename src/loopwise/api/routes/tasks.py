"""The review queue: claim, answer, release, escalate."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from loopwise.api.deps import Actor, ServiceDep
from loopwise.api.schemas import ClaimIn, EscalateIn, ReviewIn

router = APIRouter(prefix="/api/v1", tags=["tasks"])


@router.post("/projects/{project}/tasks/claim")
def claim(project: str, body: ClaimIn, service: ServiceDep, actor: Actor) -> dict[str, Any]:
    """Claim up to n tasks (leased); an empty list when nothing is waiting for you."""
    return {"tasks": service.claim(actor, project, body.n)}


@router.post("/tasks/{task_id}/submit")
def submit(task_id: int, body: ReviewIn, service: ServiceDep, actor: Actor) -> dict[str, Any]:
    """Answer your claimed task; 409 if it is not yours, done, or its lease expired."""
    return service.submit_review(actor, task_id, body.label, comment=body.comment,
                                 seconds=body.seconds)


@router.post("/tasks/{task_id}/release")
def release(task_id: int, service: ServiceDep, actor: Actor) -> dict[str, Any]:
    """Give your claimed task back to the queue."""
    return service.release(actor, task_id)


@router.post("/tasks/{task_id}/escalate")
def escalate(task_id: int, service: ServiceDep, actor: Actor,
             body: EscalateIn | None = None) -> dict[str, Any]:
    """Send the item to an expert."""
    return service.escalate(actor, task_id, None if body is None else body.comment)
