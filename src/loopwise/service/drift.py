"""Drift from the store: how the recent items differ from what the champion learnt from.

* **Inputs** (tabular projects): the reference is the champion's training inputs — the
  items whose human decision existed when it was trained (outside the holdout in promise
  mode), the ``n_train`` most recent of them; without a champion, the project's first
  items. Per feature PSI (numeric) or Jensen–Shannon (categorical), see
  :class:`loopwise.oversight.DriftMonitor`.
* **Outputs**: the model's confidence, the predicted-label mix and the review rate of the
  first items routed under the champion (or the project's first items; at most half of
  them and ``max(WINDOWS)``) against the recent ones.

Current windows are the most recent ``WINDOWS`` items by count, each without the
reference's own items. Fewer than 200 values on either side is ``insufficient``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, func, select

from loopwise.domain import InputKind, Route, in_holdout
from loopwise.oversight import DriftMonitor, feature_drift, rate_drift
from loopwise.oversight.drift import summarise
from loopwise.service.base import Principal, ProjectRow, ServiceBase
from loopwise.service.views import first_prediction_id, human_labeled
from loopwise.store.tables import decisions, items, model_versions, predictions, routes

WINDOWS = (500, 2000)
REFERENCE_MAX = 5000
"""Most reference items read (the most recent of the training set)."""


def _reference_inputs(conn: Connection, p: ProjectRow) -> tuple[list[Any], str]:
    """The data of the reference items, and what they are."""
    if p.champion_id is None:
        rows = conn.execute(
            select(items.c.data)
            .where(items.c.project_id == p.id)
            .order_by(items.c.id)
            .limit(REFERENCE_MAX)
        ).all()
        return [r.data for r in rows], "first items (no champion model)"
    m = conn.execute(
        select(
            model_versions.c.version, model_versions.c.n_train, model_versions.c.created_at
        ).where(model_versions.c.id == p.champion_id)
    ).one()
    rows = conn.execute(
        select(items.c.id, items.c.data)
        .join(decisions, decisions.c.item_id == items.c.id)
        .where(
            items.c.project_id == p.id,
            decisions.c.current.is_(True),
            human_labeled(),
            decisions.c.created_at <= m.created_at,
        )
        .order_by(items.c.id.desc())
        .limit(REFERENCE_MAX * 2)
    ).all()
    if p.policy.target_error is not None:
        rows = [r for r in rows if not in_holdout(r.id)]
    rows = rows[: min(m.n_train, REFERENCE_MAX)]
    return [r.data for r in rows], f"training inputs of model version {m.version}"


def _columns(data: list[Any], names: list[str]) -> dict[str, Any]:
    """Feature name → (n,) values: float when every value is a number, bool or null
    (null → nan), else category strings."""
    out: dict[str, Any] = {}
    for f in names:
        vals = [d.get(f) if isinstance(d, dict) else None for d in data]
        if all(v is None or isinstance(v, int | float) for v in vals):
            out[f] = np.array([np.nan if v is None else float(v) for v in vals])
        else:
            out[f] = np.array(["(missing)" if v is None else str(v) for v in vals], dtype=object)
    return out


def _outputs(conn: Connection, p: ProjectRow, since: Any, newest: bool, limit: int) -> list[Any]:
    """Items' ``id``, first prediction ``label`` and ``confidence``, initial ``route``: the
    first ``limit`` created at or after ``since``, or the newest ``limit``."""
    q = (
        select(
            items.c.id, items.c.data, predictions.c.label, predictions.c.confidence, routes.c.route
        )
        .select_from(items)
        .join(routes, and_(routes.c.item_id == items.c.id, routes.c.initial.is_(True)))
        .join(predictions, predictions.c.id == first_prediction_id(items.c.id))
        .where(items.c.project_id == p.id)
    )
    if since is not None:
        q = q.where(items.c.created_at >= since)
    order = items.c.id.desc() if newest else items.c.id
    return list(conn.execute(q.order_by(order).limit(limit)).all())


def drift_from_store(
    conn: Connection, p: ProjectRow, windows: tuple[int, ...] = WINDOWS
) -> dict[str, Any]:
    """Drift of each current window from the reference (JSON-ready)."""
    since = None
    if p.champion_id is not None:
        since = conn.execute(
            select(model_versions.c.created_at).where(model_versions.c.id == p.champion_id)
        ).scalar_one()
    q = select(func.count()).where(items.c.project_id == p.id)
    n_since = conn.execute(
        q if since is None else q.where(items.c.created_at >= since)
    ).scalar_one()
    # The first half of the items under the champion at most: the rest is current.
    ref_out = _outputs(conn, p, since, newest=False, limit=min(max(windows), n_since // 2))
    recent = _outputs(conn, p, None, newest=True, limit=max(windows))
    ref_ids = {r.id for r in ref_out}
    monitor: DriftMonitor | None = None
    ref_data: list[Any] = []
    ref_what = "no inputs to compare (not a tabular project)"
    features: list[str] = []
    if p.input_kind == InputKind.TABULAR.value:
        ref_data, ref_what = _reference_inputs(conn, p)
        features = sorted({k for d in ref_data if isinstance(d, dict) for k in d})
        if features:
            cols = _columns(ref_data, features)
            cats = [f for f, v in cols.items() if v.dtype == object]
            monitor = DriftMonitor(categorical=cats).fit(cols)
    conf_r = np.array([r.confidence for r in ref_out], dtype=np.float64)
    lab_r = np.array([p.labels[r.label] for r in ref_out], dtype=object)
    rev_r = sum(r.route != Route.AUTO.value for r in ref_out)
    out: dict[str, Any] = {
        "project": p.name,
        "reference": {
            "inputs": ref_what,
            "n_inputs": len(ref_data),
            "outputs": "first items under the champion"
            if since is not None
            else "first items of the project",
            "n_outputs": len(ref_out),
        },
        "windows": [],
    }
    for size in windows:
        cur = [r for r in recent[:size] if r.id not in ref_ids]
        checks = {}
        if monitor is not None and cur:
            cols = _columns([r.data for r in cur], features)
            cols = {
                f: v if f not in monitor.categorical else v.astype(str).astype(object)
                for f, v in cols.items()
            }
            checks.update(monitor.report(cols).features)
        if ref_out and cur:
            checks["confidence"] = feature_drift(
                conf_r, np.array([r.confidence for r in cur]), name="confidence"
            )
            checks["predicted_label"] = feature_drift(
                lab_r,
                np.array([p.labels[r.label] for r in cur], dtype=object),
                name="predicted_label",
                categorical=True,
            )
            checks["review_rate"] = rate_drift(
                rev_r,
                len(ref_out),
                sum(r.route != Route.AUTO.value for r in cur),
                len(cur),
                name="review_rate",
            )
        rep = summarise(checks)
        feats = [f for n, f in rep.features.items() if n in features]
        decided = [f for f in feats if f.status != "insufficient"]
        out["windows"].append(
            {
                "size": size,
                "n": len(cur),
                **rep.to_dict(),
                "psi_max": max((f.psi for f in decided), default=None),
                "js_max": max((f.js for f in decided), default=None),
            }
        )
    return out


def drift_summary(report: dict[str, Any]) -> dict[str, Any]:
    """What the metrics show of drift: per window its status, drifted checks, the largest
    feature PSI / JS and the output checks' PSI."""
    return {
        "reference": report["reference"],
        "windows": [
            {
                "size": w["size"],
                "n": w["n"],
                "status": w["status"],
                "drifted": w["drifted"],
                "psi_max": w["psi_max"],
                "js_max": w["js_max"],
                **{
                    f"{c}_psi": w["features"][c]["psi"]
                    for c in ("confidence", "predicted_label", "review_rate")
                    if c in w["features"]
                },
            }
            for w in report["windows"]
        ],
    }


class DriftMixin(ServiceBase):
    def drift(self, actor: Principal, project: str) -> dict[str, Any]:
        """Drift of the recent items from the champion's training data, per feature and
        for the model's outputs (any signed-in role)."""
        self.require_reader(actor)
        with self.reading() as conn:
            return drift_from_store(conn, self.project_row(conn, project))
