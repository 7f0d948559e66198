"""Projects and their versioned policies."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from loopwise.domain import NAME_PATTERN, InputKind, Policy
from loopwise.errors import Conflict, InvalidInput
from loopwise.service.base import Principal, ProjectRow, ServiceBase, Unit
from loopwise.store.tables import model_versions, policy_versions, projects

MAX_REASON = 2000
"""Most characters of a reason (stop, resume, override)."""


def _check_labels(labels: Any) -> list[str]:
    if not isinstance(labels, list) or len(labels) < 2:
        raise InvalidInput("labels: need a list of at least two label names")
    if not all(isinstance(x, str) and x.strip() and len(x) <= 100 for x in labels):
        raise InvalidInput("labels: every label must be a non-empty string of at most 100 chars")
    if len(set(labels)) != len(labels):
        raise InvalidInput("labels: label names must be unique")
    return list(labels)


class ProjectsMixin(ServiceBase):
    def create_project(
        self,
        actor: Principal,
        name: str,
        *,
        labels: list[str],
        input: str = "tabular",
        sensitive: list[str] | None = None,
        policy: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a project (admin). Raises Conflict if the name is taken."""
        self.require(actor)
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise InvalidInput(
                f"name: {name!r} is not a valid project name; use 1-63 lower-case letters, "
                "digits, '_', '.', '-', starting with a letter or digit"
            )
        labels = _check_labels(labels)
        try:
            kind = InputKind(input)
        except ValueError:
            raise InvalidInput(
                f"input: {input!r} is not an input kind; known: {[k.value for k in InputKind]}"
            ) from None
        sens = list(sensitive or [])
        if not all(isinstance(s, str) and s for s in sens):
            raise InvalidInput("sensitive: must be a list of meta keys (strings)")
        pol = Policy.from_dict(policy)
        try:
            with self.unit() as u:
                pid = u.conn.execute(
                    insert(projects)
                    .values(
                        name=name,
                        labels=labels,
                        input_kind=kind.value,
                        sensitive=sens,
                        policy_version=1,
                        champion_id=None,
                        created_at=u.now,
                    )
                    .returning(projects.c.id)
                ).scalar_one()
                u.conn.execute(
                    insert(policy_versions).values(
                        project_id=pid,
                        version=1,
                        policy=pol.to_dict(),
                        created_by=actor.name,
                        created_at=u.now,
                    )
                )
                u.emit(
                    "project.created",
                    name,
                    actor,
                    labels=labels,
                    input=kind.value,
                    sensitive=sens,
                    policy=pol.to_dict(),
                    policy_version=1,
                )
        except IntegrityError:
            raise Conflict(f"project {name!r} already exists") from None
        return self.get_project(actor, name)

    def get_project(self, actor: Principal, name: str) -> dict[str, Any]:
        """A project with its current policy and champion model."""
        with self.reading() as conn:
            return self._project_json(conn, self.project_row(conn, name))

    def list_projects(self, actor: Principal) -> list[dict[str, Any]]:
        with self.reading() as conn:
            names = conn.execute(select(projects.c.name).order_by(projects.c.name)).scalars()
            return [self._project_json(conn, self.project_row(conn, n)) for n in list(names)]

    def _project_json(self, conn: Connection, p: ProjectRow) -> dict[str, Any]:
        model = None
        if p.champion_id is not None:
            m = conn.execute(
                select(
                    model_versions.c.version,
                    model_versions.c.status,
                    model_versions.c.estimator,
                    model_versions.c.n_train,
                    model_versions.c.created_at,
                ).where(model_versions.c.id == p.champion_id)
            ).one()
            model = {
                "version": m.version,
                "status": m.status,
                "estimator": m.estimator,
                "n_train": m.n_train,
                "created_at": m.created_at.isoformat(),
            }
        return {
            "name": p.name,
            "labels": p.labels,
            "input": p.input_kind,
            "sensitive": p.sensitive,
            "policy": p.policy.to_dict(),
            "policy_version": p.policy_version,
            "model": model,
            "created_at": p.created_at.isoformat(),
        }

    def write_policy_version(
        self,
        u: Unit,
        actor: Principal,
        p: ProjectRow,
        policy: Policy,
        gate_state: dict[str, Any] | None,
    ) -> int:
        """Make ``policy`` (and the calibrated gate) the project's next version; returns it.

        Compare-and-set on the version: two writers with the same base cannot both win.
        """
        version = p.policy_version + 1
        try:
            u.conn.execute(
                insert(policy_versions).values(
                    project_id=p.id,
                    version=version,
                    policy=policy.to_dict(),
                    gate_state=gate_state,
                    created_by=actor.name,
                    created_at=u.now,
                )
            )
        except IntegrityError:  # PostgreSQL: another writer took this version number
            raise Conflict(
                f"policy of {p.name!r} changed meanwhile; read it and try again"
            ) from None
        res = u.conn.execute(
            update(projects)
            .where(projects.c.id == p.id, projects.c.policy_version == p.policy_version)
            .values(policy_version=version)
        )
        if res.rowcount != 1:
            raise Conflict(f"policy of {p.name!r} changed meanwhile; read it and try again")
        return version

    def update_policy(self, actor: Principal, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply ``changes`` to the policy (admin): a new policy version and an event.

        ``changes`` may carry ``"reason"`` next to the policy fields (it is not one): why
        the policy changed. Setting ``stopped`` (the stop switch) to true or false requires
        it — a non-blank string, kept in the ``project.stopped`` / ``project.resumed``
        event — e.g. ``{"stopped": false, "reason": "drift fixed by model v4"}``.
        """
        self.require(actor)
        if not isinstance(changes, dict):
            raise InvalidInput("policy: send an object of the fields to change")
        changes = dict(changes)
        reason = changes.pop("reason", None)
        if reason is not None and (
            not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON
        ):
            raise InvalidInput(
                f"reason: must be a non-blank string of at most {MAX_REASON} characters"
            )
        with self.unit() as u:
            p = self.project_row(u.conn, name)
            new = p.policy.merged(changes)
            if new.stopped != p.policy.stopped and reason is None:
                verb = "stopping" if new.stopped else "resuming"
                raise InvalidInput(
                    f"reason: {verb} project {name!r} needs a reason, sent next to the policy "
                    f'fields, e.g. {{"stopped": {str(new.stopped).lower()}, "reason": "..."}}'
                )
            promise = ("target_error", "delta", "per_class")
            same = all(getattr(new, f) == getattr(p.policy, f) for f in promise)
            version = self.write_policy_version(u, actor, p, new, p.gate_state if same else None)
            old = p.policy.to_dict()
            diff = {k: {"from": old[k], "to": v} for k, v in new.to_dict().items() if old[k] != v}
            extra = {} if reason is None else {"reason": reason}
            u.emit("policy.changed", name, actor, version=version, changes=diff, **extra)
            if "stopped" in diff:
                u.emit(
                    "project.stopped" if new.stopped else "project.resumed",
                    name,
                    actor,
                    version=version,
                    reason=reason,
                )
        return self.get_project(actor, name)
