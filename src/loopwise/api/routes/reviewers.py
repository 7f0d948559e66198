"""Many reviewers: the reviewers' skill, resuming a paused reviewer, marking gold items."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from loopwise.api.deps import Actor, ServiceDep

router = APIRouter(prefix="/api/v1", tags=["reviewers"])


class ResumeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str


class GoldItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_id: int
    label: str


class GoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[GoldItem]


@router.get("/projects/{project}/reviewers")
def reviewers(project: str, service: ServiceDep, actor: Actor) -> list[dict[str, Any]]:
    """Per reviewer (experts and admins): scored answers n, accuracy with its 95% interval,
    bias-corrected quality, gold answers, paused."""
    return service.reviewers(actor, project)


@router.post("/projects/{project}/reviewers/{name}/resume")
def resume(
    project: str, name: str, body: ResumeIn, service: ServiceDep, actor: Actor
) -> dict[str, Any]:
    """Let a paused reviewer claim again (admin); the reason goes to the audit trail."""
    return service.resume_reviewer(actor, project, name, body.reason)


@router.post("/projects/{project}/gold")
def mark_gold(project: str, body: GoldIn, service: ServiceDep, actor: Actor) -> dict[str, Any]:
    """Mark items with known labels (admin); they are mixed into reviewers' claims at the
    policy's gold_rate. One bad item rejects the whole request."""
    return service.mark_gold(actor, project, [g.model_dump() for g in body.items])
