"""Pages: sign in with a token (HTTP-only cookie), review items one at a time.

Forms carry a CSRF token derived from the session token (HMAC), and the cookie is
``SameSite=Strict``; answers go through the same service as the API.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from loopwise.domain import Role
from loopwise.errors import Forbidden, LoopwiseError, Unauthorized
from loopwise.service import Principal, Service

COOKIE = "loopwise_session"
STATIC = Path(__file__).parent / "static"
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
router = APIRouter(include_in_schema=False)


def _csrf(token: str) -> str:
    return hmac.new(token.encode(), b"loopwise-csrf", hashlib.sha256).hexdigest()


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _who(request: Request) -> tuple[Principal, str] | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        return _service(request).authenticate(token), token
    except Unauthorized:
        return None


def _page(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, ctx, status_code=status)


def _check_csrf(token: str, csrf: str) -> None:
    if not hmac.compare_digest(_csrf(token), csrf):
        raise Forbidden("the form is stale or forged (CSRF check failed); reload the page")


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    who = _who(request)
    if who is None:
        return _page(request, "signin.html")
    actor, token = who
    projects = _service(request).list_projects(actor)
    return _page(request, "home.html", actor=actor, projects=projects, csrf=_csrf(token))


@router.post("/signin")
def signin(request: Request, token: Annotated[str, Form()]) -> Response:
    try:
        _service(request).authenticate(token.strip())
    except Unauthorized:
        return _page(request, "signin.html", status=401, error="That token is not valid.")
    resp = RedirectResponse("/", status_code=303)
    resp.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict",
                    secure=request.url.scheme == "https")
    return resp


@router.post("/signout")
def signout(request: Request, csrf: Annotated[str, Form()]) -> Response:
    who = _who(request)
    if who is not None:
        _check_csrf(who[1], csrf)
    resp = RedirectResponse("/", status_code=303)
    resp.delete_cookie(COOKIE)
    return resp


def _count(raw: str | None) -> int:
    """The session's answer count carried from page to page (never trusted for anything)."""
    try:
        return max(0, min(int(raw or 0), 10**6))
    except ValueError:
        return 0


@router.get("/projects/{project}/review", response_class=HTMLResponse)
def review(request: Request, project: str) -> Response:
    """The reviewer's workbench: the task held (or the next one, claimed on open)."""
    who = _who(request)
    if who is None:
        return RedirectResponse("/", status_code=303)
    actor, token = who
    service = _service(request)
    info = service.get_project(actor, project)
    held = service.my_tasks(actor, project)
    task = held[0] if held else next(iter(service.claim(actor, project, 1)), None)
    blind = bool(info["policy"].get("blind", False)) and actor.role is Role.REVIEWER
    moved: dict[str, float] = {}
    if task is not None and not blind:
        effects = service.explain(actor, project, task["item_id"])["effects"]
        moved = {e["feature"]: e["effect"] for e in effects}
    q = request.query_params
    return _page(request, "review.html", actor=actor, project=info, task=task,
                 csrf=_csrf(token), flash=q.get("done"), count=_count(q.get("n")),
                 blind=blind, moved=moved, revealed=q.get("said") if blind else None)


@router.post("/projects/{project}/review")
def answer(
    request: Request,
    project: str,
    task_id: Annotated[int, Form()],
    csrf: Annotated[str, Form()],
    action: Annotated[str, Form()] = "submit",
    label: Annotated[str | None, Form()] = None,
    comment: Annotated[str | None, Form()] = None,
    item_id: Annotated[int | None, Form()] = None,
    n: Annotated[str | None, Form()] = None,
) -> Response:
    """Save an answer (and take the next task in the same step), release, or escalate."""
    who = _who(request)
    if who is None:
        return RedirectResponse("/", status_code=303)
    actor, token = who
    _check_csrf(token, csrf)
    service = _service(request)
    count = _count(n)
    params: dict[str, str | int] = {"done": task_id}
    if action == "release":
        service.release(actor, task_id)
    elif action == "escalate":
        service.escalate(actor, task_id, comment or None)
    else:
        service.submit_review(actor, task_id, label or "", comment=comment or None,
                              claim_next=True)
        count += 1
        info = service.get_project(actor, project)
        if info["policy"].get("blind") and item_id is not None:
            prediction = service.get_item(actor, project, item_id).get("prediction")
            if prediction is not None:
                params["said"] = prediction["label"]
    params["n"] = count
    return RedirectResponse(f"/projects/{project}/review?{urlencode(params)}", status_code=303)


async def html_error(request: Request, exc: Exception) -> Response:
    """A loopwise error as a page."""
    assert isinstance(exc, LoopwiseError)
    return _page(request, "error.html", status=exc.status, message=exc.message)


def build_web(app: FastAPI) -> None:
    """Add the pages and their static files (``/static``) to ``app``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
