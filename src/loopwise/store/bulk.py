"""Batches at driver level: one statement a table, whatever the number of rows.

SQLAlchemy processes every bound value of every row (JSON, timestamps) and, on
PostgreSQL, sends one statement per row (or a many-``VALUES`` statement that the driver
parses anew). For the thousands of rows a submitted batch writes, :func:`insert_rows`
instead takes rows of *driver-ready* values and writes them with one ``executemany``
(SQLite) or one ``COPY ... FROM STDIN`` (PostgreSQL, psycopg). Values are made ready with
what SQLAlchemy itself would store, so they read back the same through SQLAlchemy:

* a JSON column: :func:`json_text` (compact, in the value's own key order);
* any other column whose type processes values (timestamps): :func:`bind_value`, the
  column type's own bind processor.

Primary keys that other rows must point at come first, from :func:`new_ids`. Nothing here
commits; errors are raised as SQLAlchemy's (``IntegrityError`` and so on), as from
``Connection.execute``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Column, Connection, Table, text
from sqlalchemy.exc import DBAPIError

from loopwise.store.tables import items


def json_text(value: Any) -> str:
    """``value`` (JSON data: dicts, lists, str, int, float, bool, None) as a JSON column
    stores it: the value SQLAlchemy's JSON type writes with ``json.dumps``, compact and
    about six times faster.

    ``value`` must hold no NaN or infinity (orjson would write ``null``): the service checks
    what it stores (probabilities are validated; data and meta also go through the audit
    trail's canonical JSON, which refuses them).

    >>> json_text({"b": [1, 2.5, None], "a": "é"})
    '{"b":[1,2.5,null],"a":"é"}'
    >>> json_text({"big": 2**70})  # beyond 64 bits: the standard library
    '{"big": 1180591620717411303424}'
    """
    try:
        return orjson.dumps(value, option=_AS_JSON_DUMPS).decode()
    except TypeError:  # an integer beyond 64 bits, a key that is not a str, not JSON data
        return json.dumps(value)


_AS_JSON_DUMPS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
"""orjson would write these types; ``json.dumps`` (hence SQLAlchemy) refuses them."""


def bind_value(conn: Connection, column: Column[Any], value: Any) -> Any:
    """``value`` as SQLAlchemy sends it to the driver for ``column`` (its type's bind
    processor: a UTC timestamp becomes SQLite's naive text, stays aware for PostgreSQL).
    Call it once per batch for a value every row shares."""
    process = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return value if process is None else process(value)


def new_ids(conn: Connection, table: Table, n: int) -> list[int]:
    """``n`` new primary keys of ``table``, ascending, for rows inserted with them.

    PostgreSQL: from the column's sequence (safe with any number of writers). SQLite: the
    ones after the largest id; the caller holds the write lock (``Database.write``'s
    ``BEGIN IMMEDIATE``) until it has inserted them, so no other writer can take them.
    """
    if n <= 0:
        return []
    name = table.name
    if conn.dialect.name == "postgresql":
        seq = "(SELECT pg_get_serial_sequence(:t, 'id'))::regclass"  # looked up once
        rows = conn.execute(
            text(f"SELECT nextval({seq}) FROM generate_series(1, :n)"), {"t": name, "n": n}
        ).scalars()
        return sorted(rows)
    top = conn.execute(text(f"SELECT max(id) FROM {_quote(conn, name)}")).scalar()
    first = 1 if top is None else int(top) + 1
    return list(range(first, first + n))


def insert_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert ``rows`` (tuples of driver-ready values, in the order of ``columns``).

    Columns left out take NULL (no Python-side defaults run). Values must already be what
    the driver takes: a str for a JSON column (:func:`json_text`), :func:`bind_value` for
    timestamps, plain ``int``/``float``/``bool``/``str``/``None`` otherwise.
    """
    if not rows:
        return
    names = ", ".join(_quote(conn, c) for c in columns)
    target = _quote(conn, table.name)
    if conn.dialect.name != "postgresql":
        marks = ", ".join("?" * len(columns))
        conn.exec_driver_sql(f"INSERT INTO {target} ({names}) VALUES ({marks})", list(rows))
        return
    sql = f"COPY {target} ({names}) FROM STDIN"
    dbapi = conn.dialect.loaded_dbapi
    try:
        driver = conn.connection.driver_connection
        with driver.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(row)
    except dbapi.Error as exc:
        raise DBAPIError.instance(sql, None, exc, dbapi.Error, dialect=conn.dialect) from exc


def items_by_external_id(
    conn: Connection, project_id: int, external_ids: Sequence[str]
) -> dict[str, int]:
    """The ids of the project's items that have one of ``external_ids``.

    The ids travel as one parameter however many there are (an array on PostgreSQL, a JSON
    array on SQLite), and each is one lookup in the ``(project_id, external_id)`` index,
    whatever the planner's statistics say: on PostgreSQL a ``LATERAL ... LIMIT 1`` (which
    the planner cannot flatten into a scan of the project's items), on SQLite an ``IN``
    list.
    """
    if not external_ids:
        return {}
    table = _quote(conn, items.name)
    if conn.dialect.name == "postgresql":
        query = text(
            "SELECT i.external_id, i.id FROM unnest(CAST(:ids AS text[])) AS wanted(value) "
            f"CROSS JOIN LATERAL (SELECT external_id, id FROM {table} "
            "WHERE project_id = :p AND external_id = wanted.value LIMIT 1) AS i"
        )
        ids: Any = list(external_ids)
    else:
        query = text(
            f"SELECT external_id, id FROM {table} "
            "WHERE project_id = :p AND external_id IN (SELECT value FROM json_each(:ids))"
        )
        ids = json_text(list(external_ids))
    return {e: int(i) for e, i in conn.execute(query, {"p": project_id, "ids": ids})}


def _quote(conn: Connection, name: str) -> str:
    return str(conn.dialect.identifier_preparer.quote(name))
