"""Shared fixtures: real databases (SQLite files, PostgreSQL), the app, a live server.

PostgreSQL tests run against ``LOOPWISE_TEST_PG_URL`` (default the local server at
127.0.0.1:5432, database ``test``); each test gets a database of its own, dropped after.
Where no server answers they are skipped, saying so.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

PG_URL = os.environ.get("LOOPWISE_TEST_PG_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_admin_dsn() -> str:
    return PG_URL.replace("postgresql+psycopg://", "postgresql://")


_pg_reason: str | None = None


def pg_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    global _pg_reason
    if _pg_reason is None:
        try:
            import psycopg

            with psycopg.connect(_pg_admin_dsn(), connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _pg_reason = ""
        except Exception as exc:  # any failure means: skip, and say why
            _pg_reason = f"no PostgreSQL at {PG_URL}: {type(exc).__name__}: {exc}"
    return _pg_reason or None


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    reason = pg_available()
    if reason:
        pytest.skip(reason)
    import psycopg

    name = f"lw_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'loopwise.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def loop(db_url: str) -> Iterator[object]:
    from loopwise import Loop

    lp = Loop(db_url, random_state=0)
    yield lp
    lp.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """A real uvicorn process serving loopwise on a database."""

    url: str
    db_url: str
    port: int
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def start(self, workers: int = 1) -> None:
        env = {**os.environ, "LOOPWISE_DATABASE_URL": self.db_url}
        assert self.log is not None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "loopwise.server:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers),
             "--log-level", "warning"],
            env=env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start within 60 s")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush — a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def live_server(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A running server (uvicorn subprocess) on ``db_url``; migrated before it starts."""
    from loopwise.store.db import Database

    db = Database(db_url)
    db.migrate()
    db.dispose()
    port = free_port()
    server = LiveServer(url=f"http://127.0.0.1:{port}", db_url=db_url, port=port,
                        log=tmp_path / "server.log")
    server.start()
    yield server
    server.stop()
