"""Many reviewers on one item: overlap and consensus, reviewer skill, gold items, agreement.

**Consensus.** After each answer on an item whose policy asks for overlap
(``max_reviews > 1``), the item's answers are combined by one Dawid–Skene E-step with each
reviewer's *stored* confusion matrix (:func:`loopwise.consensus.decide_item`): the matrix
is the reviewer's confusion counts in this project (from gold items and from earlier
consensus) plus a Dirichlet prior of :data:`PRIOR_STRENGTH` pseudo-answers per true class
at accuracy :data:`PRIOR_ACCURACY`. Running EM on one item's two or three answers could not
estimate anything; skill is learned across items and kept in ``reviewer_stats``, so the
E-step with those matrices is Dawid–Skene with the reviewers' history as a warm start and
prior. A reviewer with no history counts as a fairly good one: two such reviewers who agree
on a binary item give 0.97, over the default ``consensus_confidence`` 0.95; a reviewer known
to be poor weighs less, one known to be good more (weighted majority falls out as the case
of equal matrices).

**Skill.** Counts ``[truth, answer]`` per reviewer and project: a gold answer adds 1 at its
known label; a settled consensus of two or more answers adds the item's posterior (soft
truth) to every answerer's column of their answer. Accuracy (Wilson interval) and the
bias-corrected quality come from :func:`loopwise.consensus.reviewer_skills`. A reviewer with
>= :data:`MIN_SCORED` scored answers whose quality falls below ``policy.min_quality`` is
paused for the project (event ``reviewer.paused``) and gets no claims until an admin
resumes them.

Rows of ``reviewer_stats`` are locked in user-id order, so concurrent answers on different
items never deadlock on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from loopwise.consensus import (
    ReviewerSkills,
    decide_item,
    fleiss_kappa,
    krippendorff_alpha,
    percent_agreement,
    reviewer_skills,
)
from loopwise.consensus.overlap import Verdict
from loopwise.domain import Reason, Role, Route, TaskState
from loopwise.errors import InvalidInput, NotFound
from loopwise.service.base import Principal, ProjectRow, ServiceBase, Unit
from loopwise.service.budget import EXPERT_PRIORITY
from loopwise.store.tables import (
    gold_items,
    gold_tasks,
    items,
    reviewer_stats,
    reviews,
    routes,
    tasks,
    users,
)

PRIOR_ACCURACY = 0.85
"""Accuracy a reviewer without history is assumed to have (the prior's diagonal)."""
PRIOR_STRENGTH = 4.0
"""Pseudo-answers per true class behind that prior: a few real answers outweigh it."""
MIN_SCORED = 20
"""Scored answers a reviewer needs before their quality can pause them."""
AGREEMENT_BOOT = 200
"""Bootstrap resamples behind the agreement intervals in the metrics."""
MAX_GOLD = 10_000
"""Most gold items one request may mark."""


def prior_counts(k: int) -> npt.NDArray[np.float64]:
    """``(k, k)`` Dirichlet pseudo-counts ``[truth, answer]`` for a reviewer without history.

    >>> prior_counts(2).round(6).tolist()
    [[3.4, 0.6], [0.6, 3.4]]
    """
    off = (1.0 - PRIOR_ACCURACY) / (k - 1)
    c = np.full((k, k), off)
    np.fill_diagonal(c, PRIOR_ACCURACY)
    return np.asarray(PRIOR_STRENGTH * c)


def _counts(raw: Any, k: int) -> npt.NDArray[np.float64]:
    c = np.asarray(raw, dtype=np.float64)
    return c if c.shape == (k, k) else np.zeros((k, k))


def _upsert_missing(conn: Connection, p: ProjectRow, user_ids: Iterable[int], now: Any) -> None:
    """Create the stats rows that do not exist yet (concurrent creators pass each other)."""
    rows = [
        {
            "project_id": p.id,
            "user_id": uid,
            "counts": np.zeros((len(p.labels),) * 2).tolist(),
            "gold_n": 0,
            "gold_correct": 0,
            "paused": False,
            "updated_at": now,
        }
        for uid in sorted(set(user_ids))
    ]
    if not rows:
        return
    ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(ins(reviewer_stats).on_conflict_do_nothing(), rows)


def _skills(counts: npt.NDArray[np.float64]) -> ReviewerSkills:
    """One reviewer's skill from counts ``(k, k)``. The class prior is the truth's shares
    in the counts plus one pseudo-answer per class: a reviewer scored on one class only
    (e.g. gold items all of one label) still gets a defined quality.

    >>> round(float(_skills(np.array([[0.0, 0.0], [20.0, 0.0]])).quality[0]), 2)
    0.23
    """
    mass = counts.sum(axis=1) + 1.0
    return reviewer_skills(counts[None], prior=mass / mass.sum())


def _quality(counts: npt.NDArray[np.float64]) -> tuple[float, float]:
    """(scored answers, quality) of one reviewer's counts."""
    s = _skills(counts)
    return float(s.n[0]), float(s.quality[0])


class ConsensusMixin(ServiceBase):
    """Overlap, skill, gold items and the reviewers' page (see the module docstring)."""

    # -- skill
    def _add_counts(
        self,
        u: Unit,
        p: ProjectRow,
        deltas: Mapping[int, npt.NDArray[np.float64]],
        gold: Mapping[int, bool] | None = None,
    ) -> None:
        """Add confusion counts ``deltas[user_id]`` ``(k, k)`` (and a gold answer,
        right or wrong, for the users in ``gold``); pause those who fall below the
        policy's ``min_quality``."""
        gold = gold or {}
        ids = sorted(set(deltas) | set(gold))
        _upsert_missing(u.conn, p, ids, u.now)
        k = len(p.labels)
        rows = u.conn.execute(
            select(reviewer_stats, users.c.name)
            .join(users, users.c.id == reviewer_stats.c.user_id)
            .where(reviewer_stats.c.project_id == p.id, reviewer_stats.c.user_id.in_(ids))
            .order_by(reviewer_stats.c.user_id)
            .with_for_update(of=reviewer_stats)
        ).all()
        for r in rows:
            c = _counts(r.counts, k) + deltas.get(r.user_id, 0.0)
            values: dict[str, Any] = {"counts": c.tolist(), "updated_at": u.now}
            if r.user_id in gold:
                values["gold_n"] = r.gold_n + 1
                values["gold_correct"] = r.gold_correct + int(gold[r.user_id])
            n, quality = _quality(c)
            floor = p.policy.min_quality
            if not r.paused and floor is not None and n >= MIN_SCORED and quality < floor:
                values["paused"] = True
                u.emit(
                    "reviewer.paused",
                    p.name,
                    None,
                    user=r.name,
                    quality=quality,
                    n=n,
                    min_quality=floor,
                )
            u.conn.execute(
                update(reviewer_stats).where(reviewer_stats.c.id == r.id).values(**values)
            )

    def _standing(
        self, conn: Connection, p: ProjectRow, user_id: int
    ) -> tuple[bool, list[float] | None]:
        """A reviewer's standing in the project, in one read: whether they are paused, and
        their expected accuracy per true class (None: no history yet)."""
        row = conn.execute(
            select(reviewer_stats.c.paused, reviewer_stats.c.counts).where(
                reviewer_stats.c.project_id == p.id, reviewer_stats.c.user_id == user_id
            )
        ).first()
        if row is None:
            return False, None
        k = len(p.labels)
        c = _counts(row.counts, k)
        if c.sum() == 0:
            return bool(row.paused), None
        m = c + prior_counts(k)
        return bool(row.paused), [float(x) for x in np.diag(m) / m.sum(axis=1)]

    def claim_block(self, actor: Principal, project: str) -> str | None:
        """Why the actor gets no claims in the project (None: nothing stops them)."""
        if actor.id is None:
            return None
        with self.reading() as conn:
            p = self.project_row(conn, project)
            if self._standing(conn, p, actor.id)[0]:
                return (
                    f"paused: your quality score fell below the project's min_quality "
                    f"{p.policy.min_quality}; an admin can resume you"
                )
            return None

    # -- overlap
    def _answers(self, conn: Connection, item_id: int) -> list[Any]:
        """An item's reviewer answers (review tasks, gold tasks left out), oldest first."""
        return list(
            conn.execute(
                select(reviews.c.user_id, reviews.c.label, users.c.name)
                .join(tasks, tasks.c.id == reviews.c.task_id)
                .join(users, users.c.id == reviews.c.user_id)
                .outerjoin(gold_tasks, gold_tasks.c.task_id == reviews.c.task_id)
                .where(
                    reviews.c.item_id == item_id,
                    tasks.c.kind == Route.REVIEW.value,
                    gold_tasks.c.task_id.is_(None),
                )
                .order_by(reviews.c.id)
            ).all()
        )

    def _verdict(self, u: Unit, p: ProjectRow, item_id: int) -> tuple[Verdict, list[Any]]:
        """The item's verdict from its answers so far and the answerers' stored skill."""
        answers = self._answers(u.conn, item_id)
        k = len(p.labels)
        ids = sorted({a.user_id for a in answers})
        stored = {
            r.user_id: _counts(r.counts, k)
            for r in u.conn.execute(
                select(reviewer_stats.c.user_id, reviewer_stats.c.counts).where(
                    reviewer_stats.c.project_id == p.id, reviewer_stats.c.user_id.in_(ids)
                )
            )
        }
        skills = np.stack([stored.get(i, np.zeros((k, k))) + prior_counts(k) for i in ids])
        col = {uid: j for j, uid in enumerate(ids)}
        v = decide_item(
            [a.label for a in answers],
            [col[a.user_id] for a in answers],
            skills,
            min_reviews=p.policy.min_reviews,
            max_reviews=p.policy.max_reviews,
            confidence=p.policy.consensus_confidence,
            random_state=self.child_rng(),
        )
        return v, answers

    def _learn_from_consensus(
        self, u: Unit, p: ProjectRow, v: Verdict, answers: Sequence[Any]
    ) -> None:
        """Soft counts from a settled item's posterior for each of its answerers."""
        k = len(p.labels)
        deltas: dict[int, npt.NDArray[np.float64]] = {}
        for a in answers:
            d = deltas.setdefault(a.user_id, np.zeros((k, k)))
            d[:, a.label] += v.posterior
        self._add_counts(u, p, deltas)

    def _learn_from_expert(self, u: Unit, p: ProjectRow, item_id: int, truth: int) -> None:
        """An expert's decision is the truth for the reviewers who answered the item: hard
        counts. Without them, skill would be learned only where reviewers agreed enough to
        settle an item — the disagreements, where someone was wrong, would never count, and
        a careless reviewer would look as good as a careful one."""
        k = len(p.labels)
        deltas: dict[int, npt.NDArray[np.float64]] = {}
        for a in self._answers(u.conn, item_id):
            deltas.setdefault(a.user_id, np.zeros((k, k)))[truth, a.label] += 1.0
        if deltas:
            self._add_counts(u, p, deltas)

    def _open_next(self, u: Unit, p: ProjectRow, t: Any, v: Verdict) -> dict[str, Any]:
        """Another reviewer's task, or an expert's when ``v`` says there is no consensus."""
        to_expert = v.status == "expert"
        kind = Route.EXPERT if to_expert else Route.REVIEW
        prev = u.conn.execute(
            select(tasks.c.priority, tasks.c.reason).where(tasks.c.id == t.id)
        ).one()
        reason = Reason.DISAGREEMENT.value if to_expert else prev.reason
        priority = prev.priority
        if to_expert:
            priority = EXPERT_PRIORITY
        new_id = u.conn.execute(
            insert(tasks)
            .values(
                project_id=p.id,
                item_id=t.item_id,
                kind=kind.value,
                reason=reason,
                state=TaskState.OPEN.value,
                priority=priority,
                created_at=u.now,
            )
            .returning(tasks.c.id)
        ).scalar_one()
        if to_expert:
            u.conn.execute(
                insert(routes).values(
                    item_id=t.item_id,
                    project_id=p.id,
                    route=Route.EXPERT.value,
                    reason=Reason.DISAGREEMENT.value,
                    policy_version=p.policy_version,
                    inclusion_prob=1.0,
                    initial=False,
                    created_at=u.now,
                )
            )
        u.emit(
            "consensus.pending" if not to_expert else "consensus.disagreement",
            p.name,
            None,
            item_id=t.item_id,
            task_id=new_id,
            kind=kind.value,
            n_answers=v.n_answers,
            label=v.label,
            confidence=v.confidence,
        )
        return {"status": v.status, "n_answers": v.n_answers, "task_id": new_id}

    # -- gold
    def mark_gold(
        self, actor: Principal, project: str, marks: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Mark items as gold with their known labels (admin); all or nothing."""
        self.require(actor)
        if not isinstance(marks, list) or not marks or len(marks) > MAX_GOLD:
            raise InvalidInput(
                f'items: must be a list of 1 to {MAX_GOLD} {{"item_id", "label"}} objects'
            )
        with self.unit() as u:
            p = self.project_row(u.conn, project)
            errors: list[dict[str, Any]] = []
            wanted: dict[int, int] = {}
            for i, m in enumerate(marks):
                iid = m.get("item_id") if isinstance(m, dict) else None
                label = m.get("label") if isinstance(m, dict) else None
                if not isinstance(iid, int) or isinstance(iid, bool):
                    errors.append({"loc": ["items", i, "item_id"], "msg": "must be an item id"})
                    continue
                idx = p.label_index(label) if isinstance(label, str) else None
                if idx is None:
                    errors.append(
                        {"loc": ["items", i, "label"], "msg": f"{label!r} is not one of {p.labels}"}
                    )
                    continue
                wanted[iid] = idx
            known = set(
                u.conn.execute(
                    select(items.c.id).where(
                        items.c.project_id == p.id, items.c.id.in_(list(wanted))
                    )
                ).scalars()
            )
            errors += [
                {
                    "loc": ["items", i, "item_id"],
                    "msg": f"item {m['item_id']} not found in project {project!r}",
                }
                for i, m in enumerate(marks)
                if isinstance(m, dict) and m.get("item_id") in wanted and m["item_id"] not in known
            ]
            if errors:
                raise InvalidInput(
                    f"gold: {len(errors)} invalid item(s); nothing was marked", errors=errors
                )
            u.conn.execute(delete(gold_items).where(gold_items.c.item_id.in_(list(wanted))))
            u.conn.execute(
                insert(gold_items),
                [
                    {
                        "project_id": p.id,
                        "item_id": iid,
                        "label": lab,
                        "created_by": actor.name,
                        "created_at": u.now,
                    }
                    for iid, lab in wanted.items()
                ],
            )
            u.emit(
                "gold.marked",
                p.name,
                actor,
                items=[{"item_id": iid, "label": lab} for iid, lab in wanted.items()],
            )
            return {"marked": len(wanted)}

    def _gold_claims(
        self, u: Unit, actor: Principal, p: ProjectRow, n: int, held: Sequence[int]
    ) -> list[int]:
        """Up to ``n`` gold items for the actor (never one they answered or hold), as new
        claimed review tasks; returns their item ids."""
        assert actor.id is not None
        gold_n = (
            u.conn.execute(
                select(reviewer_stats.c.gold_n).where(
                    reviewer_stats.c.project_id == p.id, reviewer_stats.c.user_id == actor.id
                )
            ).scalar()
            or 0
        )
        pending = u.conn.execute(
            select(func.count())
            .select_from(gold_tasks)
            .join(tasks, tasks.c.id == gold_tasks.c.task_id)
            .where(
                gold_tasks.c.user_id == actor.id,
                tasks.c.project_id == p.id,
                tasks.c.state == TaskState.CLAIMED.value,
            )
        ).scalar_one()
        rng = self.child_rng()
        want = int(rng.binomial(n, p.policy.gold_rate))
        if gold_n == 0 and pending == 0:
            want = max(want, 1)  # a new reviewer starts with a gold item
        if want == 0:
            return []
        mine = (
            select(tasks.c.id)
            .where(
                tasks.c.item_id == gold_items.c.item_id,
                tasks.c.assignee_id == actor.id,
                tasks.c.state.in_([TaskState.CLAIMED.value, TaskState.DONE.value]),
            )
            .exists()
        )
        answered = (
            select(reviews.c.id)
            .where(reviews.c.item_id == gold_items.c.item_id, reviews.c.user_id == actor.id)
            .exists()
        )
        picked = list(
            u.conn.execute(
                select(gold_items.c.item_id)
                .where(
                    gold_items.c.project_id == p.id,
                    ~mine,
                    ~answered,
                    gold_items.c.item_id.not_in(list(held)),
                )
                .order_by(gold_items.c.id)
                .limit(want)
            ).scalars()
        )
        return picked

    def _gold_label(self, conn: Connection, task_id: int) -> int | None:
        """The known label when ``task_id`` puts a gold item to a reviewer, else None."""
        return conn.execute(
            select(gold_items.c.label)
            .join(tasks, tasks.c.item_id == gold_items.c.item_id)
            .join(gold_tasks, gold_tasks.c.task_id == tasks.c.id)
            .where(tasks.c.id == task_id)
        ).scalar()

    def _expert_answers(
        self, conn: Connection, p: ProjectRow, item_ids: Sequence[int]
    ) -> dict[int, list[dict[str, Any]]]:
        """Earlier reviewers' answers on items (shown to experts only)."""
        out: dict[int, list[dict[str, Any]]] = {i: [] for i in item_ids}
        for iid in item_ids:
            out[iid] = [
                {"user": a.name, "label": p.labels[a.label]} for a in self._answers(conn, iid)
            ]
        return out

    # -- the reviewers' page
    def reviewers(self, actor: Principal, project: str) -> list[dict[str, Any]]:
        """Per reviewer of the project: scored answers ``n``, accuracy with its 95%
        Wilson interval, quality, gold answers, paused."""
        self.require(actor, Role.EXPERT)
        with self.reading() as conn:
            p = self.project_row(conn, project)
            rows = conn.execute(
                select(reviewer_stats, users.c.name)
                .join(users, users.c.id == reviewer_stats.c.user_id)
                .where(reviewer_stats.c.project_id == p.id)
                .order_by(users.c.name)
            ).all()
        k = len(p.labels)
        out = []
        for r in rows:
            s = _skills(_counts(r.counts, k))

            def f(x: float) -> float | None:
                return None if np.isnan(x) else float(x)

            out.append(
                {
                    "name": r.name,
                    "n": float(s.n[0]),
                    "accuracy": f(s.accuracy[0]),
                    "interval": [f(s.low[0]), f(s.high[0])],
                    "quality": f(s.quality[0]),
                    "reason": "no scored answers yet" if s.n[0] == 0 else None,
                    "gold_n": r.gold_n,
                    "gold_correct": r.gold_correct,
                    "paused": r.paused,
                }
            )
        return out

    def resume_reviewer(
        self, actor: Principal, project: str, name: str, reason: str
    ) -> dict[str, Any]:
        """Let a paused reviewer claim again (admin), with a reason (an event)."""
        self.require(actor)
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 2000:
            raise InvalidInput("reason: must be a non-empty text of at most 2,000 characters")
        with self.unit() as u:
            p = self.project_row(u.conn, project)
            row = u.conn.execute(
                select(reviewer_stats.c.id, reviewer_stats.c.paused)
                .join(users, users.c.id == reviewer_stats.c.user_id)
                .where(reviewer_stats.c.project_id == p.id, users.c.name == name)
                .with_for_update(of=reviewer_stats)
            ).first()
            if row is None:
                raise NotFound(f"reviewer {name!r} has no record in project {project!r}")
            if row.paused:
                u.conn.execute(
                    update(reviewer_stats)
                    .where(reviewer_stats.c.id == row.id)
                    .values(paused=False, updated_at=u.now)
                )
                u.emit("reviewer.resumed", p.name, actor, user=name, reason=reason)
            return {"name": name, "paused": False}


def agreement_reviewers(conn: Connection, p: ProjectRow) -> dict[str, Any]:
    """Percent agreement, Fleiss' kappa and Krippendorff's alpha (bootstrap 95%
    intervals) over the items with two or more reviewers' answers."""
    rows = conn.execute(
        select(reviews.c.item_id, reviews.c.user_id, reviews.c.label)
        .join(tasks, tasks.c.id == reviews.c.task_id)
        .outerjoin(gold_tasks, gold_tasks.c.task_id == reviews.c.task_id)
        .where(
            tasks.c.project_id == p.id,
            tasks.c.kind == Route.REVIEW.value,
            gold_tasks.c.task_id.is_(None),
        )
    ).all()
    it = np.array([r.item_id for r in rows], dtype=np.int64)
    _, item_idx, per_item = np.unique(it, return_inverse=True, return_counts=True)
    keep = per_item[item_idx] >= 2
    us = np.array([r.user_id for r in rows], dtype=np.int64)[keep]
    lab = np.array([r.label for r in rows], dtype=np.int64)[keep]
    _, item_idx = np.unique(it[keep], return_inverse=True)
    _, user_idx = np.unique(us, return_inverse=True)
    k = len(p.labels)
    args = (item_idx, user_idx, lab)
    kw: dict[str, Any] = {"n_classes": k, "n_boot": AGREEMENT_BOOT, "random_state": 0}
    return {
        "percent_agreement": percent_agreement(*args, **kw).to_dict(),
        "fleiss_kappa": fleiss_kappa(*args, **kw).to_dict(),
        "krippendorff_alpha": krippendorff_alpha(*args, **kw).to_dict(),
    }
