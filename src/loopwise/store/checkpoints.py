"""Signed checkpoints of the audit chain: writing them beside the events, reading them back.

A checkpoint covers events ``1..tree_size`` with a Merkle root (:mod:`loopwise.audit`). The
store writes one whenever the chain passes a multiple of ``every`` events, in the
transaction that appends the event completing it (which holds the chain-head lock), and one
at the head on request. Each row keeps the Merkle accumulator's frontier, so the next
checkpoint reads only the events since the last one. The private key stays with the
server; its public half is stored in ``audit_keys`` for verifiers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, insert, select

from loopwise.audit import (
    Checkpoint,
    MerkleAccumulator,
    event_leaf,
    load_public_key,
    public_key_id,
    public_key_pem,
    sign_checkpoint,
)
from loopwise.store.tables import audit_keys, chain_head, checkpoints, events


@dataclass(frozen=True)
class Signer:
    """The server's signing key and how often it signs (every ``every`` events)."""

    key: Ed25519PrivateKey
    every: int
    key_id: str = field(init=False)

    def __post_init__(self) -> None:
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ValueError(f"checkpoint_every must be a whole number >= 1, got {self.every!r}")
        object.__setattr__(self, "key_id", public_key_id(self.key))

    def due(self, before: int, after: int) -> bool:
        """Whether a chain growing from ``before`` to ``after`` events passes a multiple of
        ``every`` (a checkpoint is due).

        >>> from loopwise.audit import load_private_key
        >>> s = Signer(load_private_key(bytes(32)), every=10)
        >>> s.due(5, 9), s.due(9, 10), s.due(10, 19), s.due(3, 25)
        (False, True, False, True)
        """
        return after // self.every > before // self.every


def lock_head(conn: Connection) -> int:
    """The chain's head ``seq``, locked (PostgreSQL ``FOR UPDATE``) until the transaction
    ends, so no event is appended meanwhile."""
    query = select(chain_head.c.seq).where(chain_head.c.id == 1)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return int(conn.execute(query).scalar_one())


def _last(conn: Connection) -> tuple[int, int, tuple[bytes, ...]]:
    """The last checkpoint's (seq, tree_size, frontier); zeros when there is none."""
    row = conn.execute(
        select(checkpoints.c.seq, checkpoints.c.tree_size, checkpoints.c.frontier)
        .order_by(checkpoints.c.seq.desc())
        .limit(1)
    ).first()
    if row is None:
        return 0, 0, ()
    return int(row.seq), int(row.tree_size), tuple(bytes.fromhex(h) for h in row.frontier)


def has_key(conn: Connection, key_id: str) -> bool:
    """Whether the public key ``key_id`` is stored."""
    return (
        conn.execute(select(audit_keys.c.key_id).where(audit_keys.c.key_id == key_id)).first()
        is not None
    )


def last_tree_size(conn: Connection) -> int:
    """Events covered by the newest checkpoint (0 if none)."""
    return _last(conn)[1]


def _hashes(
    conn: Connection, after: int, upto: int, batch: int = 20_000
) -> Iterator[tuple[int, str]]:
    """``(seq, hash)`` of events ``after+1..upto`` in order, in pages."""
    while after < upto:
        rows = conn.execute(
            select(events.c.seq, events.c.hash)
            .where(events.c.seq > after, events.c.seq <= upto)
            .order_by(events.c.seq)
            .limit(batch)
        ).all()
        if not rows:
            return
        for r in rows:
            yield int(r[0]), str(r[1])
        after = int(rows[-1][0])


def write_checkpoints(
    conn: Connection, signer: Signer, head: int, at: datetime, *, at_head: bool = False
) -> list[Checkpoint]:
    """Sign and store a checkpoint at every multiple of ``signer.every`` up to ``head`` not
    yet covered (and at ``head`` itself if ``at_head``); returns them.

    The caller holds the chain-head lock (:func:`lock_head`, or ``append_events``), and the
    events up to ``head`` are visible in its transaction.
    """
    cp_seq, start, frontier = _last(conn)
    every = signer.every
    sizes = list(range((start // every + 1) * every, head + 1, every))
    if at_head and head > start and (not sizes or sizes[-1] != head):
        sizes.append(head)
    if not sizes:
        return []
    store_key(conn, signer, at)
    acc = MerkleAccumulator(start, frontier)
    stamp, want, out = at.isoformat(), iter(sizes), []
    size = next(want)
    for seq, h in _hashes(conn, start, sizes[-1]):
        acc.append(event_leaf(h))
        if seq == size:
            cp_seq += 1
            cp = sign_checkpoint(Checkpoint(cp_seq, seq, acc.root().hex(), h, stamp), signer.key)
            out.append(cp)
            conn.execute(
                insert(checkpoints).values(**cp.to_dict(), frontier=[f.hex() for f in acc.frontier])
            )
            size = next(want, -1)
    if len(out) != len(sizes):
        raise RuntimeError(f"events up to {sizes[-1]} are not all stored: cannot checkpoint")
    return out


def store_key(conn: Connection, signer: Signer, at: datetime) -> None:
    """Keep the public half of ``signer``'s key for verifiers (once)."""
    if not has_key(conn, signer.key_id):
        conn.execute(
            insert(audit_keys).values(
                key_id=signer.key_id,
                public_pem=public_key_pem(signer.key).decode("ascii"),
                created_at=at,
            )
        )


def load_checkpoints(conn: Connection) -> list[Checkpoint]:
    """Every stored checkpoint, in order."""
    cols = [
        checkpoints.c[f]
        for f in ("seq", "tree_size", "root", "head_hash", "at", "signature", "key_id")
    ]
    rows = conn.execute(select(*cols).order_by(checkpoints.c.seq)).all()
    return [Checkpoint(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in rows]


def public_keys(conn: Connection) -> dict[str, str]:
    """Every public key that signed checkpoints: key id -> SubjectPublicKeyInfo PEM."""
    rows = conn.execute(select(audit_keys.c.key_id, audit_keys.c.public_pem)).all()
    return {str(r[0]): str(r[1]) for r in rows}


def load_public_keys(conn: Connection) -> list[Ed25519PublicKey]:
    """The stored public keys, parsed."""
    return [load_public_key(pem) for pem in public_keys(conn).values()]
