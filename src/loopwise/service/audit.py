"""Reading, verifying, checkpointing and exporting the audit trail.

The server signs a checkpoint (Merkle root over events ``1..n``) every
``settings.checkpoint_every`` events with an Ed25519 key it keeps in a file:
``settings.audit_key`` (``LOOPWISE_AUDIT_KEY``), or for SQLite, when unset, a key made on
first start next to the database (``<db>.audit-key.pem``, mode 0600). PostgreSQL without
a key writes no checkpoints and says so in ``verify``. The private key is never stored in
the database; its public half is, for verifiers.

An export (:meth:`AuditMixin.export_audit`) is JSONL, one object a line, each with a
``kind``: a ``header``, the public ``key`` s, the ``checkpoint`` s, the ``role`` s of the
stored users, then every ``event`` row — all :func:`verify_export` needs, with no database.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import replace
from itertools import takewhile
from pathlib import Path
from typing import Any

from sqlalchemy import select

from loopwise.audit import (
    Checkpoint,
    TrailProblem,
    TrailResult,
    generate_private_key,
    load_private_key,
    load_public_key,
    private_key_pem,
    verify_trail,
)
from loopwise.config import Settings
from loopwise.errors import Conflict, InvalidInput
from loopwise.service.base import LOCAL, Principal, ServiceBase, utcnow
from loopwise.store.checkpoints import (
    Signer,
    has_key,
    last_tree_size,
    load_checkpoints,
    load_public_keys,
    lock_head,
    public_keys,
    store_key,
    write_checkpoints,
)
from loopwise.store.db import Database
from loopwise.store.events import iter_chain
from loopwise.store.tables import chain_head, events, users

log = logging.getLogger(__name__)

MAX_EVENTS_PAGE = 1000
EXPORT_FORMAT = "loopwise-audit-trail"
NO_KEY = (
    "checkpoints are not signed: set LOOPWISE_AUDIT_KEY (settings.audit_key) to the path of "
    "an Ed25519 private key in PEM, e.g. made with `openssl genpkey -algorithm ed25519 "
    "-out audit-key.pem`, kept outside the database"
)


def default_key_path(db: Database) -> Path | None:
    """Where SQLite keeps its generated key: ``<db file>.audit-key.pem``; None for
    PostgreSQL (which needs ``audit_key`` set)."""
    if db.dialect != "sqlite" or not db.url.database:
        return None
    return (
        Path(db.url.database)
        .expanduser()
        .resolve()
        .with_name(Path(db.url.database).name + ".audit-key.pem")
    )


def _create_key_file(path: Path) -> None:
    """Write a new private key to ``path`` (mode 0600) unless one appears there first."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".audit-key-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(private_key_pem(generate_private_key()))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(tmp, path)  # atomic: never a half-written key at ``path``
    finally:
        os.unlink(tmp)


def load_signer(db: Database, settings: Settings) -> Signer | None:
    """The server's signer from settings (see the module docstring); None when PostgreSQL
    has no key configured.

    Raises
    ------
    InvalidInput
        ``audit_key`` names a file that is missing or not an Ed25519 private key PEM.
    """
    every = settings.checkpoint_every
    if settings.audit_key:
        path = Path(settings.audit_key).expanduser()
    else:
        default = default_key_path(db)
        if default is None:
            return None
        path = default
        if not path.exists():
            _create_key_file(path)
    try:
        key = load_private_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"audit_key: cannot load an Ed25519 private key from {path}: {exc}"
        ) from None
    return Signer(key, every)


