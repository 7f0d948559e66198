"""Request dependencies: the service and the authenticated user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from loopwise.service import Principal, Service

bearer = HTTPBearer(auto_error=False, description="A token from `loopwise users create`.")


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


def get_actor(
    service: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The user whose bearer token came with the request (401 otherwise)."""
    token = None if credentials is None else credentials.credentials
    return service.authenticate(token)


Actor = Annotated[Principal, Depends(get_actor)]
