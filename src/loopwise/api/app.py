"""Mount the API routes and map loopwise errors to HTTP statuses."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from loopwise.api.routes import (
    admin,
    audit_trail,
    gate,
    learning,
    oversight,
    projects,
    reviewers,
    tasks,
)
from loopwise.errors import LoopwiseError, Unauthorized


async def json_error(request: Request, exc: Exception) -> JSONResponse:
    """A loopwise error as JSON: ``{"detail": message, "errors"?: [...]}``."""
    assert isinstance(exc, LoopwiseError)
    content: dict[str, object] = {"detail": exc.message}
    if exc.errors:
        content["errors"] = exc.errors
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return JSONResponse(content, status_code=exc.status, headers=headers)


def build_api(app: FastAPI) -> None:
    """Add the REST routes to ``app`` (``server`` installs :func:`json_error`)."""
    for module in (projects, tasks, gate, admin, oversight, reviewers, learning, audit_trail):
        app.include_router(module.router)
