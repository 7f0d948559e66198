"""Engines, transactions and migrations for SQLite and PostgreSQL.

``Database.write()`` opens a write transaction: on SQLite ``BEGIN IMMEDIATE`` (one writer at
a time, no lock upgrade deadlocks), on PostgreSQL READ COMMITTED with row locks taken by the
queries. It commits when the block ends without an exception; a request that answers
"done" has therefore committed. ``Database.read()`` opens a read-only snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from loopwise.audit import GENESIS
from loopwise.store.tables import chain_head

MIGRATIONS = Path(__file__).parent / "migrations"
_WRITE = "loopwise_write"
_PG_MIGRATE_LOCK = 724_113  # advisory lock key: one process migrates at a time


def _sqlite_setup(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


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
                connect_args={"check_same_thread": False, "timeout": 60},
                pool_size=pool_size,
                max_overflow=2 * pool_size,
            )
            _sqlite_setup(self.engine, sqlite_synchronous.upper())
        elif self.dialect == "postgresql":
            self.engine = create_engine(
                parsed, pool_size=pool_size, max_overflow=2 * pool_size, pool_pre_ping=True
            )
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
        with self._writer.begin() as conn:
            yield conn

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
