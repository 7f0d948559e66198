"""Verify a whole audit trail in one streaming pass: chain, checkpoints, completeness.

:func:`verify_trail` runs :func:`~loopwise.audit.chain.verify_chain` over the stored rows
and, on each event it accepts, extends the Merkle tree (comparing the root at every
checkpoint) and the completeness rules (:mod:`loopwise.audit.completeness`). Memory is
``O(log n)`` in the number of events, plus the users' roles.

What a third party needs: the rows ``(seq, prev_hash, hash, body)``, the checkpoints, and
the server's public key(s).

>>> from loopwise.audit.chain import GENESIS, event_body, link
>>> from loopwise.audit.checkpoint import Checkpoint, load_private_key, sign_checkpoint
>>> bodies = [event_body(seq=i, type="item.received", at="2024-01-01T00:00:00Z",
...                      actor=None, project="triage", payload={"item": i}) for i in (1, 2, 3)]
>>> hashes = link(GENESIS, bodies)
>>> rows = list(zip((1, 2, 3), [GENESIS, *hashes[:2]], hashes, bodies))
>>> good = verify_trail(rows)
>>> key = load_private_key(bytes(range(32)))
>>> cp = sign_checkpoint(Checkpoint(1, 3, good.root, good.head_hash, "2024-01-01T00:01:00Z"), key)
>>> print(verify_trail(rows, [cp], keys=[key.public_key()]))  # doctest: +ELLIPSIS
ok: 3 events, head ..., root ..., 1 checkpoint (signatures checked)
>>> forged = Checkpoint(1, 3, "0" * 64, good.head_hash, cp.at, cp.signature, cp.key_id)
>>> print(verify_trail(rows, [forged], keys=[key.public_key()]))
BROKEN at event 3 (signature): checkpoint 1 was changed after it was signed
>>> unsigned = verify_trail(rows, [forged])  # without keys the root is still checked
>>> unsigned.problem.kind, unsigned.problem.checkpoint, unsigned.signatures_checked
('root', 1, False)
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from loopwise.audit.chain import GENESIS, PROBLEM_KINDS, verify_chain
from loopwise.audit.checkpoint import Checkpoint, public_key_id, verify_checkpoint
from loopwise.audit.completeness import (
    COMPLETENESS_KINDS,
    OVERRIDE,
    RESUME,
    STOP,
    CompletenessChecker,
    CompletenessResult,
)
from loopwise.audit.merkle import MerkleAccumulator

__all__ = ["TRAIL_PROBLEM_KINDS", "USER_CREATED", "TrailProblem", "TrailResult", "verify_trail"]

USER_CREATED: Final = "user.created"
"""The event that gives a user's role: ``payload["name"]`` and ``payload["role"]``."""

TRAIL_PROBLEM_KINDS: Final[tuple[str, ...]] = (
    *PROBLEM_KINDS,
    "checkpoint",
    "signature",
    "root",
    *COMPLETENESS_KINDS,
)
"""Every :attr:`TrailProblem.kind`: the chain's (``gap``, ``order``, ``prev_hash``,
``hash``, ``body``); ``checkpoint`` (numbers or sizes out of order); ``signature``
(unsigned, unknown key, or changed after signing); ``root`` (the Merkle root differs from
the checkpoint's); the completeness rules' (``reason``, ``role``)."""

_WATCHED: Final = frozenset((OVERRIDE, STOP, RESUME, USER_CREATED))
_PATTERNS: Final = tuple(f'"type":"{t}"' for t in sorted(_WATCHED))


@dataclass(frozen=True)
class TrailProblem:
    """The first problem of a trail.

    Attributes
    ----------
    seq : int
        The event where it shows (for a checkpoint problem, the checkpoint's last event;
        for a missing checkpoint, the first event it would cover).
    kind : str
        One of :data:`TRAIL_PROBLEM_KINDS`.
    message : str
        One human-readable sentence.
    checkpoint : int or None
        The checkpoint's number, for ``checkpoint``, ``signature`` and ``root`` problems.
    """

    seq: int
    kind: str
    message: str
    checkpoint: int | None = None


