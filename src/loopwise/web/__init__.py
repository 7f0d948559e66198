"""Server-rendered pages (Jinja2): sign-in and a plain review page."""

from loopwise.web.pages import build_web, html_error

__all__ = ["build_web", "html_error"]
