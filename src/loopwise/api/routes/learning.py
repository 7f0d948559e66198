"""Active learning and model promotion: pool queries, rolling a champion back."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, StrictInt

from loopwise.api.deps import Actor, ServiceDep

router = APIRouter(prefix="/api/v1", tags=["learning"])


class PoolQueryIn(BaseModel):
    """How many pool items to send to people, and optionally which strategy picks them
    (default: the policy's ``strategy``)."""

    model_config = ConfigDict(extra="forbid")
    n: StrictInt
    strategy: str | None = None


@router.post("/projects/{project}/pool/query")
def query_pool(
    project: str, body: PoolQueryIn, service: ServiceDep, actor: Actor
) -> dict[str, Any]:
    """Create review tasks (reason ``pool_query``) for the ``n`` most informative pool items,
    scored by the current champion (no champion: a diverse first batch). 422 for an unknown
    strategy (the message lists the known ones) or ``n`` outside 1..pool size."""
    return service.query_pool(actor, project, body.n, strategy=body.strategy)


@router.post("/projects/{project}/models/{version}/rollback")
def rollback(project: str, version: int, service: ServiceDep, actor: Actor) -> dict[str, Any]:
    """Retire champion ``version`` and bring back the champion it replaced (admin); 409 when
    ``version`` is not the champion or replaced none."""
    return service.rollback(actor, project, version)
