"""Driver-level batches (``store.bulk``) store what SQLAlchemy would, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from loopwise.store.bulk import bind_value, insert_rows, items_by_external_id, json_text, new_ids
from loopwise.store.db import Database
from loopwise.store.tables import items, projects

DATA: list[Any] = [
    {"x": 1.0, "small": 1e-05, "big": 1e16, "n": -3, "huge": 2**70, "ok": True, "none": None},
    {"text": "é ü ß — 中文 😀", "quote": 'a "b" \\ c\n\t', "nested": {"z": [1, {"y": []}]}},
    {},
]
NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.migrate()
    with database.write() as conn:
        conn.execute(
            insert(projects).values(id=1, name="p", labels=["a", "b"], input_kind="tabular",
                                    sensitive=[], policy_version=1, created_at=NOW)
        )
    yield database
    database.dispose()


def _read(database: Database, ids: list[int]) -> list[tuple[Any, ...]]:
    with database.read() as conn:
        rows = conn.execute(
            select(items.c.external_id, items.c.data, items.c.meta, items.c.created_at)
            .where(items.c.id.in_(ids))
            .order_by(items.c.id)
        ).all()
    return [tuple(r) for r in rows]


def test_rows_read_back_as_sqlalchemy_writes_them(db: Database) -> None:
    with db.write() as conn:
        by_sqlalchemy = conn.execute(
            insert(items).returning(items.c.id, sort_by_parameter_order=True),
            [
                {"project_id": 1, "external_id": f"s-{i}", "data": d, "meta": {"i": i},
                 "created_at": NOW}
                for i, d in enumerate(DATA)
            ],
        ).scalars().all()
        ids = new_ids(conn, items, len(DATA))
        at = bind_value(conn, items.c.created_at, NOW)
        insert_rows(
            conn, items, ("id", "project_id", "external_id", "data", "meta", "created_at"),
            [(ids[i], 1, f"b-{i}", json_text(d), json_text({"i": i}), at)
             for i, d in enumerate(DATA)],
        )
    assert ids == list(range(ids[0], ids[0] + len(DATA))) or db.is_postgres
    assert ids == sorted(ids) and min(ids) > max(by_sqlalchemy)
    ours, theirs = _read(db, ids), _read(db, list(by_sqlalchemy))
    assert [r[1:] for r in ours] == [r[1:] for r in theirs]
    assert [list(r[1]) for r in ours] == [list(d) for d in DATA]  # key order kept
    assert ours[0][1]["huge"] == 2**70 and isinstance(ours[0][1]["huge"], int)
    assert ours[0][3] == NOW


def test_items_by_external_id_finds_only_the_projects_own(db: Database) -> None:
    n = 3000
    with db.write() as conn:
        ids = new_ids(conn, items, n)
        at = bind_value(conn, items.c.created_at, NOW)
        insert_rows(
            conn, items, ("id", "project_id", "external_id", "data", "meta", "created_at"),
            [(ids[i], 1, f"e-{i}", "{}", "{}", at) for i in range(n)],
        )
        wanted = [f"e-{i}" for i in range(0, n, 2)] + ["absent", "e-1'); --"]
        found = items_by_external_id(conn, 1, wanted)
        assert found == {f"e-{i}": ids[i] for i in range(0, n, 2)}
        assert items_by_external_id(conn, 2, wanted) == {}
        assert items_by_external_id(conn, 1, []) == {}


def test_a_duplicate_is_sqlalchemys_integrity_error(db: Database) -> None:
    row = (1, "same", "{}", "{}")
    cols = ("project_id", "external_id", "data", "meta", "created_at")
    with pytest.raises(IntegrityError) as info, db.write() as conn:
        at = bind_value(conn, items.c.created_at, NOW)
        insert_rows(conn, items, cols, [(*row, at), (*row, at)])
    if db.is_postgres:  # what submit's retry on a lost race looks at
        assert getattr(info.value.orig, "sqlstate", None) == "23505"
    assert _read(db, list(range(1, 10))) == []  # rolled back


def test_no_rows_is_no_statement(db: Database) -> None:
    with db.write() as conn:
        insert_rows(conn, items, ("project_id",), [])
        assert new_ids(conn, items, 0) == []
