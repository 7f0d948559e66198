"""Request dependencies: the service and the authenticated user.

Both are ``async``: FastAPI runs a sync dependency in the thread pool, one hop per
dependency and request. The actor comes from the service's short per-process token cache
when it can (no I/O); only a miss reads the database, in the thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from loopwise.service import Principal, Service

bearer = HTTPBearer(auto_error=False, description="A token from `loopwise users create`.")


async def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


async def get_actor(
    service: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The user whose bearer token came with the request (401 otherwise)."""
    token = None if credentials is None else credentials.credentials
    actor = service.cached_principal(token)
    if actor is None:
        actor = await run_in_threadpool(service.authenticate, token)
    return actor


Actor = Annotated[Principal, Depends(get_actor)]
