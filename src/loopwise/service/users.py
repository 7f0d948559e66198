"""People and their tokens. Tokens are shown once and stored only as SHA-256 hashes.

Each process remembers a token it has checked for ``auth_cache_seconds`` (2 s), so a
reviewer's requests do not each read the users table. The bound: a token rotated, or a
user deactivated, by another process (or in the database directly) still works here for at
most that long; ``rotate_token`` in this process takes effect at once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from loopwise.config import Settings
from loopwise.domain import Role
from loopwise.errors import Conflict, InvalidInput, NotFound, Unauthorized
from loopwise.service.base import Principal, ServiceBase
from loopwise.store.db import Database
from loopwise.store.tables import users

_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")


def hash_token(token: str) -> str:
    """The stored form of a token (tokens are 256-bit random, so one SHA-256 suffices)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "lw_" + secrets.token_urlsafe(32)


class UsersMixin(ServiceBase):
    auth_cache_seconds: float = 2.0
    """How long this process trusts a token it has checked (0: not at all)."""
    auth_cache_size: int = 10_000
    """Most tokens remembered; the cache starts afresh when it is full."""

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(db, settings)
        self._principals: dict[str, tuple[float, Principal]] = {}
        """Token hash -> (monotonic time until which it is trusted, its user)."""

    def create_user(self, actor: Principal, name: str, role: str) -> dict[str, Any]:
        """Create a user (admin); the reply holds the token, which is never shown again."""
        self.require(actor)
        if not isinstance(name, str) or not _USER_NAME.fullmatch(name):
            raise InvalidInput(f"name: {name!r} must be 1-100 letters, digits, '_', '.', '@', '-'")
        try:
            r = Role(role)
        except ValueError:
            raise InvalidInput(
                f"role: {role!r} is not a role; known: {[x.value for x in Role]}"
            ) from None
        token = new_token()
        try:
            with self.unit() as u:
                uid = u.conn.execute(
                    insert(users)
                    .values(
                        name=name,
                        role=r.value,
                        token_hash=hash_token(token),
                        active=True,
                        created_at=u.now,
                    )
                    .returning(users.c.id)
                ).scalar_one()
                u.emit("user.created", None, actor, user_id=uid, name=name, role=r.value)
        except IntegrityError:
            raise Conflict(f"user {name!r} already exists") from None
        return {"id": uid, "name": name, "role": r.value, "token": token}

    def rotate_token(self, actor: Principal, name: str) -> dict[str, Any]:
        """A new token for a user (admin); the old one stops working."""
        self.require(actor)
        token = new_token()
        with self.unit() as u:
            res = u.conn.execute(
                update(users)
                .where(users.c.name == name)
                .values(token_hash=hash_token(token))
                .returning(users.c.id, users.c.role)
            ).first()
            if res is None:
                raise NotFound(f"user {name!r} not found")
            u.emit("user.token_rotated", None, actor, user_id=res.id, name=name)
        for key, (_, who) in list(self._principals.items()):
            if who.id == res.id:
                self._principals.pop(key, None)
        return {"id": res.id, "name": name, "role": res.role, "token": token}

    def list_users(self, actor: Principal) -> list[dict[str, Any]]:
        self.require(actor)
        with self.reading() as conn:
            return [
                {
                    "id": r.id,
                    "name": r.name,
                    "role": r.role,
                    "active": r.active,
                    "created_at": r.created_at.isoformat(),
                }
                for r in conn.execute(select(users).order_by(users.c.id))
            ]

    def authenticate(self, token: str | None) -> Principal:
        """The user holding ``token``; Unauthorized when there is none or it is unknown."""
        if not token:
            raise Unauthorized("missing token: send 'Authorization: Bearer <token>'")
        key = hash_token(token)
        now = time.monotonic()
        hit = self._principals.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.reading() as conn:
            row = conn.execute(
                select(users.c.id, users.c.name, users.c.role, users.c.active).where(
                    users.c.token_hash == key
                )
            ).first()
        if row is None or not row.active:
            self._principals.pop(key, None)
            raise Unauthorized("invalid token")
        who = Principal(id=row.id, name=row.name, role=Role(row.role))
        if self.auth_cache_seconds > 0:
            if len(self._principals) >= self.auth_cache_size:
                self._principals.clear()
            self._principals[key] = (now + self.auth_cache_seconds, who)
        return who

    def cached_principal(self, token: str | None) -> Principal | None:
        """The user holding ``token`` if this process checked it within the last
        ``auth_cache_seconds``, without touching the database; else None (then call
        :meth:`authenticate`)."""
        if not token:
            return None
        hit = self._principals.get(hash_token(token))
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def principal(self, name: str) -> Principal:
        """The stored user called ``name`` (for the in-process library)."""
        with self.reading() as conn:
            row = conn.execute(
                select(users.c.id, users.c.name, users.c.role).where(users.c.name == name)
            ).first()
        if row is None:
            raise NotFound(f"user {name!r} not found")
        return Principal(id=row.id, name=row.name, role=Role(row.role))
