"""Feedback: people's decisions train the next model version, which becomes champion.

Fitting happens outside any transaction: the training set is read in one, the model is
fitted with no lock held, and the new version is written in another.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, insert, select, update

from loopwise.domain import InputKind, JobState, ModelStatus, Role, in_holdout
from loopwise.errors import InvalidInput, LoopwiseError, NotFound
from loopwise.learning import TrainedModel, featurize, fit_model
from loopwise.routing import NoveltyDetector
from loopwise.service.base import Principal
from loopwise.service.calibration import CalibrationMixin
from loopwise.service.views import human_labeled
from loopwise.store.tables import decisions, items, jobs, model_versions, projects

log = logging.getLogger(__name__)


def _model_json(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "version": r.version,
        "status": r.status,
        "estimator": r.estimator,
        "n_train": r.n_train,
        "metrics": r.metrics,
        "created_at": r.created_at.isoformat(),
    }


NOVELTY_REFERENCE = 5000
"""Most training rows a novelty detector keeps as its reference (memory, speed)."""


def novelty_blob(model: TrainedModel, data: Sequence[Any], random_state: int | None
                 ) -> bytes | None:
    """A novelty detector for a tabular model, fitted on its training inputs (at most
    :data:`NOVELTY_REFERENCE` of them) and calibrated leave-one-out on the same; None for
    text models or fewer than 20 rows."""
    if model.kind != InputKind.TABULAR or len(data) < 20:
        return None
    X = np.asarray(featurize(model.kind, data, model.features), dtype=np.float64)
    if len(X) > NOVELTY_REFERENCE:
        X = X[np.random.default_rng(random_state).choice(len(X), NOVELTY_REFERENCE,
                                                         replace=False)]
    return NoveltyDetector(n_neighbors=5).fit(X).calibrate_leave_one_out().to_bytes()


class TrainingMixin(CalibrationMixin):
    def train(
        self,
        actor: Principal,
        project: str,
        *,
        estimator: Any | None = None,
        random_state: int | None = 0,
    ) -> dict[str, Any]:
        """Fit a model on every human-decided item and make it the champion.

        ``estimator`` (in-process only): any scikit-learn classifier with ``predict_proba``;
        the project's built-in model for its input kind otherwise. Raises InvalidInput when
        the labels cannot train a model (e.g. a single class).
        """
        self.require(actor, Role.SERVICE)
        with self.reading() as conn:
            p = self.project_row(conn, project)
            rows = conn.execute(
                select(items.c.data, decisions.c.label, items.c.id)
                .join(decisions, decisions.c.item_id == items.c.id)
                .where(
                    items.c.project_id == p.id,
                    decisions.c.current.is_(True),
                    human_labeled(),
                )
                .order_by(items.c.id)
            ).all()
        promise = p.policy.target_error is not None
        if promise:
            # The holdout fold certifies the gate: the model must never see it.
            rows = [r for r in rows if not in_holdout(r[2])]
        if not rows:
            raise InvalidInput(f"project {project!r} has no human-labeled items to train on")
        data = [r[0] for r in rows]
        y = np.array([r[1] for r in rows], dtype=np.int64)
        present = np.unique(y)
        if present.size < 2:
            raise InvalidInput(
                f"training needs human labels of at least two classes; project {project!r} "
                f"has only {p.labels[int(present[0])]!r} ({len(rows)} labels)"
            )
        model = fit_model(
            p.input_kind, data, y, len(p.labels), estimator=estimator, random_state=random_state
        )
        blob = model.to_bytes()
        novelty = novelty_blob(model, data, random_state)
        counts = np.bincount(y, minlength=len(p.labels))
        metrics = {"label_counts": {p.labels[i]: int(c) for i, c in enumerate(counts)}}
        with self.unit() as u:
            p = self.project_row(u.conn, project)
            if self.db.is_postgres:
                # One new version at a time per project (SQLite: the write lock does it).
                u.conn.execute(
                    select(projects.c.id).where(projects.c.id == p.id).with_for_update()
                )
                p = self.project_row(u.conn, project)
            version = 1 + (
                u.conn.execute(
                    select(func.max(model_versions.c.version)).where(
                        model_versions.c.project_id == p.id
                    )
                ).scalar()
                or 0
            )
            u.conn.execute(
                update(model_versions)
                .where(
                    model_versions.c.project_id == p.id,
                    model_versions.c.status == ModelStatus.CHAMPION,
                )
                .values(status=ModelStatus.RETIRED)
            )
            mid = u.conn.execute(
                insert(model_versions)
                .values(
                    project_id=p.id,
                    version=version,
                    status=ModelStatus.CHAMPION.value,
                    kind=model.kind,
                    estimator=type(model.estimator).__name__,
                    artifact=blob,
                    artifact_sha256=hashlib.sha256(blob).hexdigest(),
                    n_train=len(rows),
                    metrics=metrics,
                    created_at=u.now,
                    novelty=novelty,
                )
                .returning(model_versions.c.id)
            ).scalar_one()
            u.conn.execute(update(projects).where(projects.c.id == p.id).values(champion_id=mid))
            common = {
                "model_version_id": mid,
                "version": version,
                "n_train": len(rows),
                "artifact_sha256": hashlib.sha256(blob).hexdigest(),
            }
            u.emit("model.trained", p.name, actor, **common, metrics=metrics)
            u.emit("model.promoted", p.name, actor, **common, previous=p.champion_id)
            row = u.conn.execute(select(model_versions).where(model_versions.c.id == mid)).one()
        if promise:
            # A new champion scores differently: certify its threshold again.
            self.recalibrate(actor, project)
        return _model_json(row)

    def list_models(self, actor: Principal, project: str) -> list[dict[str, Any]]:
        self.require_reader(actor)
        with self.reading() as conn:
            p = self.project_row(conn, project)
            return [
                _model_json(r)
                for r in conn.execute(
                    select(model_versions)
                    .where(model_versions.c.project_id == p.id)
                    .order_by(model_versions.c.version)
                )
            ]

    def start_training(self, actor: Principal, project: str) -> dict[str, Any]:
        """Queue a training job; a project has at most one queued or running job, and
        asking again returns it."""
        self.require(actor, Role.SERVICE)
        with self.unit() as u:
            p = self.project_row(u.conn, project)
            # Serialise job creation per project (the project row is the lock on PostgreSQL).
            lock = select(projects.c.id).where(projects.c.id == p.id)
            if self.db.is_postgres:
                u.conn.execute(lock.with_for_update())
            active = u.conn.execute(
                select(jobs).where(
                    jobs.c.project_id == p.id, jobs.c.state.in_([JobState.QUEUED, JobState.RUNNING])
                )
            ).first()
            if active is not None:
                return self._job_json(active, p.name)
            jid = u.conn.execute(
                insert(jobs)
                .values(
                    project_id=p.id,
                    kind="train",
                    state=JobState.QUEUED.value,
                    requested_by=actor.name,
                    created_at=u.now,
                )
                .returning(jobs.c.id)
            ).scalar_one()
            u.emit("job.queued", p.name, actor, job_id=jid, kind="train")
            row = u.conn.execute(select(jobs).where(jobs.c.id == jid)).one()
            return self._job_json(row, p.name)

    def run_job(self, job_id: int) -> None:
        """Run a queued job (called from a background thread); failures are recorded."""
        with self.unit() as u:
            claimed = u.conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state == JobState.QUEUED)
                .values(state=JobState.RUNNING, started_at=u.now)
                .returning(jobs.c.project_id, jobs.c.requested_by)
            ).first()
            if claimed is None:
                return
            name = u.conn.execute(
                select(projects.c.name).where(projects.c.id == claimed.project_id)
            ).scalar_one()
        actor = Principal(id=None, name=f"job:{job_id}", role=Role.ADMIN)
        try:
            result: dict[str, Any] | None = self.train(actor, name)
            error = None
        except LoopwiseError as exc:
            result, error = None, str(exc)
        except Exception as exc:  # a job must record every failure, whatever it is
            log.exception("training job %s failed", job_id)
            result, error = None, f"{type(exc).__name__}: {exc}"
        with self.unit() as u:
            u.conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(
                    state=JobState.FAILED if error else JobState.DONE,
                    finished_at=u.now,
                    result=result and {"model_version": result["version"]},
                    error=error,
                )
            )
            u.emit("job.failed" if error else "job.done", name, actor, job_id=job_id, error=error)

    def recover_jobs(self, *, stale_after: timedelta = timedelta(hours=1)) -> list[int]:
        """At start-up: queued jobs to run again, and running jobs that have been running for
        longer than ``stale_after`` (their process died) marked failed."""
        with self.unit() as u:
            stale = u.conn.execute(
                update(jobs).where(jobs.c.state == JobState.RUNNING,
                                   jobs.c.started_at < u.now - stale_after)
                .values(state=JobState.FAILED, finished_at=u.now,
                        error="interrupted: the process running it stopped")
                .returning(jobs.c.id)
            ).scalars().all()
            for jid in stale:
                u.emit("job.failed", None, None, job_id=jid, error="interrupted")
            queued = u.conn.execute(
                select(jobs.c.id).where(jobs.c.state == JobState.QUEUED)
            ).scalars().all()
        return list(queued)

    def get_job(self, actor: Principal, job_id: int) -> dict[str, Any]:
        self.require(actor, Role.SERVICE)
        with self.reading() as conn:
            row = conn.execute(
                select(jobs, projects.c.name.label("project"))
                .join(projects, projects.c.id == jobs.c.project_id)
                .where(jobs.c.id == job_id)
            ).first()
        if row is None:
            raise NotFound(f"job {job_id} not found")
        return self._job_json(row, row.project)

    @staticmethod
    def _job_json(r: Any, project: str) -> dict[str, Any]:
        def iso(t: Any) -> str | None:
            return None if t is None else t.isoformat()

        return {
            "job_id": r.id,
            "project": project,
            "kind": r.kind,
            "state": r.state,
            "result": r.result,
            "error": r.error,
            "created_at": iso(r.created_at),
            "started_at": iso(r.started_at),
            "finished_at": iso(r.finished_at),
        }
