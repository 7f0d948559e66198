"""Feedback: people's decisions train the next model version, which becomes champion if
the promotion gate (:mod:`loopwise.service.promotion`) lets it.

Fitting happens outside any transaction: the training set is read in one, the model is
fitted with no lock held, and the new version is written in another.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, func, insert, select, update

from loopwise.domain import InputKind, JobState, ModelStatus, Role, in_holdout
from loopwise.errors import Conflict, InvalidInput, LoopwiseError, NotFound
from loopwise.learning import TrainedModel, featurize, fit_model
from loopwise.routing import NoveltyDetector
from loopwise.service.base import Principal, ProjectRow, Unit
from loopwise.service.calibration import SYSTEM, CalibrationMixin
from loopwise.service.promotion import Verdict, decide
from loopwise.service.review import ReviewMixin
from loopwise.service.views import human_labeled
from loopwise.store.tables import decisions, items, jobs, model_versions, projects, routes

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


def novelty_blob(
    model: TrainedModel, data: Sequence[Any], random_state: int | None
) -> bytes | None:
    """A novelty detector for a tabular model, fitted on its training inputs (at most
    :data:`NOVELTY_REFERENCE` of them) and calibrated leave-one-out on the same; None for
    text models or fewer than 20 rows."""
    if model.kind != InputKind.TABULAR or len(data) < 20:
        return None
    X = np.asarray(featurize(model.kind, data, model.features), dtype=np.float64)
    if len(X) > NOVELTY_REFERENCE:
        X = X[np.random.default_rng(random_state).choice(len(X), NOVELTY_REFERENCE, replace=False)]
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
        """Fit a challenger on the human-decided items outside the holdout; the promotion
        gate (:mod:`loopwise.service.promotion`) makes it the champion or rejects it.

        ``estimator`` (in-process only): any scikit-learn classifier with ``predict_proba``;
        the project's built-in model for its input kind otherwise. Returns the new version
        (``status`` champion or rejected; ``metrics.promotion`` says why). Raises
        InvalidInput when the labels cannot train a model (e.g. a single class); the
        champion is then untouched.
        """
        self.require(actor, Role.SERVICE)
        with self.reading() as conn:
            p = self.project_row(conn, project)
            rows = conn.execute(
                select(items.c.id, items.c.data, items.c.meta, decisions.c.label,
                       routes.c.inclusion_prob)
                .join(decisions, decisions.c.item_id == items.c.id)
                .outerjoin(routes, (routes.c.item_id == items.c.id) & routes.c.initial)
                .where(
                    items.c.project_id == p.id,
                    decisions.c.current.is_(True),
                    human_labeled(),
                )
                .order_by(items.c.id)
            ).all()
            champion = None if p.champion_id is None else self.load_model(conn, p.champion_id)
            read_champion, n_labels = p.champion_id, len(rows)
        # The holdout compares models and certifies the gate: no model ever trains on it.
        holdout = [r for r in rows if in_holdout(r.id)]
        rows = [r for r in rows if not in_holdout(r.id)]
        if not rows:
            raise InvalidInput(
                f"project {project!r} has no human-labeled items outside the holdout to train on"
                f" ({n_labels} labels, all held out)"
            )
        data = [r.data for r in rows]
        y = np.array([r.label for r in rows], dtype=np.int64)
        present = np.unique(y)
        if present.size < 2:
            raise InvalidInput(
                f"training needs human labels of at least two classes outside the holdout "
                f"(about 30% of items, kept to compare models and certify the gate); project "
                f"{project!r} has only {p.labels[int(present[0])]!r} there ({len(rows)} of "
                f"{n_labels} labels): label more items"
            )
        model = fit_model(
            p.input_kind, data, y, len(p.labels), estimator=estimator, random_state=random_state
        )
        verdict = self._promotion_verdict(p, model, champion, holdout)
        blob = model.to_bytes()
        novelty = novelty_blob(model, data, random_state) if verdict.promote else None
        counts = np.bincount(y, minlength=len(p.labels))
        metrics = {
            "label_counts": {p.labels[i]: int(c) for i, c in enumerate(counts)},
            "human_labels_total": n_labels,
            "holdout_accuracy": verdict.report["challenger"]["accuracy"],
            "promotion": {"promoted": verdict.promote, "reason": verdict.reason, **verdict.report},
        }
        with self.unit() as u:
            p = self.project_row(u.conn, project)
            if self.db.is_postgres:
                # One new version at a time per project (SQLite: the write lock does it).
                u.conn.execute(select(projects.c.id).where(projects.c.id == p.id).with_for_update())
                p = self.project_row(u.conn, project)
            promote = verdict.promote and p.champion_id == read_champion
            if verdict.promote and not promote:
                metrics["promotion"].update(
                    promoted=False, reason="the champion changed while this model trained"
                )
            metrics["replaced"] = p.champion_id if promote else None
            mid, version = self._write_version(
                u, p, model, blob, novelty, len(rows), metrics, promote
            )
            common = {
                "model_version_id": mid,
                "version": version,
                "n_train": len(rows),
                "artifact_sha256": hashlib.sha256(blob).hexdigest(),
            }
            u.emit("model.trained", p.name, actor, **common, metrics=metrics)
            if promote:
                u.emit(
                    "model.promoted",
                    p.name,
                    actor,
                    **common,
                    previous=p.champion_id,
                    reason=metrics["promotion"]["reason"],
                )
            else:
                u.emit(
                    "model.rejected", p.name, actor, **common, reason=metrics["promotion"]["reason"]
                )
            row = u.conn.execute(select(model_versions).where(model_versions.c.id == mid)).one()
        if promote and p.policy.target_error is not None:
            # A new champion scores differently: certify its threshold again.
            self.recalibrate(actor, project)
        return _model_json(row)

    def _promotion_verdict(
        self,
        p: ProjectRow,
        model: TrainedModel,
        champion: TrainedModel | None,
        holdout: Sequence[Any],
    ) -> Verdict:
        """The promotion gate on the holdout rows (id, data, meta, label)."""
        y = np.array([r.label for r in holdout], dtype=np.int64)
        data = [r.data for r in holdout]

        def predict(m: TrainedModel) -> npt.NDArray[np.int64]:
            if not data:
                return np.zeros(0, dtype=np.int64)
            return np.asarray(m.predict_proba(data).argmax(axis=1), dtype=np.int64)

        verdict = decide(
            y,
            challenger=predict(model),
            champion=None if champion is None else predict(champion),
            meta=[r.meta or {} for r in holdout],
            sensitive=p.sensitive,
            tolerance=p.policy.fairness_tolerance,
            # a label's weight: 1 / the probability that the loop asked a person for it
            weights=np.array([1.0 / max(r.inclusion_prob or 1.0, 1e-9) for r in holdout]),
        )
        verdict.report["champion_version_id"] = p.champion_id
        return verdict

    def _write_version(
        self,
        u: Unit,
        p: ProjectRow,
        model: TrainedModel,
        blob: bytes,
        novelty: bytes | None,
        n_train: int,
        metrics: dict[str, Any],
        promote: bool,
    ) -> tuple[int, int]:
        """Insert the new version (champion, the old one retired; or rejected)."""
        version = 1 + (
            u.conn.execute(
                select(func.max(model_versions.c.version)).where(
                    model_versions.c.project_id == p.id
                )
            ).scalar()
            or 0
        )
        if promote:
            u.conn.execute(
                update(model_versions)
                .where(
                    model_versions.c.project_id == p.id,
                    model_versions.c.status == ModelStatus.CHAMPION,
                )
                .values(status=ModelStatus.RETIRED)
            )
        mid: int = u.conn.execute(
            insert(model_versions)
            .values(
                project_id=p.id,
                version=version,
                status=(ModelStatus.CHAMPION if promote else ModelStatus.REJECTED).value,
                kind=model.kind,
                estimator=type(model.estimator).__name__,
                artifact=blob,
                artifact_sha256=hashlib.sha256(blob).hexdigest(),
                n_train=n_train,
                metrics=metrics,
                created_at=u.now,
                novelty=novelty,
            )
            .returning(model_versions.c.id)
        ).scalar_one()
        if promote:
            u.conn.execute(update(projects).where(projects.c.id == p.id).values(champion_id=mid))
        return mid, version

    def rollback(self, actor: Principal, project: str, version: int) -> dict[str, Any]:
        """Retire champion ``version`` and make the champion it replaced the champion again
        (admin); an event ``model.rolled_back``; the gate recalibrates (promise mode).
        NotFound for an unknown version; Conflict when it is not the champion or replaced
        none."""
        self.require(actor)
        with self.unit() as u:
            p = self.project_row(u.conn, project)
            if self.db.is_postgres:
                u.conn.execute(select(projects.c.id).where(projects.c.id == p.id).with_for_update())
                p = self.project_row(u.conn, project)
            row = u.conn.execute(
                select(model_versions).where(
                    model_versions.c.project_id == p.id, model_versions.c.version == version
                )
            ).first()
            if row is None:
                raise NotFound(f"model version {version} of project {project!r} not found")
            if row.id != p.champion_id:
                raise Conflict(
                    f"model version {version} is {row.status}, not the champion; "
                    "only the champion can be rolled back"
                )
            previous = (row.metrics or {}).get("replaced")
            if previous is None:
                raise Conflict(
                    f"model version {version} replaced no champion: there is "
                    "nothing to roll back to"
                )
            u.conn.execute(
                update(model_versions)
                .where(model_versions.c.id == row.id)
                .values(status=ModelStatus.RETIRED)
            )
            u.conn.execute(
                update(model_versions)
                .where(model_versions.c.id == previous)
                .values(status=ModelStatus.CHAMPION)
            )
            u.conn.execute(
                update(projects).where(projects.c.id == p.id).values(champion_id=previous)
            )
            back = u.conn.execute(
                select(model_versions).where(model_versions.c.id == previous)
            ).one()
            u.emit(
                "model.rolled_back",
                p.name,
                actor,
                model_version_id=row.id,
                version=version,
                champion_version_id=previous,
                champion_version=back.version,
            )
        if p.policy.target_error is not None:
            self.recalibrate(actor, project)
        return _model_json(back)

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
        job = self._queue_training(actor, project, every=None)
        assert job is not None
        return job

    def _queue_training(
        self, actor: Principal, project: str, every: int | None
    ) -> dict[str, Any] | None:
        """Queue a training job (or return the active one); with ``every``, only when the
        project has at least that many human labels more than when its last job was queued
        or its last model trained (None otherwise). The check and the insert share the
        project's lock, so concurrent processes queue one job."""
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
            n_labels = count_human_labels(u.conn, p.id)
            if every is not None and n_labels - labels_at_last_training(u.conn, p.id) < every:
                return None
            jid = u.conn.execute(
                insert(jobs)
                .values(
                    project_id=p.id,
                    kind="train",
                    state=JobState.QUEUED.value,
                    requested_by=actor.name,
                    created_at=u.now,
                    human_labels=n_labels,
                )
                .returning(jobs.c.id)
            ).scalar_one()
            u.emit(
                "job.queued",
                p.name,
                actor,
                job_id=jid,
                kind="train",
                human_labels=n_labels,
                trigger="retrain_every" if every else "request",
            )
            row = u.conn.execute(select(jobs).where(jobs.c.id == jid)).one()
            return self._job_json(row, p.name)

    def retrain_if_due(self, project: str) -> dict[str, Any] | None:
        """After new human labels: when ``policy.retrain_every`` of them have come since the
        last training, queue a job and (``settings.run_jobs``) run it in a background
        thread, never in the caller's path. The queued job, or None when none is due."""
        with self.reading() as conn:
            every = self.project_row(conn, project).policy.retrain_every
        if every is None:
            return None
        job = self._queue_training(SYSTEM, project, every)
        if job is not None and job["state"] == JobState.QUEUED and self.settings.run_jobs:
            threading.Thread(target=self.run_job, args=(job["job_id"],), daemon=True).start()
        return job

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
                    result=result
                    and {"model_version": result["version"], "status": result["status"]},
                    error=error,
                )
            )
            u.emit("job.failed" if error else "job.done", name, actor, job_id=job_id, error=error)

    def recover_jobs(self, *, stale_after: timedelta = timedelta(hours=1)) -> list[int]:
        """At start-up: queued jobs to run again, and running jobs that have been running for
        longer than ``stale_after`` (their process died) marked failed."""
        with self.unit() as u:
            stale = (
                u.conn.execute(
                    update(jobs)
                    .where(
                        jobs.c.state == JobState.RUNNING, jobs.c.started_at < u.now - stale_after
                    )
                    .values(
                        state=JobState.FAILED,
                        finished_at=u.now,
                        error="interrupted: the process running it stopped",
                    )
                    .returning(jobs.c.id)
                )
                .scalars()
                .all()
            )
            for jid in stale:
                u.emit("job.failed", None, None, job_id=jid, error="interrupted")
            queued = (
                u.conn.execute(select(jobs.c.id).where(jobs.c.state == JobState.QUEUED))
                .scalars()
                .all()
            )
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


def count_human_labels(conn: Connection, project_id: int) -> int:
    """The project's current human labels."""
    return int(
        conn.execute(
            select(func.count()).where(
                decisions.c.project_id == project_id, decisions.c.current.is_(True), human_labeled()
            )
        ).scalar_one()
    )


def labels_at_last_training(conn: Connection, project_id: int) -> int:
    """Human labels the project had when its last training job was queued or its last
    model version trained (0: never)."""
    queued = conn.execute(
        select(func.max(jobs.c.human_labels)).where(jobs.c.project_id == project_id)
    ).scalar()
    last = conn.execute(
        select(model_versions.c.metrics)
        .where(model_versions.c.project_id == project_id)
        .order_by(model_versions.c.version.desc())
        .limit(1)
    ).scalar()
    return max(int(queued or 0), int((last or {}).get("human_labels_total", 0)))


class AutoRetrainMixin(TrainingMixin, ReviewMixin):
    """Answering a task adds a human label: check ``policy.retrain_every`` afterwards."""

    def on_answered(self, p: ProjectRow) -> None:
        super().on_answered(p)
        if p.policy.retrain_every is not None:
            self.retrain_if_due(p.name)
