"""Drift from the store: how the recent items differ from what the champion learnt from.

* **Inputs** (tabular projects): the reference is the champion's training inputs — the
  items whose human decision existed when it was trained (outside the holdout in promise
  mode), the ``n_train`` most recent of them; without a champion, the project's first
  items. Per feature PSI (numeric) or Jensen–Shannon (categorical), see
  :class:`loopwise.oversight.DriftMonitor`.
* **Outputs**: the model's confidence, the predicted-label mix and the review rate of the
  first items routed under the champion (or the project's first items; at most half of
  them and ``max(WINDOWS)``) against the recent ones.

* **Reviewers** (``reviewers``): the answer mix (label distribution of the human answers,
  Jensen–Shannon) and their agreement with the model (an answer equal to the item's first
  prediction, the one the reviewer saw; a rate, PSI with Newcombe's difference). The
  reference is the answers given before the champion was trained (its ``REFERENCE_MAX``
  most recent), without a champion the first half of the answers (at most
  ``max(WINDOWS)``); the current windows are the most recent ``WINDOWS`` answers.

Current windows are the most recent ``WINDOWS`` items (answers) by count, each without the
reference's own. Fewer than 200 values on either side is ``insufficient``.

**Cheap metrics.** :meth:`MetricsMixin.metrics` shows :func:`oversight_summaries`: the
fairness and drift summaries cached in-process per database and project, reused while
nothing they read changed — the newest item, decision and review ids, the policy version
and the champion are the same — and for at most ``ttl`` seconds (:data:`SUMMARY_TTL`;
``Service.oversight_cache.ttl``, 0 turns the cache off). The full reports
(``fairness()``, ``drift()``) are always computed afresh.
"""

from __future__ import annotations

import copy
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, func, select

from loopwise.domain import InputKind, Route, in_holdout
from loopwise.oversight import DriftMonitor, feature_drift, rate_drift
from loopwise.oversight.drift import summarise
from loopwise.service.base import Principal, ProjectRow, ServiceBase
from loopwise.service.fairness import fairness_report, fairness_summary
from loopwise.service.views import first_prediction_id, human_labeled
from loopwise.store.db import Database
from loopwise.store.tables import decisions, items, model_versions, predictions, reviews, routes

WINDOWS = (500, 2000)
REFERENCE_MAX = 5000
"""Most reference items read (the most recent of the training set)."""
SUMMARY_TTL = 30.0
"""Seconds a cached fairness / drift summary of the metrics may be reused."""


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


def _answers(conn: Connection, p: ProjectRow, until: Any, newest: bool, limit: int) -> list[Any]:
    """Reviews' ``id``, answer ``label`` and the item's first prediction ``predicted``: the
    first ``limit`` (newest when ``newest``), only those given at or before ``until``."""
    q = (
        select(reviews.c.id, reviews.c.label, predictions.c.label.label("predicted"))
        .select_from(reviews)
        .join(items, items.c.id == reviews.c.item_id)
        .join(predictions, predictions.c.id == first_prediction_id(reviews.c.item_id))
        .where(items.c.project_id == p.id)
    )
    if until is not None:
        q = q.where(reviews.c.created_at <= until)
    order = reviews.c.id.desc() if newest else reviews.c.id
    return list(conn.execute(q.order_by(order).limit(limit)).all())


