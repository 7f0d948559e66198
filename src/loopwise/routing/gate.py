"""The gate: one vectorised decision per prediction — let it stand, or send it to people.

Version 1 routes on a confidence threshold: ``auto`` when the top class probability is at
or above ``threshold``, else ``review``. A share ``audit_rate`` of the automatic decisions
is also sampled at random (each with the same known probability) for review, so the error
of automatic decisions can be estimated without bias. ``stopped=True`` is the stop switch:
every item goes to people.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from loopwise.domain import Reason, Route
from loopwise.routing.proba import proba_problems


@dataclass(frozen=True)
class RoutedBatch:
    """The gate's answer for n predictions.

    Attributes
    ----------
    route : (n,) str array of ``"auto"`` | ``"review"`` | ``"expert"``
    audited : (n,) bool, an ``auto`` item also sampled for review
    reason : (n,) str array of reason codes (``confident``, ``uncertain``, ``audit_sample``,
        ``stopped``)
    label : (n,) int, the predicted class index
    confidence : (n,) float, the score the threshold was applied to
    inclusion_prob : (n,) float, the probability that the item gets a human label
        (1 for review, ``audit_rate`` for auto items) — the weight estimates need
    """

    route: npt.NDArray[np.str_]
    audited: npt.NDArray[np.bool_]
    reason: npt.NDArray[np.str_]
    label: npt.NDArray[np.int64]
    confidence: npt.NDArray[np.float64]
    inclusion_prob: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.route.shape[0])


class Gate:
    """Route predictions by confidence, with random audits and a stop switch.

    Parameters
    ----------
    threshold : confidence at or above which a prediction is accepted automatically.
    audit_rate : share of automatic decisions also sent to review at random.
    stopped : the stop switch; when true every item goes to review (reason ``stopped``).

    Examples
    --------
    >>> import numpy as np
    >>> gate = Gate(threshold=0.8, audit_rate=1.0)
    >>> b = gate.route(np.array([[0.9, 0.1]]), random_state=0)
    >>> b.route[0], bool(b.audited[0]), b.reason[0]
    ('auto', True, 'audit_sample')
    """

    def __init__(
        self, threshold: float = 0.9, *, audit_rate: float = 0.02, stopped: bool = False
    ) -> None:
        self.threshold = threshold
        self.audit_rate = audit_rate
        self.stopped = stopped

    def _check(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold!r}")
        if not 0.0 <= self.audit_rate <= 1.0:
            raise ValueError(f"audit_rate must be in [0, 1], got {self.audit_rate!r}")

    @property
    def threshold_(self) -> float:
        """The confidence threshold in force."""
        return float(self.threshold)

    def route(
        self,
        proba: npt.ArrayLike,
        *,
        random_state: int | np.random.Generator | None = None,
        validate: bool = True,
    ) -> RoutedBatch:
        """Route each row of ``proba`` (shape (n, k)); ``random_state`` drives the audits."""
        self._check()
        arr = np.asarray(proba, dtype=np.float64)
        if arr.ndim != 2:
            raise ValueError(f"proba must be 2-D (n, k), got shape {arr.shape}")
        if validate:
            problems = proba_problems(arr, arr.shape[1])
            if problems:
                row, msg = problems[0]
                raise ValueError(f"proba row {row}: {msg}")
        n = arr.shape[0]
        label = arr.argmax(axis=1) if n else np.zeros(0, dtype=np.int64)
        confidence = arr.max(axis=1) if n else np.zeros(0)
        rng = np.random.default_rng(random_state)
        auto = np.zeros(n, dtype=bool) if self.stopped else confidence >= self.threshold
        audited = auto & (rng.random(n) < self.audit_rate)
        route = np.where(auto, Route.AUTO.value, Route.REVIEW.value).astype("<U6")
        reason = np.where(auto, Reason.CONFIDENT.value, Reason.UNCERTAIN.value).astype("<U12")
        reason[audited] = Reason.AUDIT_SAMPLE.value
        if self.stopped:
            reason[:] = Reason.STOPPED.value
        inclusion = np.where(auto, self.audit_rate, 1.0)
        return RoutedBatch(
            route=route,
            audited=audited,
            reason=reason,
            label=label.astype(np.int64),
            confidence=confidence.astype(np.float64),
            inclusion_prob=inclusion.astype(np.float64),
        )
