"""The Python library: ``Loop`` runs the loop in-process on a database; ``Project`` is a
handle with the same verbs whether it comes from a ``Loop`` or an HTTP ``Client``.

>>> import tempfile, os
>>> loop = Loop(os.path.join(tempfile.mkdtemp(), "doc.db"))
>>> triage = loop.create_project("triage", labels=["benign", "malignant"])
>>> [d["route"] for d in triage.submit([{"data": {"x": 1}}], proba=[[0.99, 0.01]])]
['auto']
>>> loop.close()
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from loopwise.config import Settings
from loopwise.errors import InvalidInput
from loopwise.service import LOCAL, Principal, Service
from loopwise.store.db import Database


class Backend(Protocol):
    """What a :class:`Project` needs from its loop, in-process or over HTTP."""

    def _project_info(self, name: str) -> dict[str, Any]: ...
    def _submit(self, name: str, records: list[dict[str, Any]],
                proba: list[list[float]] | None) -> list[dict[str, Any]]: ...
    def _item(self, name: str, item_id: int) -> dict[str, Any]: ...
    def _claim(self, name: str, n: int) -> list[dict[str, Any]]: ...
    def _metrics(self, name: str) -> dict[str, Any]: ...
    def _train(self, name: str, estimator: Any | None) -> dict[str, Any]: ...
    def _models(self, name: str) -> list[dict[str, Any]]: ...
    def _update_policy(self, name: str, changes: dict[str, Any]) -> dict[str, Any]: ...
    def _override(self, name: str, item_id: int, label: str, reason: str
                  ) -> dict[str, Any]: ...
    def _export(self, name: str, format: str, decided_only: bool) -> Iterator[str]: ...
    def _query_pool(self, name: str, n: int, strategy: str | None) -> dict[str, Any]: ...
    def _rollback(self, name: str, version: int) -> dict[str, Any]: ...
    def _mark_gold(self, name: str, marks: list[dict[str, Any]]) -> dict[str, Any]: ...
    def _reviewers(self, name: str) -> list[dict[str, Any]]: ...
    def _resume_reviewer(self, name: str, user: str, reason: str) -> dict[str, Any]: ...
    def _fairness(self, name: str, positive: str | None) -> dict[str, Any]: ...
    def _drift(self, name: str) -> dict[str, Any]: ...
    def _alerts(self, name: str) -> list[dict[str, Any]]: ...
    def _report(self, name: str, format: str) -> dict[str, Any] | str: ...


def _plain(value: Any) -> Any:
    """numpy scalars to Python, NaN to None: what JSON can carry."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def as_records(records: Any, sensitive: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Records from a list of dicts, or from a DataFrame (an ``external_id`` column becomes
    the external id, the project's sensitive attributes go to ``meta``, the rest is data).
    """
    if hasattr(records, "to_dict") and hasattr(records, "columns"):
        out = []
        for row in records.to_dict("records"):
            row = {str(k): _plain(v) for k, v in row.items()}
            ext = row.pop("external_id", None)
            meta = {k: row.pop(k) for k in list(row) if k in sensitive}
            rec: dict[str, Any] = {"data": row, "meta": meta}
            if ext is not None:
                rec["external_id"] = str(ext)
            out.append(rec)
        return out
    if isinstance(records, Mapping) or not isinstance(records, Iterable):
        raise TypeError("records must be a list of dicts or a DataFrame")
    return [dict(r) if isinstance(r, Mapping) else r for r in records]


class Project:
    """A project handle: the loop's verbs for one project (same from Loop and Client)."""

    def __init__(self, backend: Backend, name: str) -> None:
        self._backend = backend
        self.name = name

    def __repr__(self) -> str:
        return f"Project({self.name!r})"

    @property
    def info(self) -> dict[str, Any]:
        """Labels, input kind, policy and champion model, read now."""
        return self._backend._project_info(self.name)

    def submit(self, records: Any, proba: npt.ArrayLike | None = None) -> list[dict[str, Any]]:
        """Submit items (list of dicts or a DataFrame) with optional (n, k) probabilities;
        returns one decision per item: ``item_id, external_id, route, reason, label,
        confidence``."""
        sensitive = self.info["sensitive"] if hasattr(records, "columns") else ()
        recs = as_records(records, sensitive)
        arr = None if proba is None else np.asarray(proba, dtype=np.float64).tolist()
        return self._backend._submit(self.name, recs, arr)

    def item(self, item_id: int) -> dict[str, Any]:
        return self._backend._item(self.name, item_id)

    def claim(self, n: int = 1) -> list[dict[str, Any]]:
        """Claim up to n tasks for this loop's user; [] when the queue is empty."""
        return self._backend._claim(self.name, n)

    def metrics(self) -> dict[str, Any]:
        return self._backend._metrics(self.name)

    def train(self, estimator: Any | None = None) -> dict[str, Any]:
        """Train on the human decisions outside the holdout; the new version becomes
        champion if the promotion gate lets it (else its status is ``rejected``)."""
        return self._backend._train(self.name, estimator)

    def models(self) -> list[dict[str, Any]]:
        return self._backend._models(self.name)

    def query_pool(self, n: int, strategy: str | None = None) -> dict[str, Any]:
        """Send the ``n`` most informative pool items to people (review tasks, reason
        ``pool_query``) under ``strategy`` (default the policy's)."""
        return self._backend._query_pool(self.name, n, strategy)

    def rollback(self, version: int) -> dict[str, Any]:
        """Retire champion ``version``; the champion it replaced is champion again (admin)."""
        return self._backend._rollback(self.name, version)

    def update_policy(self, **changes: Any) -> dict[str, Any]:
        """Change policy fields (admin): ``project.update_policy(stopped=True, reason=...)``;
        ``reason`` (not a policy field) is required to stop or resume."""
        return self._backend._update_policy(self.name, changes)

    def override(self, item_id: int, label: str, *, reason: str) -> dict[str, Any]:
        """Replace an item's decision (admin or expert), with a mandatory reason."""
        return self._backend._override(self.name, item_id, label, reason)

    def export(self, format: str = "jsonl", *, decided_only: bool = False) -> str:
        """Every item with prediction, route, decision and reviews (jsonl, csv, label-studio);
        ``decided_only``: only the items that have a decision."""
        return "".join(self._backend._export(self.name, format, decided_only))

    def mark_gold(self, marks: list[dict[str, Any]]) -> dict[str, Any]:
        """Mark items with known labels (admin): ``[{"item_id", "label"}]``."""
        return self._backend._mark_gold(self.name, marks)

    def reviewers(self) -> list[dict[str, Any]]:
        """Each reviewer's scored answers, accuracy (interval), quality and pause state."""
        return self._backend._reviewers(self.name)

    def resume_reviewer(self, user: str, reason: str) -> dict[str, Any]:
        """Let a paused reviewer claim again (admin)."""
        return self._backend._resume_reviewer(self.name, user, reason)

    def fairness(self, positive: str | None = None) -> dict[str, Any]:
        """Per-group rates with intervals and disparities of the model, the reviewers, the
        final decisions and the routing (``positive``: the label counted as positive)."""
        return self._backend._fairness(self.name, positive)

    def drift(self) -> dict[str, Any]:
        """Recent windows against the champion's training inputs, decided on effect sizes."""
        return self._backend._drift(self.name)

    def alerts(self) -> list[dict[str, Any]]:
        """Each alert rule's state (ok, suspected, confirmed, insufficient) and history."""
        return self._backend._alerts(self.name)

    def report(self, format: str = "html") -> dict[str, Any] | str:
        """The oversight report: one self-contained HTML page, or (``"json"``) its figures."""
        if format not in ("html", "json"):
            raise InvalidInput(f"format: must be html or json, got {format!r}")
        return self._backend._report(self.name, format)


