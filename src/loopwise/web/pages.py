"""Pages: sign in with a token (HTTP-only cookie), review items one at a time.

Forms carry a CSRF token derived from the session token (HMAC), and the cookie is
``SameSite=Strict``; answers go through the same service as the API.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from loopwise.domain import Policy, Role
from loopwise.errors import Forbidden, InvalidInput, LoopwiseError, Unauthorized
from loopwise.service import Principal, Service
from loopwise.web.svg import (
    CurvePoint,
    Rate,
    dot_intervals,
    interval_bar,
    learning_curve,
    line_chart,
    mini_interval,
)

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


def _signed_form(request: Request, csrf: str) -> Principal | None:
    """Who posted a form (its CSRF token checked), or None when nobody is signed in."""
    who = _who(request)
    if who is None:
        return None
    _check_csrf(who[1], csrf)
    return who[0]


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


FAIRNESS_VIEWS = (
    ("decisions", "Final decisions", ("selection_rate", "override_rate")),
    ("model", "Model (against people's labels)", ("selection_rate", "accuracy", "tpr")),
    ("routing", "Routing", ("review_rate", "auto_error")),
)
"""What the dashboard plots of each thing of ``service.fairness``: its rates by group."""
MAX_GROUPS = 12
DRIFT_ROWS = 10
STATUS_ORDER = ("major", "moderate", "ok", "insufficient")
OUTPUT_CHECKS = ("confidence", "predicted_label", "review_rate")


def _rate(r: dict[str, Any] | None) -> Rate:
    if r is None:
        return None, None, None, "not measured"
    return r["estimate"], r["ci"][0], r["ci"][1], r.get("reason")


def _worst_gap(disparities: dict[str, Any], metrics: tuple[str, ...]) -> str:
    """The largest defined difference between groups of ``metrics``, in words (between
    groups large enough to judge, when there is one)."""
    gaps = [disparities[f"{m}_difference"] for m in metrics if f"{m}_difference" in disparities]
    defined = [d for d in gaps if d["estimate"] is not None]
    if not defined:
        why = gaps[0].get("reason") if gaps else None
        return f"No gap between groups can be measured yet ({why or 'no rates defined'})."
    # gaps between groups large enough to judge first; a small group's only when none is
    solid = [d for d in defined if not d.get("insufficient")]
    d = max(solid or defined, key=lambda d: abs(d["estimate"]))
    lo, hi = d["ci"]
    ci = "" if lo is None else f", 95% interval [{100 * lo:.1f}, {100 * hi:.1f}]"
    between = f" between {' and '.join(map(str, d['groups']))}" if d.get("groups") else ""
    care = " — a group has too few rows: read with care" if d.get("insufficient") else ""
    return (
        f"Largest gap: {d['metric'].replace('_', ' ')} {100 * d['estimate']:.1f} points"
        f"{ci}{between}{care}."
    )


def _fairness_view(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per thing of a fairness report: why there is nothing to show, or per attribute a
    dot-and-interval chart of its groups' rates and the worst gap in words."""
    views = []
    for key, name, metrics in FAIRNESS_VIEWS:
        rep = report.get(key)
        if rep is None:
            continue
        view: dict[str, Any] = {"key": key, "name": name, "n": rep["n"], "charts": []}
        if rep["status"] != "ok":
            view["reason"] = f"{rep['status']}: {rep['reason']}"
        for attr, b in (rep.get("attributes") or {}).items():
            stats = sorted(b["groups"].values(), key=lambda g: -g["n"])
            shown = stats[:MAX_GROUPS]
            groups = [str(g["group"]) for g in shown]
            chart = dot_intervals(
                groups,
                [(m, [_rate(g["rates"].get(m)) for g in shown]) for m in metrics],
                greyed=[str(g["group"]) for g in shown if g["insufficient"]],
                notes={str(g["group"]): "; ".join(g["notes"]) for g in shown},
                sizes={str(g["group"]): g["n"] for g in shown},
                title=f"{name}: {', '.join(m.replace('_', ' ') for m in metrics)} by {attr}, "
                "each with its 95% Wilson interval",
            )
            view["charts"].append(
                {
                    "attribute": attr,
                    "chart": chart,
                    "gap": _worst_gap(b["disparities"], metrics),
                    "hidden": len(stats) - len(shown),
                }
            )
        views.append(view)
    return views