def verify_export(lines: Iterable[str], *, max_unchecked: int | None = None) -> TrailResult:
    """Verify an export (:meth:`AuditMixin.export_audit`) with the pure functions only.

    ``max_unchecked`` defaults to the header's ``checkpoint_every`` when it says checkpoints
    were being signed. Signatures are checked against the exported public keys.
    """
    header: dict[str, Any] = {}
    keys, cps, roles = [], [], {}
    rows: list[tuple[int, str, str, str, str]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            kind = obj.pop("kind")
            if kind == "header":
                header = obj
            elif kind == "key":
                keys.append(load_public_key(obj["public_pem"]))
            elif kind == "checkpoint":
                cps.append(Checkpoint.from_dict(obj))
            elif kind == "role":
                roles[obj["name"]] = obj["role"]
            elif kind == "event":
                rows.append((obj["seq"], obj["prev_hash"], obj["hash"], obj["body"], obj["type"]))
            else:
                raise ValueError(f"unknown kind {kind!r}")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"line {n}: not an audit export line ({exc})") from None
    if header.get("format") != EXPORT_FORMAT:
        raise ValueError(f"not a loopwise audit export (no {EXPORT_FORMAT!r} header)")
    if max_unchecked is None and header.get("signing"):
        max_unchecked = int(header["checkpoint_every"])
    return verify_trail(
        rows, cps, keys=keys if keys or cps else None, roles=roles, max_unchecked=max_unchecked
    )


