"""Errors loopwise raises. Each also subclasses the matching builtin, so callers may
catch either; ``api`` and ``web`` map them to HTTP statuses, nothing else does.

::

    LoopwiseError
     ├── InvalidInput (ValueError)        422  bad value; ``errors`` lists every problem
     ├── NotFound (LookupError)           404  unknown project, item, task, job, user
     ├── Conflict (RuntimeError)          409  task not yours, lease expired, already done
     ├── TooLarge (ValueError)            413  batch over the configured maximum
     ├── Unauthorized (PermissionError)   401  no or bad token
     └── Forbidden (PermissionError)      403  role not allowed
"""

from __future__ import annotations

from typing import Any


class LoopwiseError(Exception):
    """Base of every error loopwise raises on purpose."""

    status = 500

    def __init__(self, message: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []

    def __str__(self) -> str:
        return self.message


class InvalidInput(LoopwiseError, ValueError):
    """A value is not acceptable; ``errors`` holds one entry per problem
    (``{"loc": [...], "msg": ..., "external_id"?: ...}``)."""

    status = 422


class NotFound(LoopwiseError, LookupError):
    """The named project, item, task, job or user does not exist."""

    status = 404


class Conflict(LoopwiseError, RuntimeError):
    """The request clashes with the current state (not your task, lease expired, done)."""

    status = 409


class TooLarge(LoopwiseError, ValueError):
    """A batch holds more items than the configured maximum."""

    status = 413


class Unauthorized(LoopwiseError, PermissionError):
    """No token, or a token nobody holds."""

    status = 401


class Forbidden(LoopwiseError, PermissionError):
    """The user's role may not do this."""

    status = 403
