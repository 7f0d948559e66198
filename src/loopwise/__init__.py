"""loopwise keeps people in charge of machine-learning decisions.

``loopwise.Loop`` runs the loop in-process, ``loopwise.Client`` talks to a server; both
hand out :class:`loopwise.Project` handles with the same verbs. The algorithm packages
(``loopwise.routing``, ``learning``, ``consensus``, ``oversight``, ``audit``) are pure and
importing them loads no web or database library, so this module imports lazily.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "Loop": "loopwise.loop",
    "Project": "loopwise.loop",
    "Client": "loopwise.client",
    "Settings": "loopwise.config",
    "LoopwiseError": "loopwise.errors",
    "InvalidInput": "loopwise.errors",
    "NotFound": "loopwise.errors",
    "Conflict": "loopwise.errors",
    "Forbidden": "loopwise.errors",
    "Unauthorized": "loopwise.errors",
    "TooLarge": "loopwise.errors",
}

__all__ = [
    "Client",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "Loop",
    "LoopwiseError",
    "NotFound",
    "Project",
    "Settings",
    "TooLarge",
    "Unauthorized",
    "__version__",
]

if TYPE_CHECKING:
    from loopwise.client import Client
    from loopwise.config import Settings
    from loopwise.errors import (
        Conflict,
        Forbidden,
        InvalidInput,
        LoopwiseError,
        NotFound,
        TooLarge,
        Unauthorized,
    )
    from loopwise.loop import Loop, Project


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopwise' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
