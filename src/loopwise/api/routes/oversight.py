"""Oversight: fairness, drift, alerts, webhooks and the report of a project."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from loopwise.api.deps import Actor, ServiceDep

router = APIRouter(prefix="/api/v1", tags=["oversight"])


class WebhookIn(BaseModel):
    url: str
    secret: str


@router.get("/projects/{project}/fairness")
def fairness(
    project: str, service: ServiceDep, actor: Actor, positive: str | None = None
) -> dict[str, Any]:
    """Per-group metrics of the model, reviewers, final decisions and routing."""
    return service.fairness(actor, project, positive)


@router.get("/projects/{project}/drift")
def drift(project: str, service: ServiceDep, actor: Actor) -> dict[str, Any]:
    """Drift of the recent items from the champion's training data."""
    return service.drift(actor, project)


@router.get("/projects/{project}/alerts")
def alerts(project: str, service: ServiceDep, actor: Actor) -> list[dict[str, Any]]:
    """The policy's alert rules and their states."""
    return service.alerts(actor, project)


@router.post("/projects/{project}/alerts/evaluate")
def evaluate_alerts(project: str, service: ServiceDep, actor: Actor) -> list[dict[str, Any]]:
    """Evaluate the alert rules now (admin or service)."""
    return service.evaluate_alerts(actor, project)


@router.get("/projects/{project}/webhooks")
def list_webhooks(project: str, service: ServiceDep, actor: Actor) -> list[dict[str, Any]]:
    """The project's webhook endpoints and deliveries (admin; secrets never shown)."""
    return service.list_webhooks(actor, project)


@router.post("/projects/{project}/webhooks", status_code=201)
def add_webhook(project: str, body: WebhookIn, service: ServiceDep, actor: Actor) -> dict[str, Any]:
    """Register an endpoint for alert events (admin)."""
    return service.add_webhook(actor, project, body.url, body.secret)


@router.delete("/projects/{project}/webhooks/{webhook_id}")
def remove_webhook(
    project: str, webhook_id: int, service: ServiceDep, actor: Actor
) -> dict[str, Any]:
    """Stop sending to an endpoint (admin)."""
    return service.remove_webhook(actor, project, webhook_id)


@router.get("/projects/{project}/report", response_model=None)
def report(
    project: str, service: ServiceDep, actor: Actor, format: Literal["html", "json"] = "html"
) -> dict[str, Any] | HTMLResponse:
    """The oversight report: one self-contained HTML page, or its figures as JSON."""
    if format == "json":
        return service.report(actor, project)
    return HTMLResponse(service.report_html(actor, project))
