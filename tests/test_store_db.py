"""Pooled PostgreSQL connections: one that sat idle is pinged before use and replaced when
its server side is gone; one in steady use is not pinged."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from loopwise.store import db as store_db
from loopwise.store.db import Database
from tests.conftest import PG_URL


def _drop_connections(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_URL.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))


@pytest.mark.postgres
def test_an_idle_connection_whose_server_side_went_away_is_replaced(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(pg_url)
    try:
        with db.read() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
        _drop_connections(pg_url)
        monkeypatch.setattr(store_db, "_PING_AFTER_IDLE_SECONDS", 0.0)
        with db.read() as conn:  # pinged, found dead, replaced
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        db.dispose()


@pytest.mark.postgres
def test_a_connection_in_steady_use_is_not_pinged(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the ping a dead connection shows at its first statement, once: the pool is
    then renewed."""
    monkeypatch.setattr(store_db, "_PING_AFTER_IDLE_SECONDS", 3600.0)
    db = Database(pg_url)
    try:
        with db.read() as conn:
            conn.execute(text("SELECT 1"))
        _drop_connections(pg_url)
        with pytest.raises(OperationalError), db.read() as conn:
            conn.execute(text("SELECT 1"))
        with db.read() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        db.dispose()
