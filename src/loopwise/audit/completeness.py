"""Completeness of the audit trail: the human controls left the records they must.

A chain can be intact and still show control exercised without accountability. This
checks, streaming over the events in order:

* ``decision.overridden`` — a person replaced a decision: ``payload["reason"]`` must be a
  non-blank string, and the actor's role one of ``override_roles`` (admin, expert).
* ``project.stopped`` — the stop switch (every item to people): ``payload["reason"]``
  must be a non-blank string; anyone, the system included, may stop.
* ``project.resumed`` — the switch released: ``payload["reason"]`` must be a non-blank
  string and the actor's role one of ``resume_roles`` (admin). So every stop has a later
  authorised resume, or is still in force (:attr:`CompletenessResult.open_stops`).

Stops and resumes pair up per project. Every other event type is counted and passed over.
Each event is ``(seq, type, actor_role, payload)`` or ``(seq, type, actor_role, payload,
project)``; ``actor_role`` is ``None`` for the system or an unknown actor.

>>> events = [
...     (1, "project.stopped", "admin", {"reason": "drift on group B"}, "triage"),
...     (2, "decision.overridden", "expert", {"reason": "scan misread", "item": 9}, "triage"),
...     (3, "project.resumed", "reviewer", {"reason": "fixed"}, "triage"),
... ]
>>> print(check_completeness(events))  # doctest: +ELLIPSIS
INCOMPLETE at event 3 (role): project.resumed by role 'reviewer' (allowed: admin); the stop ...
>>> check_completeness(events).problem.message.split("; ")[1]
"the stop at event 1 of project 'triage' has no authorised resume"
>>> print(check_completeness(events[:2]))
complete: 2 events, 1 override, 1 stop, 0 resumes; still stopped: 'triage' since event 1
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "COMPLETENESS_KINDS",
    "OVERRIDE",
    "RESUME",
    "STOP",
    "CompletenessChecker",
    "CompletenessProblem",
    "CompletenessResult",
    "check_completeness",
]

OVERRIDE: Final = "decision.overridden"
STOP: Final = "project.stopped"
RESUME: Final = "project.resumed"

COMPLETENESS_KINDS: Final[tuple[str, ...]] = ("reason", "role")
"""Every :attr:`CompletenessProblem.kind`: a required reason is missing or blank; the
actor's role may not do this."""


@dataclass(frozen=True)
class CompletenessProblem:
    """The first event that breaks a completeness rule.

    Attributes
    ----------
    seq : int
        The event.
    kind : str
        ``"reason"`` or ``"role"`` (:data:`COMPLETENESS_KINDS`).
    message : str
        One sentence naming the event type, the actor's role and what is missing.
    """

    seq: int
    kind: str
    message: str


@dataclass(frozen=True)
class CompletenessResult:
    """What :func:`check_completeness` found.

    Attributes
    ----------
    ok : bool
        No problem found.
    n_events, n_overrides, n_stops, n_resumes : int
        Events checked (up to and including the problem, if any), and of each kind.
    open_stops : mapping of project to int
        Projects stopped at the end and the ``seq`` of the stop that began it (a project of
        ``None`` for events without one).
    problem : CompletenessProblem or None
        The first problem, or ``None`` when ``ok``.
    """

    ok: bool
    n_events: int
    n_overrides: int
    n_stops: int
    n_resumes: int
    open_stops: Mapping[str | None, int]
    problem: CompletenessProblem | None

    def __str__(self) -> str:
        if self.problem is not None:
            p = self.problem
            return f"INCOMPLETE at event {p.seq} ({p.kind}): {p.message}"
        text = (
            f"complete: {_count(self.n_events, 'event')}, {_count(self.n_overrides, 'override')}"
            f", {_count(self.n_stops, 'stop')}, {_count(self.n_resumes, 'resume')}"
        )
        if self.open_stops:
            stops = ", ".join(f"{p!r} since event {s}" for p, s in self.open_stops.items())
            text += f"; still stopped: {stops}"
        return text


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _has_reason(payload: object) -> bool:
    if not isinstance(payload, Mapping):
        return False
    reason = payload.get("reason")
    return isinstance(reason, str) and bool(reason.strip())


