"""Projects, policies, metrics, models, training and export."""

from __future__ import annotations

import json
from typing import Any, Literal

import orjson
from fastapi import APIRouter, BackgroundTasks, Request, status
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from loopwise.api.deps import Actor, ServiceDep
from loopwise.api.schemas import ProjectIn, SubmitIn, SubmitOut
from loopwise.errors import InvalidInput, TooLarge
from loopwise.service import Principal, Service

router = APIRouter(prefix="/api/v1", tags=["projects"])


@router.post("/projects", status_code=status.HTTP_201_CREATED)
def create_project(body: ProjectIn, service: ServiceDep, actor: Actor) -> dict[str, Any]:
    """Create a project (admin)."""
    return service.create_project(actor, body.name, labels=body.labels, input=body.input,
                                  sensitive=body.sensitive, policy=body.policy)


@router.get("/projects")
def list_projects(service: ServiceDep, actor: Actor) -> list[dict[str, Any]]:
    """Every project."""
    service.require_reader(actor)
    return service.list_projects(actor)


@router.get("/projects/{project}")
def get_project(project: str, service: ServiceDep, actor: Actor) -> dict[str, Any]:
    """A project, its policy and its champion model."""
    service.require_reader(actor)
    return service.get_project(actor, project)


@router.patch("/projects/{project}/policy")
def update_policy(project: str, changes: dict[str, Any], service: ServiceDep,
                  actor: Actor) -> dict[str, Any]:
    """Change policy fields (admin): a new policy version and an event."""
    return service.update_policy(actor, project, changes)


def _parse_items(raw: bytes) -> list[Any]:
    """The ``items`` of a submit body."""
    body = _loads(raw)
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise InvalidInput('body: must be {"items": [...]}')
    records: list[Any] = body["items"]
    return records


def _loads(raw: bytes) -> Any:
    """``raw`` parsed as the standard library parses it; by orjson (four times faster)
    unless orjson would refuse it (NaN and Infinity tokens, lone surrogates, which the
    service then names per item) or could read an integer beyond 64 bits as a float."""
    if not _may_hold_big_int(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"body: not valid JSON ({exc})") from None


_DIGITS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))  # a digit -> "0", else " "
_LONG_RUN = b"0" * 19


def _may_hold_big_int(raw: bytes) -> bool:
    """Whether ``raw`` has a run of 19 or more digits that is not a fraction's."""
    runs = raw.translate(_DIGITS)
    at = runs.find(_LONG_RUN)
    while at != -1:
        if raw[at - 1 : at] != b".":
            return True
        end = runs.find(b" ", at)
        at = -1 if end == -1 else runs.find(_LONG_RUN, end)
    return False


def _submit_body(service: Service, actor: Principal, project: str, raw: bytes) -> bytes:
    records = _parse_items(raw)
    if len(records) > service.settings.max_batch:
        raise TooLarge(
            f"batch of {len(records)} items is over the maximum of {service.settings.max_batch}"
        )
    return orjson.dumps({"decisions": service.submit(actor, project, records)})


@router.post(
    "/projects/{project}/items",
    response_model=SubmitOut,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": SubmitIn.model_json_schema(
            ref_template="#/components/schemas/{model}")}}}},
)
async def submit_items(project: str, request: Request, service: ServiceDep,
                       actor: Actor) -> Response:
    """Submit a batch of items; each is scored (unless it brings ``proba``) and routed.

    The whole batch is rejected (422, every error listed) if any item is invalid;
    413 beyond the configured maximum batch size.
    """
    raw = await request.body()
    # Parsing a large body, the work and encoding the reply happen off the event loop.
    reply = await run_in_threadpool(_submit_body, service, actor, project, raw)
    return Response(reply, media_type="application/json")


@router.get("/projects/{project}/items/{item_id}")
def get_item(project: str, item_id: int, service: ServiceDep, actor: Actor) -> dict[str, Any]:
    """An item with its prediction, routes, tasks, reviews and decision history."""
    return service.get_item(actor, project, item_id)


@router.get("/projects/{project}/metrics")
def metrics(project: str, service: ServiceDep, actor: Actor) -> dict[str, Any]:
    """Automation, the estimated error of automatic decisions with its interval, agreement."""
    return service.metrics(actor, project)


@router.get("/projects/{project}/models")
def models(project: str, service: ServiceDep, actor: Actor) -> list[dict[str, Any]]:
    """Model versions and their reports."""
    return service.list_models(actor, project)


@router.post("/projects/{project}/train", status_code=status.HTTP_202_ACCEPTED)
def train(project: str, background: BackgroundTasks, service: ServiceDep,
          actor: Actor) -> dict[str, Any]:
    """Start a training job (or return the one already queued or running)."""
    job = service.start_training(actor, project)
    if job["state"] == "queued" and service.settings.run_jobs:
        background.add_task(service.run_job, job["job_id"])
    return job


@router.get("/jobs/{job_id}")
def get_job(job_id: int, service: ServiceDep, actor: Actor) -> dict[str, Any]:
    """A job's state and result."""
    return service.get_job(actor, job_id)


MEDIA = {"jsonl": "application/x-ndjson", "csv": "text/csv",
         "label-studio": "application/json"}


@router.get("/projects/{project}/export")
def export(project: str, service: ServiceDep, actor: Actor,
           format: Literal["jsonl", "csv", "label-studio"] = "jsonl",
           decided_only: bool = False) -> StreamingResponse:
    """Every item with prediction, route, decision and reviews, streamed."""
    chunks = service.export(actor, project, format, decided_only=decided_only)
    ext = {"jsonl": "jsonl", "csv": "csv", "label-studio": "json"}[format]
    return StreamingResponse(
        chunks, media_type=MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="{project}.{ext}"'},
    )