def _drift_rows(report: dict[str, Any]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The most recent window of a drift report and its checks, worst first: inputs,
    the model's outputs and (when reported) the reviewers' answers."""
    windows = report.get("windows") or []
    if not windows:
        return None, []
    window = windows[0]
    rows = [
        {**f, "what": "output" if n in OUTPUT_CHECKS else "input"}
        for n, f in window["features"].items()
    ]
    for r in (report.get("reviewers") or {}).get("windows", [])[:1]:
        rows += [{**f, "what": "reviewers"} for f in r["features"].values()]

    def worst(f: dict[str, Any]) -> tuple[int, float]:
        value = f.get(f["decided_by"]) if f.get("decided_by") else None
        return STATUS_ORDER.index(f["status"]), -(value or 0.0)

    return window, sorted(rows, key=worst)


def _reviewer_rows(people: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each reviewer of ``service.reviewers`` with a small bar of their accuracy."""
    return [
        {
            **r,
            "bar": mini_interval(
                r["accuracy"],
                r["interval"][0],
                r["interval"][1],
                title=f"{r['name']}: accuracy with its 95% interval",
            ),
        }
        for r in people
    ]


def _curve_chart(curve: list[dict[str, Any]]) -> Markup | None:
    """The learning curve of the metrics as a chart (None without a measured version)."""
    points = [
        CurvePoint(
            c["version"],
            c["human_labels"],
            acc["estimate"],
            acc["ci"][0],
            acc["ci"][1],
            rejected=c["status"] == "rejected",
        )
        for c in curve
        if (acc := c.get("holdout_accuracy")) and acc.get("estimate") is not None
    ]
    if not points:
        return None
    return learning_curve(
        points,
        title="holdout accuracy of each model version against the human labels it "
        "learnt from, with 95% intervals; crosses: rejected versions",
    )


@router.get("/projects/{project}", response_class=HTMLResponse)
def dashboard(request: Request, project: str) -> Response:
    """The overseer's view: automation and its error against the promise, over time; the
    queue; fairness by group, drift, reviewers, models and the learning curve; alerts as
    a banner. Reviewers' skill is shown to experts and admins only."""
    who = _who(request)
    if who is None:
        return RedirectResponse("/", status_code=303)
    actor, token = who
    service = _service(request)
    info = service.get_project(actor, project)
    m = service.metrics(actor, project)
    tl = service.timeline(actor, project, points=24)
    windows = tl["windows"]
    err = [w["auto_error"] for w in windows]
    target = tl["target_error"]
    top = (
        max(
            [0.1, 2 * (target or 0)]
            + [e["ci"][1] or 0 for e in err]
            + [w["automation"] for w in windows]
        )
        if windows
        else 1.0
    )
    chart = line_chart(
        [[w["automation"] for w in windows], [e["estimate"] for e in err]],
        names=["automation", "estimated auto-error"],
        band=([e["ci"][0] for e in err], [e["ci"][1] for e in err]),
        target=target,
        top=min(1.0, top),
        title="automation and estimated error over time",
    )
    est = m["auto_error"]
    bar = interval_bar(
        est["estimate"],
        est["ci"][0],
        est["ci"][1],
        est["target"],
        top=max(0.1, 2 * (est["target"] or 0.05), est["ci"][1] or 0),
        title="estimated error of automatic decisions, 95% interval, target",
    )
    alerts: list[dict[str, Any]] = []
    if actor.role is Role.ADMIN:
        alerts = [
            e
            for e in service.list_events(actor, project=project, limit=1000)
            if e["type"].startswith("alert.")
        ][-3:]
    fairness = service.fairness(actor, project)
    drift_window, drift_rows = _drift_rows(service.drift(actor, project))
    people, pace = None, None
    if actor.role in (Role.ADMIN, Role.EXPERT):
        people = _reviewer_rows(service.reviewers(actor, project))
        pace = service.throughput(actor, project, hours=24)
    return _page(
        request,
        "dashboard.html",
        pace=pace,
        actor=actor,
        project=info,
        m=m,
        time_chart=chart,
        error_bar=bar,
        alerts=alerts,
        csrf=_csrf(token),
        models=service.list_models(actor, project),
        window_size=windows[0]["n"] if windows else 0,
        fairness=fairness,
        fairness_views=_fairness_view(fairness),
        drift_window=drift_window,
        drift_rows=drift_rows,
        drift_shown=DRIFT_ROWS,
        people=people,
        curve_chart=_curve_chart(m.get("learning_curve") or []),
    )


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
    verdict, _, right = (q.get("gold") or "").partition(":")
    return _page(request, "review.html", actor=actor, project=info, task=task,
                 csrf=_csrf(token), flash=q.get("done"), count=_count(q.get("n")),
                 blind=blind, moved=moved, revealed=q.get("said") if blind else None,
                 gold={"correct": verdict == "right", "label": right} if right else None)


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
    actor = _signed_form(request, csrf)
    if actor is None:
        return RedirectResponse("/", status_code=303)
    service = _service(request)
    count = _count(n)
    params: dict[str, str | int] = {"done": task_id}
    if action == "release":
        service.release(actor, task_id)
    elif action == "escalate":
        service.escalate(actor, task_id, comment or None)
    else:
        reply = service.submit_review(actor, task_id, label or "", comment=comment or None,
                                      claim_next=True)
        count += 1
        gold = reply.get("gold")
        if gold is not None:  # a check item: the reviewer is told the right answer
            params["gold"] = f"{'right' if gold['correct'] else 'wrong'}:{gold['label']}"
        info = service.get_project(actor, project)
        if info["policy"].get("blind") and item_id is not None:
            prediction = service.get_item(actor, project, item_id).get("prediction")
            if prediction is not None:
                params["said"] = prediction["label"]
    params["n"] = count
    return RedirectResponse(f"/projects/{project}/review?{urlencode(params)}", status_code=303)


@router.get("/projects/{project}/expert", response_class=HTMLResponse)
def expert(request: Request, project: str) -> Response:
    """Escalations for experts (and admins), with the model's answer and earlier answers."""
    who = _who(request)
    if who is None:
        return RedirectResponse("/", status_code=303)
    actor, token = who
    if actor.role not in (Role.EXPERT, Role.ADMIN):
        raise Forbidden("the expert view is for experts and admins")
    service = _service(request)
    info = service.get_project(actor, project)
    held = [t for t in service.my_tasks(actor, project) if t["kind"] == "expert"]
    task = held[0] if held else None
    if task is None:
        got = service.claim(actor, project, 1)
        if got and got[0]["kind"] != "expert":  # no escalation waits: give the review back
            service.release(actor, got[0]["task_id"])
            got = []
        task = got[0] if got else None
    item = service.get_item(actor, project, task["item_id"]) if task else None
    q = request.query_params
    return _page(request, "expert.html", actor=actor, project=info, task=task, item=item,
                 csrf=_csrf(token), flash=q.get("done"), count=_count(q.get("n")),
                 error=q.get("error"))


@router.post("/projects/{project}/expert")
def expert_answer(
    request: Request,
    project: str,
    task_id: Annotated[int, Form()],
    csrf: Annotated[str, Form()],
    action: Annotated[str, Form()] = "submit",
    label: Annotated[str | None, Form()] = None,
    comment: Annotated[str | None, Form()] = None,
    n: Annotated[str | None, Form()] = None,
) -> Response:
    """An expert decides (a reason is required) or releases the escalation."""
    actor = _signed_form(request, csrf)
    if actor is None:
        return RedirectResponse("/", status_code=303)
    service = _service(request)
    count = _count(n)
    params: dict[str, str | int] = {"done": f"task {task_id}"}
    if action == "release":
        service.release(actor, task_id)
    elif not (comment or "").strip():
        params = {"error": "An expert's decision needs a reason."}
    else:
        service.submit_review(actor, task_id, label or "", comment=comment.strip() if comment
                              else None)
        count += 1
    params["n"] = count
    return RedirectResponse(f"/projects/{project}/expert?{urlencode(params)}", status_code=303)


@dataclass(frozen=True)
class Field:
    """One editable policy field of the settings page."""

    name: str
    kind: str  # number, count, bool, choice, json
    label: str
    help: str
    optional: bool = False
    choices: tuple[str, ...] = ()
    value: Any = None


FIELDS = (
    Field("stopped", "bool", "Stop switch", "every item goes to people"),
    Field("threshold", "number", "Threshold", "confidence accepted without a promise"),
    Field("target_error", "number", "Target error", "the promise; empty: none", True),
    Field("delta", "number", "Delta", "the promise holds with probability 1 - delta"),
    Field("audit_rate", "number", "Audit rate", "share of automatic decisions audited"),
    Field("per_class", "bool", "Per-class thresholds", "one certified threshold per class"),
    Field("temperature", "bool", "Temperature scaling", "fitted on part of the labels"),
    Field("novelty", "number", "Novelty level", "share of ordinary items flagged; empty: off",
          True),
    Field("budget_per_hour", "count", "Budget per hour", "human tasks; empty: no cap", True),
    Field("over_budget", "choice", "Over budget", "wait, or accept outside the promise",
          choices=("wait", "accept")),
    Field("on_breach", "choice", "When the promise breaks", "",
          choices=("notify", "tighten", "review_all")),
    Field("min_reviews", "count", "Min reviews", "answers per item"),
    Field("max_reviews", "count", "Max reviews", "then an expert"),
    Field("consensus_confidence", "number", "Consensus", "posterior that settles an item"),
    Field("gold_rate", "number", "Gold rate", "share of gold items in claims"),
    Field("min_quality", "number", "Min reviewer quality", "below it: paused; empty: never",
          True),
    Field("blind", "bool", "Blind review", "reviewers see the model only after answering"),
    Field("retrain_every", "count", "Retrain every", "new human labels; empty: on request",
          True),
    Field("rules", "json", "Rules", 'e.g. [{"name": "big", "if": {"meta.amount": '
          '{">": 10000}}, "route": "expert"}]'),
    Field("alerts", "json", "Alerts", "alert rules (see the docs)"),
)


def _parse_field(f: Field, raw: str) -> Any:
    """A form value as the policy takes it; the policy's own validation judges it."""
    text = raw.strip()
    if f.kind == "bool":
        return text == "true"
    if f.kind == "choice":
        return text
    if f.kind == "json":
        try:
            return json.loads(text or "[]")
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"policy.{f.name}: not valid JSON ({exc.msg})") from None
    if not text and f.optional:
        return None
    try:
        return int(text) if f.kind == "count" else float(text)
    except ValueError:
        raise InvalidInput(f"policy.{f.name}: must be a number, got {text!r}") from None


