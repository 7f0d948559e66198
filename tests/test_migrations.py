"""Migrations: an empty database comes up to the newest schema, again and again, and the
migrations describe exactly the tables the code uses."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from loopwise.store.db import MIGRATIONS, Database
from loopwise.store.tables import metadata


def test_migrate_is_idempotent_and_matches_the_tables(db_url: str) -> None:
    db = Database(db_url)
    db.migrate()
    db.migrate()  # a second start changes nothing
    with db.engine.connect() as conn:
        assert set(metadata.tables) <= set(inspect(conn).get_table_names())
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == [], diff
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        head = ScriptDirectory.from_config(_config()).get_current_head()
        assert version == head
        assert conn.execute(text("SELECT seq FROM chain_head")).scalar() == 0
    db.dispose()


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def test_sqlite_runs_in_wal_with_foreign_keys(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    db.migrate()
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    db.dispose()


def test_memory_databases_are_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="file"):
        Database("sqlite://")
