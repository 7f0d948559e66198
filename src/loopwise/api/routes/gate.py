"""The gate's promise: calibrate it, check it against the audits."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from loopwise.api.deps import Actor, ServiceDep

router = APIRouter(prefix="/api/v1", tags=["gate"])


@router.post("/projects/{project}/calibrate")
def calibrate(project: str, service: ServiceDep, actor: Actor) -> dict[str, Any]:
    """Certify the threshold(s) again on the holdout labels (policy.target_error set):
    a new policy version and an event. Returns the gate's certificates."""
    return service.recalibrate(actor, project)


@router.post("/projects/{project}/promise/check")
def check_promise(project: str, service: ServiceDep, actor: Actor) -> dict[str, Any]:
    """Compare the audited error of automatic decisions with the promise; a broken promise
    fires an alert event and the policy's ``on_breach`` action."""
    return service.check_promise(actor, project)