class AuditMixin(ServiceBase):
    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(db, settings)
        self.signer = load_signer(db, settings)
        if self.signer is None:
            log.warning("audit trail: %s", NO_KEY)
        else:
            self._catch_up_checkpoints()

    def _catch_up_checkpoints(self) -> None:
        """Publish the public key, and sign the checkpoints due but missing (a key
        configured on a running trail)."""
        signer = self.signer
        assert signer is not None
        with self.reading() as conn:
            head = int(conn.execute(select(chain_head.c.seq)).scalar() or 0)
            covered = last_tree_size(conn)
            known = has_key(conn, signer.key_id)
        if known and head // signer.every * signer.every <= covered:
            return
        with self.db.write() as conn:
            now = utcnow()
            store_key(conn, signer, now)
            write_checkpoints(conn, signer, lock_head(conn), now)

    def checkpoint_audit(self, actor: Principal) -> dict[str, Any]:
        """Sign a checkpoint at the head of the chain now (admin); returns it (or the last
        one, when the head is already covered)."""
        self.require(actor)
        if self.signer is None:
            raise Conflict(NO_KEY)
        with self.db.write() as conn:
            head = lock_head(conn)
            if head == 0:
                raise Conflict("the audit trail has no events to checkpoint yet")
            write_checkpoints(conn, self.signer, head, utcnow(), at_head=True)
            last = load_checkpoints(conn)[-1]
        return last.to_dict()

    def _roles(self) -> dict[str, str]:
        """Stored users' roles, and the local process's (admin)."""
        with self.reading() as conn:
            rows = conn.execute(select(users.c.name, users.c.role)).all()
        return {LOCAL.name: LOCAL.role.value, **{str(r[0]): str(r[1]) for r in rows}}

    def verify_audit(self, actor: Principal) -> TrailResult:
        """Verify the whole trail: chain, checkpoints (roots, signatures, none missing) and
        completeness (every override and stop with a reason, every resume by an admin).

        Besides, the last event must be the head the store recorded, so that deleting the
        newest events is caught too.
        """
        self.require(actor)
        roles = self._roles()
        with self.reading() as conn:
            # The head first: on PostgreSQL each statement sees what committed before it,
            # so everything up to this head is there to read after it.
            head = conn.execute(select(chain_head.c.seq, chain_head.c.hash)).one()
            cps = [cp for cp in load_checkpoints(conn) if cp.tree_size <= head.seq]
            keys = load_public_keys(conn)
            result = verify_trail(
                takewhile(lambda row: row[0] <= head.seq, iter_chain(conn)),
                cps,
                keys=keys if keys or cps else None,
                roles=roles,
                max_unchecked=None if self.signer is None else self.signer.every,
            )
        if result.ok and ((result.head_seq or 0) != head.seq or result.head_hash != head.hash):
            problem = TrailProblem(
                seq=(result.head_seq or 0) + 1,
                kind="gap",
                message=f"the chain ends at event {result.head_seq or 0} but the recorded "
                f"head is event {head.seq}: events were removed from the end",
            )
            return replace(result, ok=False, problem=problem)
        return result

    def verify_audit_json(self, actor: Principal) -> dict[str, Any]:
        """:meth:`verify_audit` as JSON: ok, events, head, root, checkpoints, the first
        problem, a summary, and whether checkpoints are being signed."""
        r = self.verify_audit(actor)
        problem = None
        if r.problem is not None:
            p = r.problem
            problem = {
                "seq": p.seq,
                "kind": p.kind,
                "message": p.message,
                "checkpoint": p.checkpoint,
            }
        summary = str(r) if self.signer is not None else f"{r}; {NO_KEY}"
        return {
            "ok": r.ok,
            "events": r.n_events,
            "head_seq": r.head_seq,
            "head_hash": r.head_hash,
            "root": r.root,
            "checkpoints": r.n_checkpoints,
            "signatures_checked": r.signatures_checked,
            "signing": self.signer is not None,
            "stopped": {str(k): v for k, v in r.completeness.open_stops.items()},
            "problem": problem,
            "summary": summary,
        }

    def export_audit(self, actor: Principal) -> Iterator[str]:
        """The trail as JSONL lines (admin): header, keys, checkpoints, roles, events.

        Read in one snapshot: checkpoints and keys first, then the events up to the head
        read at the same time, so what is exported verifies on its own.
        """
        self.require(actor)  # now, not when the first line is asked for
        return self._export_lines()

    def _export_lines(self) -> Iterator[str]:
        roles = self._roles()
        with self.reading() as conn:
            head = int(conn.execute(select(chain_head.c.seq)).scalar() or 0)
            cps = [cp for cp in load_checkpoints(conn) if cp.tree_size <= head]
            pems = public_keys(conn)
        dumps = json.dumps
        header = {
            "kind": "header",
            "format": EXPORT_FORMAT,
            "version": 1,
            "head_seq": head,
            "checkpoint_every": self.settings.checkpoint_every,
            "signing": self.signer is not None,
        }
        yield dumps(header) + "\n"
        for key_id, pem in sorted(pems.items()):
            yield dumps({"kind": "key", "key_id": key_id, "public_pem": pem}) + "\n"
        for cp in cps:
            yield dumps({"kind": "checkpoint", **cp.to_dict()}) + "\n"
        for name, role in sorted(roles.items()):
            yield dumps({"kind": "role", "name": name, "role": role}) + "\n"
        with self.reading() as conn:
            for seq, prev, h, body, type_ in takewhile(lambda r: r[0] <= head, iter_chain(conn)):
                yield (
                    dumps(
                        {
                            "kind": "event",
                            "seq": seq,
                            "type": type_,
                            "prev_hash": prev,
                            "hash": h,
                            "body": body,
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )

    def list_events(
        self,
        actor: Principal,
        *,
        project: str | None = None,
        type: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Events in sequence order after ``after``, optionally of one project or type."""
        self.require(actor)
        if not 1 <= limit <= MAX_EVENTS_PAGE:
            raise InvalidInput(f"limit: must be from 1 to {MAX_EVENTS_PAGE}, got {limit}")
        query = select(events).where(events.c.seq > after)
        if project is not None:
            query = query.where(events.c.project == project)
        if type is not None:
            query = query.where(events.c.type == type)
        with self.reading() as conn:
            rows = conn.execute(query.order_by(events.c.seq).limit(limit)).all()
        return [
            {
                "seq": r.seq,
                "type": r.type,
                "project": r.project,
                "actor": r.actor,
                "at": r.at.isoformat(),
                "body": r.body,
                "prev_hash": r.prev_hash,
                "hash": r.hash,
            }
            for r in rows
        ]
