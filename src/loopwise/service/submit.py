"""Submitting items: validate the whole batch, score, route, write — all or nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError

from loopwise.audit import canonical_json
from loopwise.domain import DecisionSource, Reason, Role, Route, TaskState
from loopwise.errors import InvalidInput, TooLarge
from loopwise.routing import Gate, proba_problems
from loopwise.service.base import Principal, ProjectRow, Unit
from loopwise.service.views import ViewsMixin
from loopwise.store.tables import decisions, items, predictions, routes, tasks

PRIORITY = {Route.EXPERT.value: 0, Route.REVIEW.value: 1}
"""Queue order: expert work first, then reviews and audits, oldest first."""


RETRIES = 5
"""Attempts at a batch that races another one holding the same external ids."""


def _lost_race(exc: DBAPIError) -> bool:
    """A concurrent request inserted one of the batch's external ids first (unique
    violation: READ COMMITTED let both look before either wrote), or two batches holding
    the same ids in different orders deadlocked. Run again: the ids are then found.
    (SQLite serialises writers, so it never gets here.)"""
    return getattr(exc.orig, "sqlstate", None) in ("23505", "40P01")


def _not_numbers(row: Any) -> bool:
    """Whether a list holds strings or booleans (which numpy would turn into numbers)."""
    return isinstance(row, Sequence) and any(isinstance(x, str | bytes | bool) for x in row)


def _hash(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


class SubmitMixin(ViewsMixin):
    def submit(
        self,
        actor: Principal,
        project: str,
        records: Sequence[Mapping[str, Any]],
        proba: npt.ArrayLike | None = None,
    ) -> list[dict[str, Any]]:
        """Submit items; returns one decision summary per record, in order.

        A record is ``{"external_id"?, "data", "meta"?, "proba"?}``. ``proba`` (n, k), when
        given, overrides the records' own. Items without probabilities are scored by the
        project's champion model, or go to review (reason ``no_model``) when it has none.
        An ``external_id`` seen before returns the existing item and decision; nothing is
        written for it again. Any invalid record rejects the whole batch (InvalidInput
        listing every problem).
        """
        self.require(actor, Role.SERVICE)
        if not isinstance(records, Sequence) or isinstance(records, str | bytes):
            raise InvalidInput("items: must be a list of objects")
        if len(records) > self.settings.max_batch:
            raise TooLarge(
                f"batch of {len(records)} items is over the maximum of {self.settings.max_batch}"
            )
        for attempt in range(1, RETRIES + 1):
            try:
                with self.unit() as u:
                    p = self.project_row(u.conn, project)
                    if len(records) == 0:
                        return []
                    k = len(p.labels)
                    probs = self._validate(records, proba, k)
                    return self._submit(u, actor, p, records, probs)
            except DBAPIError as exc:
                if attempt == RETRIES or not _lost_race(exc):
                    raise
        raise AssertionError("unreachable")

    def _validate(
        self, records: Sequence[Mapping[str, Any]], proba: npt.ArrayLike | None, k: int
    ) -> list[list[float] | None]:
        errors: list[dict[str, Any]] = []

        def err(i: int, fld: str, msg: str, ext: Any) -> None:
            errors.append({"loc": ["items", i, fld], "msg": msg, "external_id": ext})

        probs: list[list[float] | None] = [None] * len(records)
        given = None
        if proba is not None:
            arr = np.asarray(proba, dtype=np.float64)
            if arr.ndim != 2 or arr.shape != (len(records), k):
                raise InvalidInput(
                    f"proba: must have shape ({len(records)}, {k}), got {arr.shape}",
                    errors=[{"loc": ["proba"], "msg": "wrong shape"}],
                )
            given = arr
        for i, rec in enumerate(records):
            if not isinstance(rec, Mapping):
                err(i, "item", "must be an object with data, meta, external_id, proba", None)
                continue
            ext = rec.get("external_id")
            if ext is not None and (not isinstance(ext, str) or not 0 < len(ext) <= 200):
                err(i, "external_id", "must be a string of 1-200 characters", ext)
            if not isinstance(rec.get("data"), Mapping):
                err(i, "data", "must be an object", ext)
            if not isinstance(rec.get("meta") or {}, Mapping):
                err(i, "meta", "must be an object", ext)
            unknown = set(rec) - {"external_id", "data", "meta", "proba"}
            if unknown:
                err(i, "item", f"unknown fields {sorted(unknown)}", ext)
            row = given[i] if given is not None else rec.get("proba")
            if row is not None:
                try:
                    vec = np.asarray(row, dtype=np.float64)
                    # numpy reads [[.5, .5]], ["0.5", "0.5"] and [true, false] as numbers
                    if vec.ndim != 1 or _not_numbers(row):
                        raise ValueError(row)
                    vec = vec.reshape(1, -1)
                except (TypeError, ValueError):
                    err(i, "proba", f"must be a list of {k} numbers", ext)
                    continue
                problems = proba_problems(vec, k)
                if problems:
                    err(i, "proba", problems[0][1], ext)
                else:
                    probs[i] = [float(x) for x in vec[0]]
        if errors:
            first = errors[0]
            raise InvalidInput(
                f"{len(errors)} invalid item(s); first: item {first['loc'][1]} "
                f"(external_id {first['external_id']!r}) {first['loc'][2]}: {first['msg']}",
                errors=errors,
            )
        return probs

    def _submit(
        self,
        u: Unit,
        actor: Principal,
        p: ProjectRow,
        records: Sequence[Mapping[str, Any]],
        probs: list[list[float] | None],
    ) -> list[dict[str, Any]]:
        conn = u.conn
        exts = [r.get("external_id") for r in records]
        wanted = sorted({e for e in exts if e is not None})
        existing: dict[str, int] = {}
        for start in range(0, len(wanted), 5000):
            chunk = wanted[start : start + 5000]
            existing.update(
                (row.external_id, row.id)
                for row in conn.execute(
                    select(items.c.id, items.c.external_id).where(
                        items.c.project_id == p.id, items.c.external_id.in_(chunk)
                    )
                )
            )
        # First occurrence of each new external_id is inserted; repeats point at it.
        new_idx: list[int] = []
        first_of: dict[str, int] = {}
        for i, e in enumerate(exts):
            if e is None or (e not in existing and e not in first_of):
                new_idx.append(i)
                if e is not None:
                    first_of[e] = i

        out: list[dict[str, Any] | None] = [None] * len(records)
        if new_idx:
            fresh = self._insert_new(
                u, actor, p, [records[i] for i in new_idx], [probs[i] for i in new_idx]
            )
            for j, i in enumerate(new_idx):
                out[i] = fresh[j]
        if existing or len(new_idx) < len(records):
            ids = {e: existing[e] for e in existing}
            ids.update({e: out[i]["item_id"] for e, i in first_of.items()})  # type: ignore[index]
            known = self._summaries(conn, p, [ids[e] for e in existing])
            for i, e in enumerate(exts):
                if out[i] is None:
                    assert e is not None
                    out[i] = known[ids[e]] if e in existing else out[first_of[e]]
        return [o for o in out if o is not None]

    def _insert_new(
        self,
        u: Unit,
        actor: Principal,
        p: ProjectRow,
        records: Sequence[Mapping[str, Any]],
        probs: list[list[float] | None],
    ) -> list[dict[str, Any]]:
        conn, now, n, k = u.conn, u.now, len(records), len(p.labels)
        need = [i for i, pr in enumerate(probs) if pr is None]
        model_id: int | None = None
        proba = np.full((n, k), np.nan)
        for i, pr in enumerate(probs):
            if pr is not None:
                proba[i] = pr
        if need and p.champion_id is not None:
            model = self.load_model(conn, p.champion_id)
            try:
                proba[need] = model.predict_proba([records[i]["data"] for i in need])
            except InvalidInput as exc:
                raise InvalidInput(
                    f"the model cannot score this batch: {exc}",
                    errors=[{"loc": ["items"], "msg": str(exc)}],
                ) from None
            model_id = p.champion_id
            need = []
        scored = np.ones(n, dtype=bool)
        scored[need] = False

        pol = p.policy
        gate = Gate(pol.threshold, audit_rate=pol.audit_rate, stopped=pol.stopped)
        batch = gate.route(
            np.where(scored[:, None], proba, 1.0 / k), random_state=self.child_rng(), validate=False
        )
        route = batch.route.astype(object)
        reason = batch.reason.astype(object)
        inclusion = batch.inclusion_prob.copy()
        unscored = ~scored
        route[unscored] = Route.REVIEW.value
        reason[unscored] = Reason.STOPPED.value if pol.stopped else Reason.NO_MODEL.value
        inclusion[unscored] = 1.0
        audited = batch.audited & scored

        item_ids: list[int] = list(
            conn.execute(
                insert(items).returning(items.c.id, sort_by_parameter_order=True),
                [
                    {
                        "project_id": p.id,
                        "external_id": r.get("external_id"),
                        "data": dict(r["data"]),
                        "meta": dict(r.get("meta") or {}),
                        "created_at": now,
                    }
                    for r in records
                ],
            ).scalars()
        )
        pred_rows = [
            {
                "item_id": item_ids[i],
                "model_version_id": model_id if probs[i] is None else None,
                "proba": proba[i].tolist(),
                "label": int(batch.label[i]),
                "confidence": float(batch.confidence[i]),
                "created_at": now,
            }
            for i in range(n)
            if scored[i]
        ]
        if pred_rows:
            conn.execute(insert(predictions), pred_rows)
        stored_route = [Route.AUDITED.value if audited[i] else route[i] for i in range(n)]
        conn.execute(
            insert(routes),
            [
                {
                    "item_id": item_ids[i],
                    "project_id": p.id,
                    "route": stored_route[i],
                    "reason": reason[i],
                    "policy_version": p.policy_version,
                    "inclusion_prob": float(inclusion[i]),
                    "initial": True,
                    "created_at": now,
                }
                for i in range(n)
            ],
        )
        task_rows = [
            {
                "project_id": p.id,
                "item_id": item_ids[i],
                "kind": route[i] if route[i] != "auto" else Route.REVIEW.value,
                "reason": reason[i],
                "state": TaskState.OPEN.value,
                "priority": PRIORITY.get(route[i], 1),
                "created_at": now,
            }
            for i in range(n)
            if route[i] != Route.AUTO.value or audited[i]
        ]
        if task_rows:
            conn.execute(insert(tasks), task_rows)
        auto = [i for i in range(n) if route[i] == Route.AUTO.value]
        if auto:
            conn.execute(
                insert(decisions),
                [
                    {
                        "item_id": item_ids[i],
                        "project_id": p.id,
                        "label": int(batch.label[i]),
                        "source": DecisionSource.MODEL.value,
                        "user_id": None,
                        "reason": reason[i],
                        "current": True,
                        "created_at": now,
                    }
                    for i in auto
                ],
            )
        out: list[dict[str, Any]] = []
        for i, rec in enumerate(records):
            decided = route[i] == Route.AUTO.value
            summary: dict[str, Any] = {
                "item_id": item_ids[i],
                "external_id": rec.get("external_id"),
                "route": stored_route[i],
                "reason": reason[i],
                "label": p.labels[int(batch.label[i])] if decided else None,
                "confidence": float(batch.confidence[i]) if scored[i] else None,
                "decided_by": DecisionSource.MODEL.value if decided else None,
            }
            out.append(summary)
            u.emit(
                "item.received",
                p.name,
                actor,
                item_id=item_ids[i],
                external_id=rec.get("external_id"),
                data_sha256=_hash(rec["data"]),
                meta=dict(rec.get("meta") or {}),
                model_version_id=model_id if scored[i] and probs[i] is None else None,
                proba=proba[i].tolist() if scored[i] else None,
                predicted=int(batch.label[i]) if scored[i] else None,
                route=stored_route[i],
                reason=reason[i],
                policy_version=p.policy_version,
                inclusion_prob=float(inclusion[i]),
                decision=int(batch.label[i]) if decided else None,
            )
        return out