@router.get("/projects/{project}/settings", response_class=HTMLResponse)
def settings(request: Request, project: str) -> Response:
    """The policy editor (admin): change, preview what changes, save (a new version)."""
    who = _admin(request)
    if who is None:
        return RedirectResponse("/", status_code=303)
    actor, token = who
    return _settings_page(request, actor, token, project, saved=request.query_params.get("saved"))


def _settings_page(request: Request, actor: Principal, token: str, project: str,
                   status: int = 200, **ctx: Any) -> Response:
    info = _service(request).get_project(actor, project)
    fields = [replace(f, value=info["policy"].get(f.name)) for f in FIELDS]
    return _page(request, "settings.html", status=status, actor=actor, csrf=_csrf(token),
                 project=info, fields=fields, **ctx)


@router.post("/projects/{project}/settings", response_class=HTMLResponse)
async def settings_change(request: Request, project: str) -> Response:
    who = _admin(request)
    if who is None:
        return RedirectResponse("/", status_code=303)
    actor, token = who
    form = await request.form()
    _check_csrf(token, str(form.get("csrf", "")))
    service = _service(request)
    reason = str(form.get("reason", "")).strip()
    try:
        if form.get("action") == "save":
            changes = json.loads(str(form.get("changes", "{}")))
            body = {**changes, **({"reason": reason} if reason else {})}
            info = await run_in_threadpool(service.update_policy, actor, project, body)
            return RedirectResponse(
                f"/projects/{project}/settings?saved={info['policy_version']}", status_code=303)
        current = service.get_project(actor, project)["policy"]
        changes = {}
        for f in FIELDS:
            if f.name in form:
                value = _parse_field(f, str(form[f.name]))
                if value != current.get(f.name):
                    changes[f.name] = value
        new = Policy.from_dict(current).merged(changes).to_dict()
        preview = {k: {"from": current.get(k), "to": v} for k, v in new.items()
                   if current.get(k) != v}
        if "stopped" in preview and not reason:
            raise InvalidInput("stopping or resuming needs a reason")
    except LoopwiseError as exc:  # said on the page; nothing saved
        return _settings_page(request, actor, token, project, status=exc.status,
                              error=exc.message)
    return _settings_page(request, actor, token, project, preview=preview,
                          changes_json=json.dumps(changes), reason=reason)


