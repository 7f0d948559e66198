"""The review queue: claim, answer, release, escalate.

The endpoints are ``async`` and run the service (blocking database work) in the thread
pool themselves: a plain ``def`` endpoint would take that hop, and FastAPI would take a
second one to validate its reply.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from loopwise.api.deps import Actor, ServiceDep
from loopwise.api.schemas import ClaimIn, EscalateIn, ReviewIn

router = APIRouter(prefix="/api/v1", tags=["tasks"])


@router.post("/projects/{project}/tasks/claim")
async def claim(project: str, body: ClaimIn, service: ServiceDep, actor: Actor) -> dict[str, Any]:
    """Claim up to n tasks (leased); an empty list when nothing is waiting for you, with
    ``"paused"`` saying why when you are paused in this project."""
    got = await run_in_threadpool(service.claim, actor, project, body.n)
    if got:
        return {"tasks": got}
    why = await run_in_threadpool(service.claim_block, actor, project)
    return {"tasks": got} if why is None else {"tasks": got, "paused": why}


@router.post("/tasks/{task_id}/submit")
async def submit(
    task_id: int,
    body: ReviewIn,
    service: ServiceDep,
    actor: Actor,
    claim_next: Annotated[
        bool,
        Query(
            alias="next",
            description="Also claim your next task in the same project, in the same "
            'transaction: the reply\'s "next" is that task (as claim gives it), or null.',
        ),
    ] = False,
) -> dict[str, Any]:
    """Answer your claimed task; 409 if it is not yours, done, or its lease expired."""
    return await run_in_threadpool(
        service.submit_review,
        actor,
        task_id,
        body.label,
        comment=body.comment,
        seconds=body.seconds,
        claim_next=claim_next,
    )


@router.post("/tasks/{task_id}/release")
async def release(task_id: int, service: ServiceDep, actor: Actor) -> dict[str, Any]:
    """Give your claimed task back to the queue."""
    return await run_in_threadpool(service.release, actor, task_id)


@router.post("/tasks/{task_id}/escalate")
async def escalate(task_id: int, service: ServiceDep, actor: Actor,
                   body: EscalateIn | None = None) -> dict[str, Any]:
    """Send the item to an expert."""
    return await run_in_threadpool(
        service.escalate, actor, task_id, None if body is None else body.comment
    )
