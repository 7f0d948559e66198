"""Submitting items: validate the whole batch, score, route, write — all or nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from loopwise.domain import DecisionSource, Reason, Role, Route, TaskState
from loopwise.errors import InvalidInput, TooLarge
from loopwise.learning import TrainedModel, featurize
from loopwise.routing import NoveltyDetector, RoutedBatch, proba_problems
from loopwise.service.base import Principal, ProjectRow, Unit
from loopwise.service.budget import OVERFLOW_REASONS, overflow, task_priority
from loopwise.service.calibration import gate_of
from loopwise.service.intake import received_entry, write_items
from loopwise.service.pool import insert_pool_items
from loopwise.service.views import ViewsMixin
from loopwise.store.bulk import insert_rows, items_by_external_id, json_text
from loopwise.store.tables import decisions, predictions, routes, tasks

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

RETRIES = 5
"""Attempts at a batch that races another one holding the same external ids."""

FIELDS = frozenset({"external_id", "data", "meta", "proba", "pool"})
"""What an item may carry."""

_PLAIN_NUMBERS = frozenset({float, int})


def _lost_race(exc: DBAPIError) -> bool:
    """A concurrent request inserted one of the batch's external ids first (unique
    violation: READ COMMITTED let both look before either wrote), or two batches holding
    the same ids in different orders deadlocked. Run again: the ids are then found.
    (SQLite serialises writers, so it never gets here.)"""
    return getattr(exc.orig, "sqlstate", None) in ("23505", "40P01")


def _not_numbers(row: Any) -> bool:
    """Whether a list holds strings or booleans (which numpy would turn into numbers)."""
    return isinstance(row, Sequence) and any(isinstance(x, str | bytes | bool) for x in row)


def _row_problem(row: Any, k: int) -> str | None:
    """What is wrong with one item's probabilities, or None."""
    try:
        vec = np.asarray(row, dtype=np.float64)
        # numpy reads [[.5, .5]], ["0.5", "0.5"] and [true, false] as numbers
        if vec.ndim != 1 or _not_numbers(row):
            raise ValueError(row)
    except (TypeError, ValueError):
        return f"must be a list of {k} numbers"
    problems = proba_problems(vec.reshape(1, -1), k)
    return problems[0][1] if problems else None


def _probability_matrix(rows: list[Any] | FloatArray, k: int) -> FloatArray | None:
    """``rows`` as one (m, k) array when every row is a probability vector of plain
    numbers (checked at once); None when any is not — then :func:`_row_problem` names it."""
    if isinstance(rows, np.ndarray):
        mat = rows
    else:
        try:
            mat = np.array(rows, dtype=np.float64)
        except (TypeError, ValueError):
            return None
        if mat.shape != (len(rows), k):
            return None
        if not {type(x) for row in rows for x in row} <= _PLAIN_NUMBERS:
            return None  # strings, booleans, numpy scalars: row by row
    return None if proba_problems(mat, k) else mat


