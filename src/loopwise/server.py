"""Build the web application from settings; nothing is built at import time.

>>> from loopwise.server import create_app   # doctest: +SKIP
>>> app = create_app(Settings(database_url="sqlite:///loopwise.db"))   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response

from loopwise import __version__
from loopwise.api import build_api, json_error
from loopwise.config import Settings
from loopwise.errors import LoopwiseError
from loopwise.service import Service
from loopwise.store.db import Database
from loopwise.web import build_web, html_error

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, service: Service | None = None) -> FastAPI:
    """The ASGI app: REST API under ``/api/v1``, pages, OpenAPI at ``/openapi.json``.

    The database is migrated first. Pass ``service`` to share one with the caller.
    """
    owned: Service | None = None  # closed on shutdown when built here, not the caller's
    if service is None:
        settings = settings or Settings()
        db = Database(settings.database_url, pool_size=settings.pool_size,
                      sqlite_synchronous=settings.sqlite_synchronous)
        db.migrate()
        service = owned = Service(db, settings)
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if owned is not None:
            owned.close()  # finish webhook deliveries, close the database's connections

    app = FastAPI(
        lifespan=lifespan,
        title="loopwise",
        version=__version__,
        description="Keep people in charge of machine-learning decisions.",
    )
    app.state.service = service
    build_api(app)
    build_web(app)

    async def on_error(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return await json_error(request, exc)
        return await html_error(request, exc)

    app.add_exception_handler(LoopwiseError, on_error)

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    if service.settings.run_jobs:
        # Jobs queued before a restart would otherwise wait forever.
        pending = service.recover_jobs()
        for job_id in pending:
            threading.Thread(target=service.run_job, args=(job_id,), daemon=True).start()
    return app
