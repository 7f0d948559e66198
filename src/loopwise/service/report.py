"""The oversight report: one self-contained HTML page (inline SVG, no external assets), or
the same figures as JSON.

Sections: automation and the audited error of automatic decisions over time (items in
``BUCKETS`` equal slices by arrival) against the target; fairness of the final decisions
and of the model by group, with 95% intervals; drift of the recent items; reviewer
agreement with the model; model versions; alert states.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, select

from loopwise.domain import Route
from loopwise.oversight import wilson
from loopwise.service.alerts import alert_states_of
from loopwise.service.base import Principal, ProjectRow, utcnow
from loopwise.service.drift import drift_from_store
from loopwise.service.fairness import fairness_report
from loopwise.service.metrics import MetricsMixin
from loopwise.service.views import first_prediction_id
from loopwise.store.tables import items, model_versions, predictions, reviews, routes

BUCKETS = 20


def _over_time(conn: Connection, p: ProjectRow) -> list[dict[str, Any]]:
    """Per slice of items: n, automation rate, audited error with its Wilson interval."""
    rows = conn.execute(
        select(items.c.id, items.c.created_at, routes.c.route)
        .join(routes, and_(routes.c.item_id == items.c.id, routes.c.initial.is_(True)))
        .where(items.c.project_id == p.id)
        .order_by(items.c.id)
    ).all()
    if not rows:
        return []
    audited = [r.id for r in rows if r.route == Route.AUDITED.value]
    wrong: dict[int, bool] = {}
    if audited:
        for r in conn.execute(
            select(reviews.c.item_id, reviews.c.label, predictions.c.label.label("pred"))
            .select_from(reviews)
            .join(predictions, predictions.c.id == first_prediction_id(reviews.c.item_id))
            .where(reviews.c.item_id.in_(audited))
        ):
            wrong[r.item_id] = r.label != r.pred
    out = []
    for chunk in np.array_split(np.arange(len(rows)), min(BUCKETS, len(rows))):
        part = [rows[i] for i in chunk]
        auto = sum(r.route in (Route.AUTO.value, Route.AUDITED.value) for r in part)
        checked = [wrong[r.id] for r in part if r.id in wrong]
        err = wilson(sum(checked), len(checked))
        out.append(
            {
                "from": part[0].created_at.isoformat(),
                "to": part[-1].created_at.isoformat(),
                "n": len(part),
                "automation_rate": auto / len(part),
                "audit_error": err.to_dict(),
            }
        )
    return out


def _svg_lines(
    series: dict[str, list[float | None]], target: float | None, height: int = 160, width: int = 520
) -> str:
    """A small line chart in [0, 1] (None: a gap), with a dashed target line."""
    colors = ["#1f77b4", "#d62728", "#2ca02c"]
    parts = [
        f'<svg width="{width}" height="{height}" '
        f'role="img"><rect width="{width}" height="{height}" fill="#fff" stroke="#ccc"/>'
    ]
    for j, (name, ys) in enumerate(series.items()):
        n = max(len(ys) - 1, 1)
        pts = [
            f"{10 + i * (width - 20) / n:.1f},{height - 10 - y * (height - 20):.1f}"
            for i, y in enumerate(ys)
            if y is not None
        ]
        color = colors[j % len(colors)]
        if pts:
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                f'points="{" ".join(pts)}"/>'
            )
        parts.append(
            f'<text x="{width - 150}" y="{16 + 14 * j}" fill="{color}" '
            f'font-size="11">{html.escape(name)}</text>'
        )
    if target is not None:
        y = height - 10 - target * (height - 20)
        parts.append(
            f'<line x1="10" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#d62728" stroke-dasharray="4 3"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _svg_intervals(
    rows: list[tuple[str, float | None, float | None, float | None]], width: int = 520
) -> str:
    """One row per group: its estimate as a dot and its interval as a bar, on [0, 1]."""
    height = 20 * len(rows) + 10
    parts = [f'<svg width="{width}" height="{height}" role="img">']
    x0, span = 140, width - 160
    for i, (name, est, lo, hi) in enumerate(rows):
        y = 15 + 20 * i
        parts.append(f'<text x="4" y="{y + 4}" font-size="11">{html.escape(name)}</text>')
        if lo is not None and hi is not None:
            parts.append(
                f'<line x1="{x0 + lo * span:.1f}" x2="{x0 + hi * span:.1f}" '
                f'y1="{y}" y2="{y}" stroke="#555" stroke-width="2"/>'
            )
        if est is not None:
            parts.append(f'<circle cx="{x0 + est * span:.1f}" cy="{y}" r="4" fill="#1f77b4"/>')
    parts.append("</svg>")
    return "".join(parts)


def _group_rows(
    thing: dict[str, Any], rate: str
) -> list[tuple[str, float | None, float | None, float | None]]:
    if thing.get("status") != "ok":
        return []
    groups = thing["attributes"][thing["finest"]]["groups"]
    out = []
    for g, s in groups.items():
        r = s["rates"].get(rate)
        if r is not None:
            label = f"{g} (n={s['n']}{', insufficient' if s['insufficient'] else ''})"
            out.append((label, r["estimate"], r["ci"][0], r["ci"][1]))
    return out


def render_html(rep: dict[str, Any]) -> str:
    """The report as one HTML page; every value is escaped, nothing is fetched."""
    e = html.escape
    m = rep["metrics"]
    ae = m["auto_error"]
    over = rep["over_time"]
    target = ae.get("target")
    body = [
        f"<h1>Oversight report: {e(rep['project'])}</h1>",
        f"<p>Generated {e(rep['generated_at'])}. Items: {m['items']}; automation rate: "
        f"{_pct(m['automation_rate'])}; estimated error of automatic decisions: "
        f"{_pct(ae['estimate'])} (95% CI {_pct(ae['ci'][0])}–{_pct(ae['ci'][1])}, "
        f"n = {ae['n']}); target: {_pct(target)}.</p>",
        "<h2>Automation and audited error over time</h2>",
        _svg_lines(
            {
                "automation rate": [b["automation_rate"] for b in over],
                "audited error": [b["audit_error"]["estimate"] for b in over],
            },
            target,
        ),
        "<h2>Fairness by group</h2>",
    ]
    fair = rep["fairness"]
    if "note" in fair:
        body.append(f"<p>{e(fair['note'])}</p>")
    for thing, rate, what in (
        ("decisions", "selection_rate", f"final decisions: selection rate of {fair['positive']!r}"),
        ("model", "accuracy", "model: accuracy against human labels"),
        ("routing", "review_rate", "routing: review rate"),
    ):
        part = fair.get(thing)
        if part is None:
            continue
        body.append(f"<h3>{e(what)}</h3>")
        rows = _group_rows(part, rate)
        body.append(
            _svg_intervals(rows) if rows else f"<p>{e(str(part.get('reason', 'no data')))}</p>"
        )
    body.append(
        "<h2>Drift</h2><table><tr><th>window</th><th>n</th><th>status</th>"
        "<th>largest feature PSI</th><th>drifted</th></tr>"
    )
    for w in rep["drift"]["windows"]:
        body.append(
            f"<tr><td>last {w['size']}</td><td>{w['n']}</td><td>{e(w['status'])}</td>"
            f"<td>{_num(w['psi_max'])}</td><td>{e(', '.join(w['drifted']))}</td></tr>"
        )
    body.append("</table>")
    agree = m["agreement"]
    body.append(
        f"<h2>Reviewers</h2><p>Agreement of reviewers with the model: "
        f"{_pct(agree['estimate'])} (n = {agree['n']:g}).</p>"
    )
    body.append(
        "<h2>Model versions</h2><table><tr><th>version</th><th>status</th>"
        "<th>estimator</th><th>trained on</th><th>created</th></tr>"
    )
    for mv in rep["models"]:
        body.append(
            f"<tr><td>{mv['version']}</td><td>{e(mv['status'])}</td>"
            f"<td>{e(mv['estimator'])}</td><td>{mv['n_train']}</td>"
            f"<td>{e(mv['created_at'])}</td></tr>"
        )
    body.append("</table><h2>Alerts</h2><ul>")
    for a in rep["alerts"]:
        body.append(
            f"<li>{e(a['rule']['name'])} ({e(a['rule']['metric'])}): "
            f"{e(a['state'])}, value {_num(a['value'])}, n {a['n']}</li>"
        )
    body.append("</ul>")
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>loopwise report: {e(rep['project'])}</title><style>{style}</style>"
        f"</head><body>{''.join(body)}</body></html>"
    )


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


class ReportMixin(MetricsMixin):
    def report(self, actor: Principal, project: str) -> dict[str, Any]:
        """The report's figures (any signed-in role): metrics, automation and audited error
        over time, fairness, drift, model versions, alerts."""
        self.require_reader(actor)
        with self.reading() as conn:
            p = self.project_row(conn, project)
            models = conn.execute(
                select(
                    model_versions.c.version,
                    model_versions.c.status,
                    model_versions.c.estimator,
                    model_versions.c.n_train,
                    model_versions.c.created_at,
                )
                .where(model_versions.c.project_id == p.id)
                .order_by(model_versions.c.version)
            ).all()
            return {
                "project": p.name,
                "generated_at": utcnow().isoformat(),
                "metrics": self._metrics(conn, p),
                "over_time": _over_time(conn, p),
                "fairness": fairness_report(conn, p),
                "drift": drift_from_store(conn, p),
                "models": [
                    {
                        "version": r.version,
                        "status": r.status,
                        "estimator": r.estimator,
                        "n_train": r.n_train,
                        "created_at": r.created_at.isoformat(),
                    }
                    for r in models
                ],
                "alerts": alert_states_of(conn, p),
            }

    def report_html(self, actor: Principal, project: str) -> str:
        """The report as one self-contained HTML page."""
        return render_html(self.report(actor, project))
