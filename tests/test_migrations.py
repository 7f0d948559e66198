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


def test_an_older_database_is_brought_up_to_date_keeping_its_rows(db_url: str) -> None:
    """A database at the first revision, with data, migrates to the newest on start."""
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import create_engine

    from loopwise import Loop

    engine = create_engine(db_url)
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        now = datetime.now(UTC).replace(tzinfo=None)
        conn.execute(text(
            "INSERT INTO projects (id, name, labels, input_kind, sensitive, policy_version,"
            " created_at) VALUES (1, 'old', '[\"a\", \"b\"]', 'tabular', '[]', 1, :t)"
        ), {"t": now})
        conn.execute(text(
            "INSERT INTO policy_versions (project_id, version, policy, created_at)"
            " VALUES (1, 1, '{\"threshold\": 0.8}', :t)"
        ), {"t": now})
        conn.execute(text("INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, :h)"),
                     {"h": "0" * 64})
    engine.dispose()
    with Loop(db_url) as loop:
        info = loop.project("old").info
        assert info["policy"]["threshold"] == 0.8 and info["labels"] == ["a", "b"]
        d = loop.project("old").submit([{"data": {}}], proba=[[0.9, 0.1]])
        assert d[0]["route"] in ("auto", "audited")
        assert loop.verify_audit()["ok"]
