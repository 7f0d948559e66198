"""Engines, transactions and migrations for SQLite and PostgreSQL.

``Database.write()`` opens a write transaction: on SQLite ``BEGIN IMMEDIATE`` (one writer at
a time, no lock upgrade deadlocks), on PostgreSQL READ COMMITTED with row locks taken by the
queries. It commits when the block ends without an exception; a request that answers
"done" has therefore committed. ``Database.read()`` opens a read-only snapshot.

On SQLite the threads of a process also take turns at a lock (one per database file)
before ``BEGIN IMMEDIATE``:
SQLite has one writer at a time anyway, and a thread that finds the database locked sleeps
in SQLite's busy handler (up to 100 ms a try) while others keep taking the lock, so under
load some writers waited for a second or more. The lock hands the turn over at once.
Other processes still meet SQLite's busy timeout.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import NullPool

from loopwise.audit import GENESIS
from loopwise.store.tables import chain_head

MIGRATIONS = Path(__file__).parent / "migrations"
_WRITE = "loopwise_write"
_PG_MIGRATE_LOCK = 724_113  # advisory lock key: one process migrates at a time
_BUSY_SECONDS = 60  # how long a SQLite writer waits for its turn before giving up
_RETURNED = "loopwise_returned_at"  # pool record info: when the connection was checked in
_PING_AFTER_IDLE_SECONDS = 5.0
_write_turns: dict[str, threading.RLock] = {}
_write_turns_guard = threading.Lock()


def _write_turn(path: str) -> threading.RLock:
    """The lock this process's writers to the SQLite file ``path`` take turns at
    (reentrant: a nested write in one thread meets SQLite's own lock, as before)."""
    with _write_turns_guard:
        return _write_turns.setdefault(os.path.realpath(path), threading.RLock())


def _sqlite_setup(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute(f"PRAGMA busy_timeout={_BUSY_SECONDS * 1000}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _pg_setup(engine: Engine) -> None:
    """Ping a pooled connection before use only when it has been idle for a while.

    SQLAlchemy's ``pool_pre_ping`` costs a round trip per transaction. A connection in
    steady use is known to be alive; one that sat idle (the server may have restarted or
    dropped it) is pinged, and replaced when the ping fails. A server lost mid-traffic is
    seen by the next statement, which invalidates the pool (one request fails).
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info[_RETURNED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get(_RETURNED)
        if returned is None or time.monotonic() - returned < _PING_AFTER_IDLE_SECONDS:
            return  # fresh, or in steady use
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as err:
            raise DisconnectionError(f"idle connection lost: {err}") from err


class Database:
    """One database: its engine, transactions and schema.

    Parameters
    ----------
    url : SQLAlchemy URL, e.g. ``sqlite:///loopwise.db`` or
        ``postgresql+psycopg://postgres@127.0.0.1:5432/test``.
    pool_size : connections kept per process (PostgreSQL).
    sqlite_synchronous : ``FULL`` (default, survives power loss) or ``NORMAL``.
    """

    def __init__(self, url: str, *, pool_size: int = 10, sqlite_synchronous: str = "FULL") -> None:
        parsed = make_url(url)
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        self.url = parsed
        self.dialect = parsed.get_backend_name()
        self._write_turn: threading.RLock | None = None
        if self.dialect == "sqlite":
            if sqlite_synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
                raise ValueError(
                    f"sqlite_synchronous must be FULL, NORMAL or EXTRA, got {sqlite_synchronous!r}"
                )
            database = parsed.database or ""
            if database in ("", ":memory:"):
                raise ValueError("loopwise needs a file for SQLite (sqlite:///path.db), not memory")
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(
                parsed,
                connect_args={"check_same_thread": False, "timeout": _BUSY_SECONDS},
                pool_size=pool_size,
                max_overflow=2 * pool_size,
            )
            _sqlite_setup(self.engine, sqlite_synchronous.upper())
            self._write_turn = _write_turn(database)
        elif self.dialect == "postgresql":
            self.engine = create_engine(
                parsed, pool_size=pool_size, max_overflow=2 * pool_size, pool_use_lifo=True
            )
            _pg_setup(self.engine)
        else:
            raise ValueError(
                f"unsupported database {parsed.drivername!r}: use sqlite or postgresql"
            )
        self._writer = self.engine.execution_options(**{_WRITE: True})

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction; commits at the end of the block, rolls back on error."""
        if self._write_turn is None:
            with self._writer.begin() as conn:
                yield conn
            return
        if not self._write_turn.acquire(timeout=_BUSY_SECONDS):
            raise TimeoutError(f"no turn to write to the database in {_BUSY_SECONDS} s")
        try:
            with self._writer.begin() as conn:
                yield conn
        finally:
            self._write_turn.release()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (rolled back at the end)."""
        with self.engine.connect() as conn:
            yield conn

    def migrate(self) -> None:
        """Bring the schema to the newest version (an empty database included).

        Safe when several processes start at once: PostgreSQL takes an advisory lock,
        SQLite a write lock.
        """
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        # A separate, unpooled engine: migrations must not leave state in our pool.
        engine = create_engine(self.url, poolclass=NullPool)
        if self.dialect == "sqlite":
            _sqlite_setup(engine, "FULL")
            engine = engine.execution_options(**{_WRITE: True})
        try:
            with engine.begin() as conn:
                if self.is_postgres:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATE_LOCK})
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                if conn.execute(chain_head.select()).first() is None:
                    conn.execute(insert(chain_head).values(id=1, seq=0, hash=GENESIS))
        finally:
            engine.dispose()

    def dispose(self) -> None:
        self.engine.dispose()