def reviewer_drift(
    conn: Connection, p: ProjectRow, trained: Any, version: int | None, windows: tuple[int, ...]
) -> dict[str, Any]:
    """Drift of the reviewers' behaviour: ``answers`` (their label mix, decided by JS) and
    ``agreement`` (share of answers equal to the model's first prediction, a rate) of each
    current window of answers against the reference answers (JSON-ready)."""
    if trained is not None:
        ref = _answers(conn, p, trained, newest=True, limit=REFERENCE_MAX)
        what = f"answers given before model version {version} was trained"
    else:
        n = conn.execute(
            select(func.count())
            .select_from(reviews)
            .join(items, items.c.id == reviews.c.item_id)
            .where(items.c.project_id == p.id)
        ).scalar_one()
        ref = _answers(conn, p, None, newest=False, limit=min(max(windows), n // 2))
        what = "first half of the answers (no champion model)"
    recent = _answers(conn, p, None, newest=True, limit=max(windows))
    ref_ids = {r.id for r in ref}
    ans_r = np.array([p.labels[r.label] for r in ref], dtype=object)
    agree_r = sum(r.label == r.predicted for r in ref)
    out: dict[str, Any] = {"reference": {"answers": what, "n": len(ref)}, "windows": []}
    for size in windows:
        cur = [r for r in recent[:size] if r.id not in ref_ids]
        checks = {}
        if ref and cur:
            checks["answers"] = feature_drift(
                ans_r,
                np.array([p.labels[r.label] for r in cur], dtype=object),
                name="answers",
                categorical=True,
            )
            checks["agreement"] = rate_drift(
                agree_r,
                len(ref),
                sum(r.label == r.predicted for r in cur),
                len(cur),
                name="agreement",
            )
        rep = summarise(checks)
        out["windows"].append({"size": size, "n": len(cur), **rep.to_dict()})
    return out


def drift_from_store(
    conn: Connection, p: ProjectRow, windows: tuple[int, ...] = WINDOWS
) -> dict[str, Any]:
    """Drift of each current window from the reference (JSON-ready)."""
    since, version = None, None
    if p.champion_id is not None:
        since, version = conn.execute(
            select(model_versions.c.created_at, model_versions.c.version).where(
                model_versions.c.id == p.champion_id
            )
        ).one()
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
    out["reviewers"] = reviewer_drift(conn, p, since, version, windows)
    return out


def drift_summary(report: dict[str, Any]) -> dict[str, Any]:
    """What the metrics show of drift: per window its status, drifted checks, the largest
    feature PSI / JS and the output checks' PSI; per window of answers the reviewers'
    status, answer-mix JS and agreement PSI and difference."""
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
        "reviewers": {
            "reference": report["reviewers"]["reference"],
            "windows": [
                {
                    "size": w["size"],
                    "n": w["n"],
                    "status": w["status"],
                    "drifted": w["drifted"],
                    **{
                        f"{c}_{stat}": w["features"][c][stat]
                        for c, stat in (("answers", "js"), ("agreement", "psi"))
                        if c in w["features"]
                    },
                    "agreement_difference": w["features"].get("agreement", {}).get("difference"),
                }
                for w in report["reviewers"]["windows"]
            ],
        },
    }


class SummaryCache:
    """The metrics' fairness and drift summaries of one database, per project: an entry
    is reused while its key (what the summaries read) is unchanged and it is younger than
    ``ttl`` seconds. Thread-safe; ``computed`` counts the summaries computed."""

    def __init__(self, ttl: float = SUMMARY_TTL) -> None:
        self.ttl = ttl
        self.computed = 0
        self._entries: dict[int, tuple[tuple[Any, ...], float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(
        self, project_id: int, key: tuple[Any, ...], compute: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """The cached value of ``project_id`` when fresh and of the same ``key``, else
        ``compute()`` (stored). A copy: callers may change it."""
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(project_id)
        if hit is not None and hit[0] == key and now - hit[1] < self.ttl:
            return copy.deepcopy(hit[2])
        value = compute()
        with self._lock:
            self.computed += 1
            self._entries[project_id] = (key, now, value)
        return copy.deepcopy(value)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()


_caches: weakref.WeakKeyDictionary[Database, SummaryCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def summary_cache(db: Database) -> SummaryCache:
    """The :class:`SummaryCache` of ``db`` (made on first use, dropped with ``db``)."""
    with _caches_lock:
        cache = _caches.get(db)
        if cache is None:
            cache = _caches[db] = SummaryCache()
        return cache


def _newest(conn: Connection, column: Any, *where: Any) -> Any:
    return conn.execute(select(column).where(*where).order_by(column.desc()).limit(1)).scalar()


def summary_key(conn: Connection, p: ProjectRow) -> tuple[Any, ...]:
    """What the summaries read: the newest item, decision and review of the project, its
    policy version and champion (each lookup walks a primary key from its newest end)."""
    return (
        _newest(conn, items.c.id, items.c.project_id == p.id),
        _newest(conn, decisions.c.id, decisions.c.project_id == p.id),
        conn.execute(
            select(reviews.c.id)
            .join(items, items.c.id == reviews.c.item_id)
            .where(items.c.project_id == p.id)
            .order_by(reviews.c.id.desc())
            .limit(1)
        ).scalar(),
        p.policy_version,
        p.champion_id,
    )


def oversight_summaries(db: Database, conn: Connection, p: ProjectRow) -> dict[str, Any]:
    """The metrics' ``fairness`` and ``drift`` summaries, from ``db``'s cache when fresh."""

    def compute() -> dict[str, Any]:
        return {
            "fairness": fairness_summary(fairness_report(conn, p)),
            "drift": drift_summary(drift_from_store(conn, p)),
        }

    return summary_cache(db).get(p.id, summary_key(conn, p), compute)


class DriftMixin(ServiceBase):
    @property
    def oversight_cache(self) -> SummaryCache:
        """The cache of the metrics' fairness and drift summaries (set its ``ttl``)."""
        return summary_cache(self.db)

    def drift(self, actor: Principal, project: str) -> dict[str, Any]:
        """Drift of the recent items from the champion's training data, per feature, for
        the model's outputs and for the reviewers' answers (any signed-in role)."""
        self.require_reader(actor)
        with self.reading() as conn:
            return drift_from_store(conn, self.project_row(conn, project))