class Loop:
    """The loop in this process, on a database URL (SQLite file or PostgreSQL).

    Acts as the local admin; ``loop.as_user("alice")`` acts as a stored user (to claim and
    answer tasks). The schema is migrated on open.
    """

    def __init__(self, url: str | None = None, *, settings: Settings | None = None,
                 random_state: int | None = None) -> None:
        if settings is None:
            settings = Settings() if url is None else Settings(database_url=_url(url))
        self.settings = settings
        db = Database(settings.database_url, pool_size=settings.pool_size,
                      sqlite_synchronous=settings.sqlite_synchronous)
        db.migrate()
        self.service = Service(db, settings)
        if random_state is not None:
            self.service.seed(random_state)
        self.actor: Principal = LOCAL

    def as_user(self, name: str) -> Loop:
        """The same loop acting as the stored user ``name``."""
        other = object.__new__(Loop)
        other.settings, other.service = self.settings, self.service
        other.actor = self.service.principal(name)
        return other

    def close(self) -> None:
        """Finish background work (webhook deliveries) and close the database."""
        self.service.close()

    def __enter__(self) -> Loop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- projects and people
    def create_project(self, name: str, *, labels: list[str], input: str = "tabular",
                       sensitive: list[str] | None = None,
                       policy: dict[str, Any] | None = None) -> Project:
        self.service.create_project(self.actor, name, labels=labels, input=input,
                                    sensitive=sensitive, policy=policy)
        return Project(self, name)

    def project(self, name: str) -> Project:
        """A handle on an existing project (NotFound if there is none)."""
        self.service.get_project(self.actor, name)
        return Project(self, name)

    def projects(self) -> list[dict[str, Any]]:
        return self.service.list_projects(self.actor)

    def create_user(self, name: str, role: str = "reviewer") -> dict[str, Any]:
        """A new user; the reply's token is shown only this once."""
        return self.service.create_user(self.actor, name, role)

    # -- tasks
    def submit_task(self, task_id: int, label: str, *, comment: str | None = None,
                    seconds: float | None = None) -> dict[str, Any]:
        return self.service.submit_review(self.actor, task_id, label, comment=comment,
                                          seconds=seconds)

    def release(self, task_id: int) -> dict[str, Any]:
        return self.service.release(self.actor, task_id)

    def escalate(self, task_id: int, comment: str | None = None) -> dict[str, Any]:
        return self.service.escalate(self.actor, task_id, comment)

    # -- audit and jobs
    def audit_events(self, **filters: Any) -> list[dict[str, Any]]:
        return self.service.list_events(self.actor, **filters)

    def verify_audit(self) -> dict[str, Any]:
        return self.service.verify_audit_json(self.actor)

    def export_audit(self) -> Iterator[str]:
        """The audit trail as JSONL lines (admin), verifiable without the database."""
        return self.service.export_audit(self.actor)

    def job(self, job_id: int) -> dict[str, Any]:
        return self.service.get_job(self.actor, job_id)

    # -- Backend
    def _project_info(self, name: str) -> dict[str, Any]:
        return self.service.get_project(self.actor, name)

    def _submit(self, name: str, records: list[dict[str, Any]],
                proba: list[list[float]] | None) -> list[dict[str, Any]]:
        return self.service.submit(self.actor, name, records, proba)

    def _item(self, name: str, item_id: int) -> dict[str, Any]:
        return self.service.get_item(self.actor, name, item_id)

    def _claim(self, name: str, n: int) -> list[dict[str, Any]]:
        return self.service.claim(self.actor, name, n)

    def _metrics(self, name: str) -> dict[str, Any]:
        return self.service.metrics(self.actor, name)

    def _train(self, name: str, estimator: Any | None) -> dict[str, Any]:
        return self.service.train(self.actor, name, estimator=estimator)

    def _models(self, name: str) -> list[dict[str, Any]]:
        return self.service.list_models(self.actor, name)

    def _update_policy(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self.service.update_policy(self.actor, name, changes)

    def _override(self, name: str, item_id: int, label: str, reason: str) -> dict[str, Any]:
        return self.service.override(self.actor, name, item_id, label, reason)

    def _export(self, name: str, format: str, decided_only: bool) -> Iterator[str]:
        return self.service.export(self.actor, name, format, decided_only=decided_only)

    def _query_pool(self, name: str, n: int, strategy: str | None) -> dict[str, Any]:
        return self.service.query_pool(self.actor, name, n, strategy=strategy)

    def _rollback(self, name: str, version: int) -> dict[str, Any]:
        return self.service.rollback(self.actor, name, version)

    def _mark_gold(self, name: str, marks: list[dict[str, Any]]) -> dict[str, Any]:
        return self.service.mark_gold(self.actor, name, marks)

    def _reviewers(self, name: str) -> list[dict[str, Any]]:
        return self.service.reviewers(self.actor, name)

    def _resume_reviewer(self, name: str, user: str, reason: str) -> dict[str, Any]:
        return self.service.resume_reviewer(self.actor, name, user, reason)

    def _fairness(self, name: str, positive: str | None) -> dict[str, Any]:
        return self.service.fairness(self.actor, name, positive)

    def _drift(self, name: str) -> dict[str, Any]:
        return self.service.drift(self.actor, name)

    def _alerts(self, name: str) -> list[dict[str, Any]]:
        return self.service.alerts(self.actor, name)

    def _report(self, name: str, format: str) -> dict[str, Any] | str:
        if format == "json":
            return self.service.report(self.actor, name)
        return self.service.report_html(self.actor, name)


def _url(url: str) -> str:
    """A bare file path means a SQLite file."""
    return url if "://" in url else f"sqlite:///{url}"

