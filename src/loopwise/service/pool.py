"""Pool mode: items that wait unlabeled until an active-learning query sends the most
informative of them to people.

An item submitted with ``"pool": true`` is stored with route ``pool`` (reason ``pool``,
inclusion probability 0): no prediction, no task, no decision. :meth:`PoolMixin.query_pool`
scores the waiting items with the current champion at query time (so the scores are
always the latest model's), chunk by chunk, and :func:`loopwise.learning.select` picks
``n`` under the project's strategy (no champion: the cold start's diverse batch). The
chosen items' route becomes ``review`` with reason ``pool_query`` and inclusion
probability 1, and each gets a review task.

Pool items never carry a stored prediction. That keeps them out of the gate's
calibration stream in promise mode: their labels are chosen for being informative, not
sampled by the gate, so counting them there would bias the certificate. Their labels train
models like any other human label, and those in the holdout fold (``domain.in_holdout``)
also judge challengers in the promotion gate.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, and_, func, select, update

from loopwise.domain import InputKind, Reason, Role, Route, TaskState
from loopwise.errors import InvalidInput
from loopwise.learning import STRATEGIES, TrainedModel, featurize, tabular_features
from loopwise.learning import select as select_items
from loopwise.service.base import Principal, ProjectRow, ServiceBase, Unit
from loopwise.service.budget import REVIEW_PRIORITY
from loopwise.service.intake import received_entry, write_items
from loopwise.service.views import human_labeled
from loopwise.store.bulk import bind_value, insert_rows
from loopwise.store.tables import decisions, items, routes, tasks

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CHUNK = 5000
"""Pool items read and scored at a time (bounds memory: their data, not the pool's)."""
SAMPLE = 20_000
"""Strategies that need features (``kcenter``, ``badge``, ``committee``, the cold start)
look at a uniform sample of at most this many pool items (or ``n``, if larger)."""
LABELED = 20_000
"""Most labeled items (the latest) a query keeps as centers or committee training data."""
_NEEDS_FEATURES = frozenset({"kcenter", "badge", "committee"})


def insert_pool_items(
    u: Unit, actor: Principal, p: ProjectRow, records: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Store pool items (route ``pool``, nothing else); their decision summaries."""
    new = write_items(u, p, records)
    insert_rows(
        u.conn,
        routes,
        ("item_id", "project_id", "route", "reason", "policy_version", "inclusion_prob",
         "initial", "created_at"),
        [
            (i, p.id, Route.POOL.value, Reason.POOL.value, p.policy_version, 0.0, True, new.at)
            for i in new.ids
        ],
    )
    received = [
        received_entry(p, new, i, r, route=Route.POOL.value, reason=Reason.POOL.value,
                       inclusion_prob=0.0)
        for i, r in enumerate(records)
    ]
    u.emit("items.received", p.name, actor, policy_version=p.policy_version, items=received)
    return [
        {
            "item_id": item_id,
            "external_id": ext,
            "route": Route.POOL.value,
            "reason": Reason.POOL.value,
            "label": None,
            "confidence": None,
            "decided_by": None,
        }
        for item_id, ext in zip(new.ids, new.external_ids, strict=True)
    ]


def _data_of(conn: Connection, ids: Sequence[int]) -> list[Any]:
    """The items' ``data``, in the order of ``ids``."""
    got = dict(
        conn.execute(select(items.c.id, items.c.data).where(items.c.id.in_(list(ids)))).all()
    )
    return [got[i] for i in ids]


class PoolMixin(ServiceBase):
    def query_pool(
        self,
        actor: Principal,
        project: str,
        n: Any,
        *,
        strategy: str | None = None,
        random_state: int | np.random.Generator | None = None,
    ) -> dict[str, Any]:
        """Send the ``n`` most informative pool items to people: a review task each (reason
        ``pool_query``), best first. ``strategy``: one of ``STRATEGIES`` (default the
        policy's). InvalidInput for an unknown strategy or ``n`` outside 1..pool size;
        nothing is written then. Returns ``{"strategy", "model_version", "tasks": [{"task_id",
        "item_id", "external_id"}], "pool_remaining"}``."""
        self.require(actor, Role.SERVICE)
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise InvalidInput(
                f"n: must be an integer, got {n!r}",
                errors=[{"loc": ["n"], "msg": "must be an integer"}],
            )
        rng = self.child_rng() if random_state is None else np.random.default_rng(random_state)
        with self.reading() as conn:
            p = self.project_row(conn, project)
            strategy = p.policy.strategy if strategy is None else strategy
            if strategy not in STRATEGIES:
                raise InvalidInput(
                    f"strategy: unknown strategy {strategy!r}; known ones are "
                    f"{', '.join(STRATEGIES)}",
                    errors=[
                        {
                            "loc": ["strategy"],
                            "msg": "unknown strategy",
                            "allowed": list(STRATEGIES),
                        }
                    ],
                )
            ids = np.array(
                conn.execute(
                    select(routes.c.item_id)
                    .where(
                        routes.c.project_id == p.id,
                        routes.c.initial.is_(True),
                        routes.c.route == Route.POOL.value,
                    )
                    .order_by(routes.c.item_id)
                )
                .scalars()
                .all(),
                dtype=np.int64,
            )
            if not 1 <= int(n) <= len(ids):
                raise InvalidInput(
                    f"n: must be from 1 to the {len(ids)} items waiting in the pool, got {n}",
                    errors=[{"loc": ["n"], "msg": "out of range", "pool": len(ids)}],
                )
            model = None if p.champion_id is None else self.load_model(conn, p.champion_id)
            chosen = ids[self._choose(conn, p, model, strategy, ids, int(n), rng)]
        return self._send_to_people(actor, project, strategy, chosen.tolist())

    def _choose(
        self,
        conn: Connection,
        p: ProjectRow,
        model: TrainedModel | None,
        strategy: str,
        ids: IntArray,
        n: int,
        rng: np.random.Generator,
    ) -> IntArray:
        """Positions in ``ids`` of the items to label, best first."""
        text = p.input_kind != InputKind.TABULAR
        if model is None and (strategy == "random" or text):
            # No model and nothing to measure diversity in (text): a uniform batch.
            return rng.choice(len(ids), size=n, replace=False).astype(np.int64)
        proba = None if model is None else self._score(conn, model, ids)
        if model is not None and strategy not in _NEEDS_FEATURES:
            return select_items(strategy, proba=proba, n=n, random_state=rng)
        if text and strategy == "committee":
            raise InvalidInput(
                "strategy: committee needs tabular features; this project's "
                f"input is {p.input_kind}"
            )
        size = min(len(ids), max(SAMPLE, n))
        sample = np.sort(rng.choice(len(ids), size=size, replace=False))
        if text:
            # Text: the model's probabilities are the space distances are measured in.
            assert proba is not None
            return sample[
                select_items(
                    strategy,
                    proba=proba[sample],
                    X_pool=proba[sample],
                    standardize=False,
                    n=n,
                    random_state=rng,
                )
            ]
        data = [
            d
            for start in range(0, size, CHUNK)
            for d in _data_of(conn, ids[sample[start : start + CHUNK]].tolist())
        ]
        features = model.features if model is not None else tabular_features(data)
        # A missing field counts as 0 in distances (the features are standardised).
        X = np.nan_to_num(
            np.asarray(featurize(InputKind.TABULAR, data, features), dtype=np.float64)
        )
        lab_data, y_lab = self._labeled(conn, p)
        X_lab = (
            np.nan_to_num(
                np.asarray(featurize(InputKind.TABULAR, lab_data, features), dtype=np.float64)
            )
            if lab_data
            else None
        )
        extra: dict[str, Any] = {}
        if strategy == "committee" and model is not None:
            extra = {"estimator": model.estimator, "y_labeled": y_lab}
        return sample[
            select_items(
                strategy,
                proba=None if proba is None else proba[sample],
                X_pool=X,
                X_labeled=X_lab,
                n=n,
                random_state=rng,
                **extra,
            )
        ]

    @staticmethod
    def _score(conn: Connection, model: TrainedModel, ids: IntArray) -> FloatArray:
        """The champion's probabilities (N, k) for the pool, :data:`CHUNK` items at a time."""
        out = np.empty((len(ids), model.n_classes), dtype=np.float64)
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK].tolist()
            out[start : start + len(chunk)] = model.predict_proba(_data_of(conn, chunk))
        return out

    @staticmethod
    def _labeled(conn: Connection, p: ProjectRow) -> tuple[list[Any], IntArray]:
        """Data and labels of the latest :data:`LABELED` human-labeled items."""
        rows = conn.execute(
            select(items.c.data, decisions.c.label)
            .join(decisions, and_(decisions.c.item_id == items.c.id, decisions.c.current.is_(True)))
            .where(items.c.project_id == p.id, human_labeled())
            .order_by(items.c.id.desc())
            .limit(LABELED)
        ).all()
        return [r.data for r in rows], np.array([r.label for r in rows], dtype=np.int64)

    def _send_to_people(
        self, actor: Principal, project: str, strategy: str, chosen: list[int]
    ) -> dict[str, Any]:
        """Route the chosen pool items to review (those still in the pool: a concurrent
        query may have taken some) with a task each, and the ``pool.queried`` event."""
        with self.unit() as u:
            p = self.project_row(u.conn, project)
            taken = set(
                u.conn.execute(
                    update(routes)
                    .where(
                        routes.c.project_id == p.id,
                        routes.c.initial.is_(True),
                        routes.c.route == Route.POOL.value,
                        routes.c.item_id.in_(chosen),
                    )
                    .values(
                        route=Route.REVIEW.value,
                        reason=Reason.POOL_QUERY.value,
                        inclusion_prob=1.0,
                        policy_version=p.policy_version,
                    )
                    .returning(routes.c.item_id)
                )
                .scalars()
                .all()
            )
            order = [i for i in chosen if i in taken]
            at = bind_value(u.conn, tasks.c.created_at, u.now)
            insert_rows(
                u.conn,
                tasks,
                ("project_id", "item_id", "kind", "reason", "state", "priority", "created_at"),
                [
                    (
                        p.id,
                        i,
                        Route.REVIEW.value,
                        Reason.POOL_QUERY.value,
                        TaskState.OPEN.value,
                        REVIEW_PRIORITY + min(rank, 1000),
                        at,
                    )
                    for rank, i in enumerate(order)
                ],
            )
            made = dict(
                u.conn.execute(
                    select(tasks.c.item_id, tasks.c.id).where(
                        tasks.c.item_id.in_(order), tasks.c.reason == Reason.POOL_QUERY.value
                    )
                ).all()
            )
            exts = dict(
                u.conn.execute(
                    select(items.c.id, items.c.external_id).where(items.c.id.in_(order))
                ).all()
            )
            remaining = u.conn.execute(
                select(func.count()).where(
                    routes.c.project_id == p.id,
                    routes.c.initial.is_(True),
                    routes.c.route == Route.POOL.value,
                )
            ).scalar_one()
            u.emit(
                "pool.queried",
                p.name,
                actor,
                strategy=strategy,
                model_version_id=p.champion_id,
                item_ids=order,
                task_ids=[made[i] for i in order],
            )
        return {
            "strategy": strategy,
            "model_version_id": p.champion_id,
            "tasks": [{"task_id": made[i], "item_id": i, "external_id": exts[i]} for i in order],
            "pool_remaining": int(remaining),
        }