@router.post("/projects/{project}/override")
def override(
    request: Request,
    project: str,
    csrf: Annotated[str, Form()],
    item_id: Annotated[int, Form()],
    label: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "",
    n: Annotated[str | None, Form()] = None,
) -> Response:
    """An expert or admin replaces a decision (a new one; a reason is required)."""
    actor = _signed_form(request, csrf)
    if actor is None:
        return RedirectResponse("/", status_code=303)
    params: dict[str, str | int] = {"n": _count(n)}
    try:
        _service(request).override(actor, project, item_id, label, reason=reason)
        params["done"] = f"override of item {item_id}"
    except LoopwiseError as exc:  # said on the page; nothing changed
        params["error"] = exc.message
    return RedirectResponse(f"/projects/{project}/expert?{urlencode(params)}", status_code=303)


def _admin(request: Request) -> tuple[Principal, str] | None:
    who = _who(request)
    if who is not None and who[0].role is not Role.ADMIN:
        raise Forbidden("only an admin manages people and tokens")
    return who


@router.get("/users", response_class=HTMLResponse)
def people(request: Request) -> Response:
    """People and their roles (admin); create a person or give one a new token."""
    who = _admin(request)
    if who is None:
        return RedirectResponse("/", status_code=303)
    actor, token = who
    return _page(request, "users.html", actor=actor, csrf=_csrf(token),
                 users=_service(request).list_users(actor), roles=[r.value for r in Role])