@dataclass(frozen=True)
class TrailResult:
    """What :func:`verify_trail` found; pass it as ``since`` to verify what comes after.

    Attributes
    ----------
    ok : bool
        No problem found.
    n_events : int
        Events verified by this call (before the problem, if any).
    head_seq : int or None
        The last verified event (also of earlier calls via ``since``); ``None`` if none.
    head_hash : str
        Its hash (:data:`~loopwise.audit.chain.GENESIS` if none).
    root : str
        Merkle root over events ``1..head_seq``, 64 hex digits.
    frontier : tuple of bytes
        The Merkle tree's compact state at the head (to resume).
    n_checkpoints : int
        Checkpoints verified by this call.
    last_checkpoint : Checkpoint or None
        The last verified checkpoint (also of earlier calls).
    signatures_checked : bool
        Whether signatures were checked (``keys`` given).
    roles : mapping of str to str
        Users' roles learned from ``user.created`` events so far.
    completeness : CompletenessResult
        Counts of this call and the projects still stopped at the head.
    problem : TrailProblem or None
        The first problem, or ``None`` when ``ok``.
    """

    ok: bool
    n_events: int
    head_seq: int | None
    head_hash: str
    root: str
    frontier: tuple[bytes, ...]
    n_checkpoints: int
    last_checkpoint: Checkpoint | None
    signatures_checked: bool
    roles: Mapping[str, str]
    completeness: CompletenessResult
    problem: TrailProblem | None

    def __str__(self) -> str:
        if self.problem is not None:
            p = self.problem
            return f"BROKEN at event {p.seq} ({p.kind}): {p.message}"
        events = "event" if self.n_events == 1 else "events"
        cps = "checkpoint" if self.n_checkpoints == 1 else "checkpoints"
        checked = "signatures checked" if self.signatures_checked else "signatures NOT checked"
        return (
            f"ok: {self.n_events} {events}, head {self.head_hash[:16]}, root {self.root[:16]}, "
            f"{self.n_checkpoints} {cps} ({checked})"
        )


def _checkpoint_problems(
    checkpoints: Iterable[Checkpoint],
    last: Checkpoint | None,
    verified_size: int,
    keys: Mapping[str, Ed25519PublicKey] | None,
    max_unchecked: int | None,
) -> tuple[list[Checkpoint], TrailProblem | None]:
    """The checkpoints after ``last`` in order, checked for numbering, sizes and
    signatures, and the first problem."""
    given = list(checkpoints)
    for cp in given:
        if not isinstance(cp, Checkpoint):
            raise TypeError(f"checkpoints must be Checkpoint objects, got {type(cp).__name__}")
    todo: list[Checkpoint] = []
    prev = last
    for cp in sorted(given, key=lambda c: c.seq):
        if last is not None and cp.seq <= last.seq:
            continue  # verified by the call that gave ``since``
        if prev is not None and cp.seq == prev.seq:
            if cp == prev:
                continue  # the same checkpoint from two sources (the store, a saved copy)
            return todo, _cp_problem(
                cp,
                "checkpoint",
                f"checkpoint {cp.seq} exists in two different versions (covering "
                f"{prev.tree_size} and {cp.tree_size} events)",
            )
        prev_size = 0 if prev is None else prev.tree_size
        if cp.seq != (want := 1 if prev is None else prev.seq + 1):
            return todo, TrailProblem(  # at the first event the missing one would cover
                seq=prev_size + 1,
                kind="checkpoint",
                message=f"checkpoint {want} is missing",
                checkpoint=want,
            )
        if cp.tree_size <= prev_size:
            return todo, _cp_problem(
                cp,
                "checkpoint",
                f"checkpoint {cp.seq} covers {cp.tree_size} events, no more than checkpoint "
                f"{want - 1} ({prev_size})",
            )
        if max_unchecked is not None and cp.tree_size - prev_size > max_unchecked:
            return todo, TrailProblem(
                seq=prev_size + max_unchecked + 1,
                kind="checkpoint",
                message=_unchecked_message(prev_size, cp.tree_size, max_unchecked),
                checkpoint=cp.seq,
            )
        if cp.tree_size <= verified_size:
            raise ValueError(
                f"checkpoint {cp.seq} covers events up to {cp.tree_size}, which `since` "
                "verified without it: verify from the start"
            )
        if keys is not None:
            if not cp.signed:
                return todo, _cp_problem(cp, "signature", f"checkpoint {cp.seq} is not signed")
            key = keys.get(cp.key_id)
            if key is None:
                return todo, _cp_problem(
                    cp,
                    "signature",
                    f"checkpoint {cp.seq} is signed by an unknown key {cp.key_id[:16]}",
                )
            if not verify_checkpoint(cp, key):
                return todo, _cp_problem(
                    cp, "signature", f"checkpoint {cp.seq} was changed after it was signed"
                )
        todo.append(cp)
        prev = cp
    return todo, None


