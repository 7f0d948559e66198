"""The REST API (FastAPI): translates HTTP to :class:`loopwise.service.Service` calls."""

from loopwise.api.app import build_api, json_error

__all__ = ["build_api", "json_error"]