@dataclass
class CompletenessChecker:
    """The streaming form of :func:`check_completeness`: :meth:`feed` events one at a time.

    Parameters
    ----------
    override_roles : collection of str, default ("admin", "expert")
        Roles allowed to override a decision.
    resume_roles : collection of str, default ("admin",)
        Roles allowed to resume a stopped project.
    open_stops : dict of project to int, optional
        Stops in force before the first event fed (from an earlier check).
    """

    override_roles: Collection[str] = ("admin", "expert")
    resume_roles: Collection[str] = ("admin",)
    open_stops: dict[str | None, int] = field(default_factory=dict)
    n_events: int = field(default=0, init=False)
    n_overrides: int = field(default=0, init=False)
    n_stops: int = field(default=0, init=False)
    n_resumes: int = field(default=0, init=False)
    problem: CompletenessProblem | None = field(default=None, init=False)

    def feed(
        self,
        seq: int,
        type: str,
        actor_role: str | None,
        payload: Mapping[str, Any],
        project: str | None = None,
    ) -> CompletenessProblem | None:
        """Check one event; returns (and keeps) the first problem, if this is it.

        Events after a problem are not checked: the first problem stays.
        """
        if self.problem is not None:
            return None
        self.n_events += 1
        if type == OVERRIDE:
            self.n_overrides += 1
            problem = self._role(seq, type, actor_role, self.override_roles) or self._reason(
                seq, type, actor_role, payload
            )
        elif type == STOP:
            self.n_stops += 1
            problem = self._reason(seq, type, actor_role, payload)
            self.open_stops.setdefault(project, seq)
        elif type == RESUME:
            self.n_resumes += 1
            problem = self._role(seq, type, actor_role, self.resume_roles) or self._reason(
                seq, type, actor_role, payload
            )
            stopped_at = self.open_stops.pop(project, None)
            if problem is not None and stopped_at is not None:
                problem = CompletenessProblem(
                    seq,
                    problem.kind,
                    f"{problem.message}; the stop at event {stopped_at} of project "
                    f"{project!r} has no authorised resume",
                )
        else:
            return None
        self.problem = problem
        return problem

    @staticmethod
    def _role(
        seq: int, type: str, role: str | None, allowed: Collection[str]
    ) -> CompletenessProblem | None:
        if role in allowed:
            return None
        who = "an actor of unknown role" if role is None else f"role {role!r}"
        return CompletenessProblem(
            seq, "role", f"{type} by {who} (allowed: {', '.join(sorted(allowed))})"
        )

    @staticmethod
    def _reason(
        seq: int, type: str, role: str | None, payload: object
    ) -> CompletenessProblem | None:
        if _has_reason(payload):
            return None
        who = "the system or an unknown actor" if role is None else f"role {role!r}"
        return CompletenessProblem(
            seq, "reason", f"{type} by {who} has no reason (payload.reason is missing or blank)"
        )

    def result(self) -> CompletenessResult:
        """What was found so far."""
        return CompletenessResult(
            ok=self.problem is None,
            n_events=self.n_events,
            n_overrides=self.n_overrides,
            n_stops=self.n_stops,
            n_resumes=self.n_resumes,
            open_stops=dict(self.open_stops),
            problem=self.problem,
        )


def check_completeness(
    events: Iterable[Sequence[Any]],
    *,
    override_roles: Collection[str] = ("admin", "expert"),
    resume_roles: Collection[str] = ("admin",),
) -> CompletenessResult:
    """Check that overrides, stops and resumes carry their reasons and authority.

    Parameters
    ----------
    events : iterable of tuples
        ``(seq, type, actor_role, payload)`` or ``(seq, type, actor_role, payload,
        project)`` in sequence order; consumed once, stopping at the first problem.
    override_roles, resume_roles : collection of str
        Who may override a decision (admin, expert) and resume a project (admin).

    Returns
    -------
    CompletenessResult
        Counts, the projects still stopped, and the first problem.
    """
    checker = CompletenessChecker(override_roles=override_roles, resume_roles=resume_roles)
    for event in events:
        if checker.feed(*event) is not None:
            break
    return checker.result()