class SubmitMixin(ViewsMixin):
    def submit(
        self,
        actor: Principal,
        project: str,
        records: Sequence[Mapping[str, Any]],
        proba: npt.ArrayLike | None = None,
    ) -> list[dict[str, Any]]:
        """Submit items; returns one decision summary per record, in order.

        A record is ``{"external_id"?, "data", "meta"?, "proba"?, "pool"?}``; a ``pool``
        item waits unrouted for an active-learning query (:mod:`loopwise.service.pool`).
        ``proba`` (n, k), when given, overrides the records' own. Items without
        probabilities are scored by the project's champion model, or go to review (reason
        ``no_model``) when it has none.
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
                    probs, given = self._validate(records, proba, len(p.labels))
                    out = self._submit(u, actor, p, records, probs, given)
                self.on_submitted(p)
                return out
            except DBAPIError as exc:
                if attempt == RETRIES or not _lost_race(exc):
                    raise
        raise AssertionError("unreachable")

    def _validate(
        self, records: Sequence[Mapping[str, Any]], proba: npt.ArrayLike | None, k: int
    ) -> tuple[FloatArray, BoolArray]:
        """The batch's probabilities (n, k) and which rows have them (the others are NaN);
        InvalidInput listing every problem, in the order of the records."""
        n = len(records)
        errors: list[dict[str, Any]] = []

        def err(i: int, fld: str, msg: str, ext: Any) -> None:
            errors.append({"loc": ["items", i, fld], "msg": msg, "external_id": ext})

        given = None
        if proba is not None:
            given = np.asarray(proba, dtype=np.float64)
            if given.ndim != 2 or given.shape != (n, k):
                raise InvalidInput(
                    f"proba: must have shape ({n}, {k}), got {given.shape}",
                    errors=[{"loc": ["proba"], "msg": "wrong shape"}],
                )
        with_proba: list[int] = []
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
            if not rec.keys() <= FIELDS:
                err(i, "item", f"unknown fields {sorted(set(rec) - FIELDS)}", ext)
            if rec.get("pool", False) not in (True, False):
                err(i, "pool", "must be true or false", ext)
            elif rec.get("pool") and (given is not None or rec.get("proba") is not None):
                err(i, "proba", "a pool item is scored when queried: leave proba out", ext)
            if given is not None or rec.get("proba") is not None:
                with_proba.append(i)

        probs = np.full((n, k), np.nan)
        rows = given[with_proba] if given is not None else [records[i]["proba"] for i in with_proba]
        mat = _probability_matrix(rows, k) if with_proba else None
        if mat is not None:
            probs[with_proba] = mat
        else:
            for i, row in zip(with_proba, rows, strict=True):
                problem = _row_problem(row, k)
                if problem is None:
                    probs[i] = np.asarray(row, dtype=np.float64)
                else:
                    err(i, "proba", problem, records[i].get("external_id"))
        if errors:
            errors.sort(key=lambda e: int(e["loc"][1]))  # stable: an item's fields in order
            first = errors[0]
            raise InvalidInput(
                f"{len(errors)} invalid item(s); first: item {first['loc'][1]} "
                f"(external_id {first['external_id']!r}) {first['loc'][2]}: {first['msg']}",
                errors=errors,
            )
        has = np.zeros(n, dtype=bool)
        has[with_proba] = True
        return probs, has

    def _submit(
        self,
        u: Unit,
        actor: Principal,
        p: ProjectRow,
        records: Sequence[Mapping[str, Any]],
        probs: FloatArray,
        given: BoolArray,
    ) -> list[dict[str, Any]]:
        conn = u.conn
        exts = [r.get("external_id") for r in records]
        existing = items_by_external_id(
            conn, p.id, list(dict.fromkeys(e for e in exts if e is not None))
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
        pool_idx = [i for i in new_idx if records[i].get("pool") is True]
        if pool_idx:
            # Pool items wait unrouted for an active-learning query (service.pool).
            for i, summary in zip(pool_idx, insert_pool_items(
                    u, actor, p, [records[i] for i in pool_idx]), strict=True):
                out[i] = summary
            new_idx = [i for i in new_idx if out[i] is None]
        if new_idx:
            fresh = self._insert_new(
                u, actor, p, [records[i] for i in new_idx], probs[new_idx], given[new_idx]
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

    def _route(self, p: ProjectRow, proba: FloatArray, records: Sequence[Mapping[str, Any]],
               novelty: tuple[NoveltyDetector, FloatArray] | None) -> RoutedBatch:
        """The project's gate (threshold, or certified promise; rules; novelty, with the
        features ``X`` (n, d) of the items; stop switch)."""
        det, X = (None, None) if novelty is None else novelty
        gate = gate_of(p, det)
        if gate.rules:
            meta = [r.get("meta") or {} for r in records]
            data = [r["data"] for r in records]
            return gate.route(proba, X=X, meta=meta, data=data, labels=p.labels,
                              random_state=self.child_rng(), validate=False)
        return gate.route(proba, X=X, random_state=self.child_rng(), validate=False)

    def _novelty_inputs(self, conn: Connection, p: ProjectRow, model: TrainedModel | None,
                        data: Sequence[Any], scored_by_model: npt.NDArray[np.int64]
                        ) -> tuple[NoveltyDetector, FloatArray] | None:
        """The champion's novelty detector and the items' features, when the policy turns
        novelty on: the items the model scores are checked; the others (the client's own
        probabilities) stand at the reference mean, never novel."""
        if p.policy.novelty is None or model is None or p.champion_id is None:
            return None
        det = self.load_novelty(conn, p.champion_id, p.policy.novelty)
        if det is None or det.mean_ is None:
            return None
        X = np.tile(det.mean_, (len(data), 1))
        if scored_by_model.size:
            X[scored_by_model] = featurize(model.kind, [data[i] for i in scored_by_model],
                                           model.features)
        return det, X

    def _insert_new(
        self,
        u: Unit,
        actor: Principal,
        p: ProjectRow,
        records: Sequence[Mapping[str, Any]],
        proba: FloatArray,
        given: BoolArray,
    ) -> list[dict[str, Any]]:
        conn, n, k = u.conn, len(records), len(p.labels)
        model_id: int | None = None
        model: TrainedModel | None = None
        scored = given
        need = np.flatnonzero(~given)
        if need.size and p.champion_id is not None:
            model = self.load_model(conn, p.champion_id)
            try:
                proba[need] = model.predict_proba([records[i]["data"] for i in need.tolist()])
            except InvalidInput as exc:
                raise InvalidInput(
                    f"the model cannot score this batch: {exc}",
                    errors=[{"loc": ["items"], "msg": str(exc)}],
                ) from None
            model_id = p.champion_id
            scored = np.ones(n, dtype=bool)

        novelty = self._novelty_inputs(conn, p, model, [r["data"] for r in records],
                                       need if model is not None else need[:0])
        batch = self._route(p, np.where(scored[:, None], proba, 1.0 / k), records, novelty)
        nov = None if batch.novelty is None else batch.novelty.tolist()
        unscored = ~scored
        route = batch.route.astype(object)
        reason = batch.reason.astype(object)
        # No model: people decide, unless a rule already sent the item to an expert.
        plain = unscored & (route != Route.EXPERT.value)
        route[plain] = Route.REVIEW.value
        if not p.policy.stopped:
            plain &= ~np.char.startswith(batch.reason.astype(str), "rule:")
            reason[plain] = Reason.NO_MODEL.value
        inclusion = batch.inclusion_prob.copy()
        inclusion[unscored] = 1.0
        audited = batch.audited & scored
        if p.policy.over_budget == "accept" and p.policy.budget_per_hour is not None:
            candidates = (scored & (route == Route.REVIEW.value)
                          & np.isin(reason, list(OVERFLOW_REASONS)))
            human = int(np.count_nonzero((route != Route.AUTO.value) | audited))
            over = overflow(conn, p, u.now, candidates=candidates,
                            others=human - int(candidates.sum()), confidence=batch.confidence)
            route[over] = Route.AUTO.value
            reason[over] = Reason.OVER_BUDGET.value
            inclusion[over] = 0.0  # never audited: outside the promise, counted apart
        auto = route == Route.AUTO.value
        priority = task_priority(route, reason, audited, batch.confidence, scored).tolist()

        # Plain Python values, once: the rows, the events and the reply share them.
        new = write_items(u, p, records)
        item_ids, exts, at = new.ids, new.external_ids, new.at
        routed = route.tolist()
        reasons = reason.tolist()
        stored = np.where(audited, Route.AUDITED.value, route).tolist()
        labels = batch.label.tolist()
        conf = batch.confidence.tolist()
        incl = inclusion.tolist()
        proba_rows = proba.tolist()
        is_scored = scored.tolist()
        is_auto = auto.tolist()
        versions = [model_id if m else None for m in (scored & ~given).tolist()]
        tasked = np.flatnonzero(~auto | audited).tolist()

        insert_rows(
            conn,
            predictions,
            ("item_id", "model_version_id", "proba", "label", "confidence", "created_at",
             "novelty"),
            [
                (item_ids[i], versions[i], json_text(proba_rows[i]), labels[i], conf[i], at,
                 None if nov is None or versions[i] is None else nov[i])
                for i in np.flatnonzero(scored).tolist()
            ],
        )
        insert_rows(
            conn,
            routes,
            ("item_id", "project_id", "route", "reason", "policy_version", "inclusion_prob",
             "initial", "created_at"),
            [
                (item_ids[i], p.id, stored[i], reasons[i], p.policy_version, incl[i], True, at)
                for i in range(n)
            ],
        )
        insert_rows(
            conn,
            tasks,
            ("project_id", "item_id", "kind", "reason", "state", "priority", "created_at"),
            [
                (p.id, item_ids[i], Route.REVIEW.value if is_auto[i] else routed[i], reasons[i],
                 TaskState.OPEN.value, priority[i], at)
                for i in tasked
            ],
        )
        insert_rows(
            conn,
            decisions,
            ("item_id", "project_id", "label", "source", "user_id", "reason", "current",
             "created_at"),
            [
                (item_ids[i], p.id, labels[i], DecisionSource.MODEL.value, None, reasons[i], True,
                 at)
                for i in np.flatnonzero(auto).tolist()
            ],
        )

        out: list[dict[str, Any]] = []
        received: list[dict[str, Any]] = []
        for i, rec in enumerate(records):
            decided = is_auto[i]
            out.append(
                {
                    "item_id": item_ids[i],
                    "external_id": exts[i],
                    "route": stored[i],
                    "reason": reasons[i],
                    "label": p.labels[labels[i]] if decided else None,
                    "confidence": conf[i] if is_scored[i] else None,
                    "decided_by": DecisionSource.MODEL.value if decided else None,
                }
            )
            entry = received_entry(p, new, i, rec, route=stored[i], reason=reasons[i],
                                   inclusion_prob=incl[i])
            # Absent rather than null: what was not there (no model, no probabilities, no
            # automatic decision) is simply left out.
            if versions[i] is not None:
                entry["model_version_id"] = versions[i]
                if nov is not None:
                    entry["novelty"] = nov[i]
            if is_scored[i]:
                entry["proba"] = proba_rows[i]
                entry["predicted"] = labels[i]
            if decided:
                entry["decision"] = labels[i]
            received.append(entry)
        # One event for the batch: every item with its prediction, route and reason.
        u.emit("items.received", p.name, actor, policy_version=p.policy_version, items=received)
        return out
