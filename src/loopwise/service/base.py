"""What every use case shares: the acting user, the unit of work, project lookup, models.

The service owns transactions: each public method opens one unit of work (a write or read
transaction), does all its steps in it and appends its events to the audit chain just
before commit. Store functions never commit.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, select

from loopwise.config import Settings
from loopwise.domain import Policy, Role
from loopwise.errors import Forbidden, NotFound
from loopwise.learning import TrainedModel
from loopwise.routing import NoveltyDetector
from loopwise.store.checkpoints import Signer
from loopwise.store.db import Database
from loopwise.store.events import PendingEvent, append_events
from loopwise.store.tables import model_versions, policy_versions, projects


@dataclass(frozen=True)
class Principal:
    """Who is acting: a stored user, or the local process (``id`` None, role admin)."""

    id: int | None
    name: str
    role: Role


LOCAL = Principal(id=None, name="local", role=Role.ADMIN)
"""The in-process library's identity: whoever can open the database file is its admin."""


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Unit:
    """One transaction and the events it will append."""

    conn: Connection
    now: datetime
    events: list[PendingEvent] = field(default_factory=list)

    def emit(self, type: str, project: str | None, actor: Principal | None, **payload: Any) -> None:
        self.events.append(
            PendingEvent(
                type=type,
                project=project,
                actor=None if actor is None else actor.name,
                payload=payload,
            )
        )


@dataclass(frozen=True)
class ProjectRow:
    id: int
    name: str
    labels: list[str]
    input_kind: str
    sensitive: list[str]
    policy_version: int
    champion_id: int | None
    policy: Policy
    created_at: datetime
    gate_state: dict[str, Any] | None = None
    """The calibrated gate of this policy version (promise mode), if any."""

    def label_index(self, label: str) -> int | None:
        try:
            return self.labels.index(label)
        except ValueError:
            return None


PROJECT_COLUMNS = (
    projects.c.name.label("project_name"),
    projects.c.labels,
    projects.c.input_kind,
    projects.c.sensitive,
    projects.c.policy_version,
    projects.c.champion_id,
    projects.c.created_at.label("project_created_at"),
    policy_versions.c.policy,
    policy_versions.c.gate_state,
)
"""A project's columns (besides ``project_id``) joined with its current policy version."""


def project_from_row(r: Any) -> ProjectRow:
    """The project of a row holding ``project_id`` and :data:`PROJECT_COLUMNS`."""
    return ProjectRow(
        id=r.project_id,
        name=r.project_name,
        labels=list(r.labels),
        input_kind=r.input_kind,
        sensitive=list(r.sensitive),
        policy_version=r.policy_version,
        champion_id=r.champion_id,
        policy=Policy.from_dict(r.policy),
        created_at=r.project_created_at,
        gate_state=r.gate_state,
    )


class ServiceBase:
    """State shared by the use cases: the database, settings and a model cache."""

    signer: Signer | None = None
    """Signs the audit trail's checkpoints (set by the audit use case; None: none written)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._models: dict[int, TrainedModel] = {}
        self._detectors: dict[int, NoveltyDetector | None] = {}
        self._models_lock = threading.Lock()
        self._rng = np.random.default_rng()
        self._rng_lock = threading.Lock()

    def seed(self, random_state: int | None) -> None:
        """Make random audit sampling repeatable (demos, tests)."""
        with self._rng_lock:
            self._rng = np.random.default_rng(random_state)

    def child_rng(self) -> np.random.Generator:
        """An independent generator for one call (generators are not thread-safe)."""
        with self._rng_lock:
            return np.random.default_rng(int(self._rng.integers(2**63)))

    @contextmanager
    def unit(self) -> Iterator[Unit]:
        """A write transaction; its events are chained and it commits on success."""
        with self.db.write() as conn:
            u = Unit(conn=conn, now=utcnow())
            yield u
            append_events(conn, u.events, u.now, signer=self.signer)

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.db.read() as conn:
            yield conn

    @staticmethod
    def require(actor: Principal, *roles: Role) -> None:
        """Raise Forbidden unless the actor has one of ``roles`` (admins may do anything)."""
        if actor.role is Role.ADMIN or actor.role in roles:
            return
        allowed = ", ".join(sorted({"admin", *(r.value for r in roles)}))
        raise Forbidden(f"role {actor.role.value!r} may not do this; allowed: {allowed}")

    def on_audit_answered(self, project: str) -> None:
        """Called after an audit of an automatic decision is answered in a project that
        makes a promise (the calibration use case checks the promise)."""

    def close(self) -> None:
        """Finish what runs in the background (use cases that start threads override it and
        call ``super()``), then close the database's connections."""
        self.db.dispose()

    def on_answered(self, p: ProjectRow) -> None:
        """Called after a person's answer in project ``p`` has committed (use cases that
        react to new labels override it and call ``super()``: alerts, retraining)."""

    def on_submitted(self, p: ProjectRow) -> None:
        """Called after a submitted batch of project ``p`` has committed (alerts)."""

    def require_reader(self, actor: Principal) -> None:
        """Any signed-in role may read projects, items, models and metrics."""
        self.require(actor, Role.EXPERT, Role.REVIEWER, Role.SERVICE)

    def project_row(self, conn: Connection, name: str) -> ProjectRow:
        row = conn.execute(
            select(projects.c.id.label("project_id"), *PROJECT_COLUMNS)
            .join(
                policy_versions,
                (policy_versions.c.project_id == projects.c.id)
                & (policy_versions.c.version == projects.c.policy_version),
            )
            .where(projects.c.name == name)
        ).first()
        if row is None:
            raise NotFound(f"project {name!r} not found")
        return project_from_row(row)

    def load_model(self, conn: Connection, model_version_id: int) -> TrainedModel:
        """The fitted model of a version, loaded once per process (artifacts never change)."""
        with self._models_lock:
            cached = self._models.get(model_version_id)
        if cached is not None:
            return cached
        blob = conn.execute(
            select(model_versions.c.artifact).where(model_versions.c.id == model_version_id)
        ).scalar_one()
        model = TrainedModel.from_bytes(blob)
        with self._models_lock:
            self._models[model_version_id] = model
        return model

    def load_novelty(self, conn: Connection, model_version_id: int, alpha: float
                     ) -> NoveltyDetector | None:
        """The novelty detector fitted with a model version (None: it has none), at the
        conformal level ``alpha``; loaded once per process."""
        with self._models_lock:
            known = model_version_id in self._detectors
            det = self._detectors.get(model_version_id)
        if not known:
            blob = conn.execute(
                select(model_versions.c.novelty).where(model_versions.c.id == model_version_id)
            ).scalar_one()
            det = None if blob is None else NoveltyDetector.from_bytes(blob)
            with self._models_lock:
                self._detectors[model_version_id] = det
        if det is None:
            return None
        # A copy at this level: the cached one is shared by threads.
        out = copy.copy(det)
        return out.set_alpha(alpha)