@router.post("/users", response_class=HTMLResponse)
def people_change(
    request: Request,
    csrf: Annotated[str, Form()],
    action: Annotated[str, Form()],
    name: Annotated[str, Form()],
    role: Annotated[str, Form()] = "reviewer",
) -> Response:
    who = _admin(request)
    if who is None:
        return RedirectResponse("/", status_code=303)
    actor, token = who
    _check_csrf(token, csrf)
    service = _service(request)
    created, error, status = None, None, 200
    try:
        if action == "rotate":
            created = service.rotate_token(actor, name)
        else:
            created = service.create_user(actor, name.strip(), role)
    except LoopwiseError as exc:  # a taken name, a bad role: said on the page, nothing saved
        error, status = exc.message, exc.status
    return _page(request, "users.html", status=status, actor=actor, csrf=_csrf(token),
                 users=service.list_users(actor), roles=[r.value for r in Role],
                 created=created, error=error)


AUDIT_PAGE = 100
"""Events a page of the audit view shows."""


@router.get("/projects/{project}/audit", response_class=HTMLResponse)
def audit(request: Request, project: str) -> Response:
    """The project's events, filtered by type, with the trail's verify status (admin)."""
    who = _who(request)
    if who is None:
        return RedirectResponse("/", status_code=303)
    actor, token = who
    service = _service(request)
    service.get_project(actor, project)  # 404 for an unknown project
    q = request.query_params
    chosen = q.get("type") or None
    after = _count(q.get("after"))
    events = service.list_events(actor, project=project, type=chosen, after=after,
                                 limit=AUDIT_PAGE)
    seen = {e["type"] for e in service.list_events(actor, project=project, limit=1000)}
    return _page(request, "audit.html", actor=actor, csrf=_csrf(token), project=project,
                 events=events, verify=service.verify_audit_json(actor), chosen=chosen or "",
                 after=after, types=sorted(seen | ({chosen} if chosen else set())),
                 limit=AUDIT_PAGE)


async def html_error(request: Request, exc: Exception) -> Response:
    """A loopwise error as a page."""
    assert isinstance(exc, LoopwiseError)
    return _page(request, "error.html", status=exc.status, message=exc.message)


def build_web(app: FastAPI) -> None:
    """Add the pages and their static files (``/static``) to ``app``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