def _unchecked_message(covered: int, head: int, max_unchecked: int) -> str:
    return (
        f"events {covered + 1}..{head} are covered by no checkpoint: more than "
        f"{max_unchecked} (were checkpoints deleted?)"
    )


def _cp_problem(cp: Checkpoint, kind: str, message: str) -> TrailProblem:
    return TrailProblem(seq=cp.tree_size, kind=kind, message=message, checkpoint=cp.seq)


def verify_trail(
    rows: Iterable[Sequence[Any]],
    checkpoints: Iterable[Checkpoint] = (),
    *,
    keys: Iterable[Ed25519PublicKey] | None = None,
    roles: Mapping[str, str] | None = None,
    since: TrailResult | None = None,
    max_unchecked: int | None = None,
) -> TrailResult:
    """Check a stored audit trail, streaming, and name the first problem.

    Parameters
    ----------
    rows : iterable of tuples
        ``(seq, prev_hash, hash, body)`` or ``(seq, prev_hash, hash, body, type)`` in
        stored order, from event 1 (or the one after ``since``); consumed once.
    checkpoints : iterable of Checkpoint
        Numbered 1, 2, ... with none missing, each covering more events than the one
        before; any order. Add the ones you hold from elsewhere (a published or exported
        copy): an identical copy is ignored, a different one is a problem, and the trail
        must reach the last, so a deleted or rewritten end is caught.
    keys : iterable of Ed25519PublicKey, optional
        The server's public keys: every checkpoint must be signed by one of them. ``None``
        skips signatures (roots and head hashes are still checked; the result says so).
    roles : mapping of str to str, optional
        Roles of actors the trail does not create (a ``user.created`` event in the trail
        takes precedence), for the completeness rules.
    since : TrailResult, optional
        An ``ok`` result of verifying the events before ``rows``; checkpoints it verified
        are skipped.
    max_unchecked : int, optional
        Most events allowed before the first checkpoint, between two, and after the last:
        the interval at which the store writes them, plus slack. Catches checkpoints
        deleted together with the events they covered (only older than that interval).

    Returns
    -------
    TrailResult
        First the checkpoints are checked: consecutive numbers, growing sizes, gaps of at
        most ``max_unchecked``, signatures. Then per event: the chain
        (:func:`~loopwise.audit.chain.verify_chain`: sequence, links, canonical body, hash,
        a checkpoint's ``head_hash``), the Merkle root at each checkpoint's ``tree_size``,
        and the completeness rules. The trail must reach the last checkpoint, and end at
        most ``max_unchecked`` events after it.

    Raises
    ------
    ValueError
        ``since`` is not ``ok``, a checkpoint after ``since`` covers only events ``since``
        verified without it, or ``max_unchecked`` is below 1.
    """
    if since is not None and not since.ok:
        raise ValueError("since must be an ok result")
    acc = (
        MerkleAccumulator()
        if since is None
        else MerkleAccumulator(since.head_seq or 0, since.frontier)
    )
    start_seq = acc.size + 1
    start_hash = GENESIS if since is None else since.head_hash
    last_cp = None if since is None else since.last_checkpoint
    learned = {} if since is None else dict(since.roles)
    given_roles = {} if roles is None else dict(roles)
    checker = CompletenessChecker(
        open_stops={} if since is None else dict(since.completeness.open_stops)
    )
    key_map = None if keys is None else {public_key_id(k): k for k in keys}
    if max_unchecked is not None and (isinstance(max_unchecked, bool) or max_unchecked < 1):
        raise ValueError(f"max_unchecked must be an int >= 1, got {max_unchecked!r}")
    todo, problem = _checkpoint_problems(checkpoints, last_cp, acc.size, key_map, max_unchecked)
    n_checkpoints = 0

    def finish(head_hash: str) -> TrailResult:
        return TrailResult(
            ok=problem is None,
            n_events=acc.size - start_seq + 1,
            head_seq=acc.size or None,
            head_hash=head_hash,
            root=acc.root().hex(),
            frontier=acc.frontier,
            n_checkpoints=n_checkpoints,
            last_checkpoint=last_cp,
            signatures_checked=key_map is not None,
            roles=learned,
            completeness=checker.result(),
            problem=problem,
        )

    if problem is not None:
        return finish(start_hash)

    pending = iter(todo)
    next_cp = next(pending, None)
    next_size = 0 if next_cp is None else next_cp.tree_size

    def accept(row: Sequence[Any], leaf: bytes) -> TrailProblem | None:
        """Completeness and checkpoint checks of a row the chain accepted, before its leaf
        joins the tree (the slow path: watched event types and checkpoints)."""
        nonlocal next_cp, next_size, last_cp, n_checkpoints
        seq = row[0]
        obj = json.loads(row[3])
        type_ = obj.get("type")
        payload = obj.get("payload")
        if type_ == USER_CREATED:
            if isinstance(payload, dict):
                name, role = payload.get("name"), payload.get("role")
                if isinstance(name, str) and isinstance(role, str):
                    learned[name] = role
        elif type_ in _WATCHED:  # else not watched, or a body that only mentions the type
            actor = obj.get("actor")
            role = learned.get(actor, given_roles.get(actor)) if isinstance(actor, str) else None
            found = checker.feed(seq, type_, role, payload, obj.get("project"))
            if found is not None:
                return TrailProblem(seq=found.seq, kind=found.kind, message=found.message)
        if seq == next_size and next_cp is not None:
            cp, grown = next_cp, MerkleAccumulator(acc.size, acc.frontier)
            grown.append(leaf)
            root = grown.root().hex()
            if root != cp.root:
                return _cp_problem(
                    cp,
                    "root",
                    f"the Merkle root of events 1..{seq} is {root[:16]}, checkpoint "
                    f"{cp.seq} says {cp.root[:16]}",
                )
            last_cp, n_checkpoints = cp, n_checkpoints + 1
            next_cp = next(pending, None)
            next_size = 0 if next_cp is None else next_cp.tree_size
        return None

    found: TrailProblem | None = None
    found_prev = start_hash

    def tap() -> Iterator[Sequence[Any]]:
        """Yield the rows; check each when the chain asks for the next (it accepted it)."""
        nonlocal found, found_prev
        sha256, fromhex, append = hashlib.sha256, bytes.fromhex, acc.append
        watched, patterns = _WATCHED, _PATTERNS
        last: Sequence[Any] | None = None
        end: Sequence[Any] = []  # a sentinel no stored row can be
        for row in itertools.chain(rows, (end,)):
            if last is not None:
                leaf = sha256(b"\x00" + fromhex(last[2])).digest()
                if (
                    last[0] == next_size
                    or (last[4] in watched if len(last) == 5 else _mentions(last[3], patterns))
                ) and (found := accept(last, leaf)) is not None:
                    found_prev = last[1]
                    return
                append(leaf)
            if row is end:
                return
            yield row
            last = row

    chain = verify_chain(
        tap(),
        start_seq=start_seq,
        start_hash=start_hash,
        checkpoints={cp.tree_size: cp.head_hash for cp in todo},
    )
    if found is not None:
        problem = found
        return finish(found_prev)
    if chain.problem is not None:
        p = chain.problem  # always at the event after the last verified one
        problem = TrailProblem(seq=start_seq + chain.n_events, kind=p.kind, message=p.message)
    elif max_unchecked is not None:
        covered = 0 if last_cp is None else last_cp.tree_size
        if acc.size - covered > max_unchecked:
            problem = TrailProblem(
                seq=covered + max_unchecked + 1,
                kind="checkpoint",
                message=_unchecked_message(covered, acc.size, max_unchecked),
            )
    return finish(chain.head_hash)


def _mentions(body: object, patterns: tuple[str, ...]) -> bool:
    return isinstance(body, str) and any(p in body for p in patterns)
