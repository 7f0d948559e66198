"""The review budget and the order in which waiting work reaches people.

``policy.budget_per_hour`` caps human work: tasks finished in the last hour plus tasks
people hold. Claims beyond it get nothing until the hour frees room, and what waits is
taken in priority order (:func:`task_priority`): experts' work, then items a rule sent to
review, then audits (which keep the promise measurable), then the least confident
predictions (items no model scored after them). With ``over_budget: "accept"`` the queue
never holds more than the budget: a submitted item that would overflow it is accepted
automatically instead, reason ``over_budget`` — outside the promise, counted apart by the
metrics — the most confident of the uncertain items first. Items for experts, rules,
audits and items no model scored always go to people.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from loopwise.domain import Reason, Route
from loopwise.service.base import ProjectRow
from loopwise.store.queue import Workload, workload

WINDOW = timedelta(hours=1)
"""The budget is per hour: a sliding window of finished work."""

EXPERT_PRIORITY, RULE_PRIORITY, AUDIT_PRIORITY, REVIEW_PRIORITY = 0, 10, 20, 100
"""Queue order (smaller first); a review adds ``round(1000 * confidence)``."""

OVERFLOW_REASONS = frozenset({Reason.UNCERTAIN.value, Reason.UNCERTIFIED.value})
"""Reviews that may be accepted automatically when over budget (``over_budget: accept``)."""


def task_priority(
    route: npt.NDArray[np.str_] | npt.NDArray[np.object_],
    reason: npt.NDArray[np.str_] | npt.NDArray[np.object_],
    audited: npt.NDArray[np.bool_],
    confidence: npt.NDArray[np.float64],
    scored: npt.NDArray[np.bool_],
) -> npt.NDArray[np.int64]:
    """Queue priority of each item's task, shape (n,): smaller is claimed first.

    >>> task_priority(np.array(["review", "expert", "review", "auto"]),
    ...               np.array(["uncertain", "novel", "rule:big", "audit_sample"]),
    ...               np.array([False, False, False, True]), np.array([0.61, 0.9, 0.7, 0.99]),
    ...               np.array([True, True, True, True])).tolist()
    [710, 0, 10, 20]
    """
    # Items no model scored cannot be ranked by uncertainty: after the ranked ones, in order.
    conf = np.where(scored, np.nan_to_num(confidence), 1.0)
    out: npt.NDArray[np.int64] = REVIEW_PRIORITY + np.rint(1000 * conf).astype(np.int64)
    out[audited] = AUDIT_PRIORITY
    is_rule = np.char.startswith(np.asarray(reason, dtype=str), "rule:")
    out[is_rule] = RULE_PRIORITY
    out[np.asarray(route, dtype=object) == Route.EXPERT.value] = EXPERT_PRIORITY
    return out


def current_workload(conn: Connection, p: ProjectRow, now: datetime) -> Workload:
    """The project's human work in the budget's window."""
    return workload(conn, p.id, since=now - WINDOW, now=now)


def claim_allowance(conn: Connection, p: ProjectRow, now: datetime) -> int | None:
    """How many more tasks people may take now (None: no budget)."""
    budget = p.policy.budget_per_hour
    if budget is None:
        return None
    w = current_workload(conn, p, now)
    return max(0, budget - w.done - w.in_progress)


def overflow(
    conn: Connection,
    p: ProjectRow,
    now: datetime,
    *,
    candidates: npt.NDArray[np.bool_],
    others: int,
    confidence: npt.NDArray[np.float64],
) -> npt.NDArray[np.bool_]:
    """Which ``candidates`` (n,) to accept automatically because people have no room for
    them (``over_budget: accept``): the budget minus the window's finished, held and waiting
    work minus ``others`` (this batch's tasks that must go to people) is the room; the least
    confident candidates take it."""
    out = np.zeros(candidates.shape, dtype=bool)
    budget = p.policy.budget_per_hour
    if budget is None or p.policy.over_budget != "accept" or not candidates.any():
        return out
    w = current_workload(conn, p, now)
    room = max(0, budget - w.done - w.in_progress - w.waiting - others)
    idx = np.flatnonzero(candidates)
    by_confidence = idx[np.argsort(confidence[idx], kind="stable")]
    out[by_confidence[room:]] = True
    return out
