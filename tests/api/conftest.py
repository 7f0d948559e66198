"""Fixtures for the REST API tests: an app on each database, a token per role, a project.

Every test here runs on SQLite and on PostgreSQL (through ``db_url``). Users are made with
the in-process ``Loop`` before the app is built; requests go through HTTP, either to an
in-process ``TestClient`` or, for the concurrency tests, to a real uvicorn server.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

import loopwise
from loopwise.config import Settings
from loopwise.server import create_app
from loopwise.store.db import Database
from tests.conftest import PG_URL, pg_available

LABELS = ["benign", "malignant"]
PROJECT = "triage"
ROLES = {
    "admin": "admin",
    "expert": "expert",
    "reviewer": "reviewer",
    "reviewer2": "reviewer",
    "service": "service",
}
"""User name -> role of the users every API test has."""


def make_users(db_url: str, users: dict[str, str]) -> dict[str, str]:
    """Create ``users`` (name -> role) in the database; name -> token."""
    lp = loopwise.Loop(db_url)
    try:
        return {name: lp.create_user(name, role)["token"] for name, role in users.items()}
    finally:
        lp.close()


def item(ext: str | None, proba: Any = (0.99, 0.01), **extra: Any) -> dict[str, Any]:
    """One record for ``POST /items``; ``proba=None`` leaves the probabilities out."""
    rec: dict[str, Any] = {"data": {"x": 1.0}, "meta": {"sex": "f"}, **extra}
    if ext is not None:
        rec["external_id"] = ext
    if proba is not None:
        rec["proba"] = list(proba)
    return rec


@dataclass
class Api:
    """HTTP calls to one app (TestClient) or server (httpx.Client) as a named user."""

    http: httpx.Client
    tokens: dict[str, str]

    def headers(self, user: str | None) -> dict[str, str]:
        return {} if user is None else {"Authorization": f"Bearer {self.tokens[user]}"}

    def call(self, method: str, path: str, user: str | None, **kw: Any) -> httpx.Response:
        headers = {**self.headers(user), **kw.pop("headers", {})}
        return self.http.request(method, f"/api/v1{path}", headers=headers, **kw)

    def ok(self, method: str, path: str, user: str, status: int = 200, **kw: Any) -> Any:
        """The JSON reply of a call that must answer ``status``."""
        r = self.call(method, path, user, **kw)
        assert r.status_code == status, f"{method} {path} -> {r.status_code}: {r.text}"
        return r.json()

    def submit(
        self, records: list[dict[str, Any]], project: str = PROJECT, user: str = "service"
    ) -> httpx.Response:
        return self.call("POST", f"/projects/{project}/items", user, json={"items": records})

    def submit_raw(self, body: str, project: str = PROJECT) -> httpx.Response:
        """Submit a body as sent, e.g. one holding the JSON token ``NaN``."""
        return self.call(
            "POST",
            f"/projects/{project}/items",
            "service",
            content=body,
            headers={"Content-Type": "application/json"},
        )

    def decisions(self, records: list[dict[str, Any]], project: str = PROJECT) -> list[Any]:
        r = self.submit(records, project)
        assert r.status_code == 200, r.text
        out: list[Any] = r.json()["decisions"]
        return out

    def claim(self, user: str, n: int = 1, project: str = PROJECT) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self.ok(
            "POST", f"/projects/{project}/tasks/claim", user, json={"n": n}
        )["tasks"]
        return out

    def answer(self, task_id: int, user: str, label: str) -> httpx.Response:
        return self.call("POST", f"/tasks/{task_id}/submit", user, json={"label": label})

    def metrics(self, project: str = PROJECT) -> dict[str, Any]:
        out: dict[str, Any] = self.ok("GET", f"/projects/{project}/metrics", "admin")
        return out

    def export(self, project: str = PROJECT) -> list[dict[str, Any]]:
        r = self.call("GET", f"/projects/{project}/export", "admin", params={"format": "jsonl"})
        assert r.status_code == 200, r.text
        return [json.loads(line) for line in r.text.splitlines() if line]

    def verify(self) -> dict[str, Any]:
        out: dict[str, Any] = self.ok("GET", "/audit/verify", "admin")
        return out

    def events(self, type: str, project: str = PROJECT) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self.ok(
            "GET", "/audit", "admin", params={"project": project, "type": type, "limit": 1000}
        )["events"]
        return out

    def received(self, project: str = PROJECT) -> list[dict[str, Any]]:
        """Every item entry of the project's ``items.received`` events, in order."""
        return [entry for e in self.events("items.received", project)
                for entry in json.loads(e["body"])["payload"]["items"]]

    def counts(self, project: str = PROJECT) -> tuple[int, int]:
        """(items in the project, events in the audit chain)."""
        return self.metrics(project)["items"], self.verify()["events"]

    def make_project(self, name: str = PROJECT, **policy: Any) -> dict[str, Any]:
        body = {"name": name, "labels": LABELS, "sensitive": ["sex"], "policy": policy}
        out: dict[str, Any] = self.ok("POST", "/projects", "admin", 201, json=body)
        return out


def _pg_admin(sql: str) -> None:
    import psycopg

    dsn = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(scope="session")
def _pg_template() -> Iterator[tuple[str, ThreadPoolExecutor]]:
    """A migrated PostgreSQL database to copy for each test, and a thread that drops the
    copies (DROP DATABASE waits for a checkpoint; the tests need not wait with it)."""
    reason = pg_available()
    if reason:
        pytest.skip(reason)
    name = f"lw_tpl_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    db = Database(f"{PG_URL.rsplit('/', 1)[0]}/{name}")
    db.migrate()
    db.dispose()
    dropper = ThreadPoolExecutor(max_workers=1)
    try:
        yield name, dropper
    finally:
        dropper.shutdown(wait=True)
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(_pg_template: tuple[str, ThreadPoolExecutor]) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, already migrated (overrides the shared
    fixture, which migrates each database from scratch: 4x slower)."""
    template, dropper = _pg_template
    name = f"lw_test_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield f"{PG_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        dropper.submit(_pg_admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def tokens(db_url: str) -> dict[str, str]:
    """A token for each of admin, expert, reviewer, reviewer2 and service."""
    return make_users(db_url, ROLES)


@pytest.fixture
def api_factory(db_url: str, tokens: dict[str, str]) -> Iterator[Callable[..., Api]]:
    """``api_factory(**settings)``: an app on ``db_url`` built with those settings."""
    made: list[tuple[TestClient, Any]] = []

    def make(**settings: Any) -> Api:
        app = create_app(Settings(database_url=db_url, run_jobs=False, **settings))
        client = TestClient(app)
        made.append((client, app))
        return Api(client, tokens)

    yield make
    for client, app in made:
        client.close()
        app.state.service.db.dispose()


@pytest.fixture
def api(api_factory: Callable[..., Api]) -> Api:
    """The app with default settings."""
    return api_factory()


@pytest.fixture
def project(api: Api) -> str:
    """Project ``triage`` (benign/malignant) with threshold 0.9 and no random audits, so a
    confident item is decided automatically and an unsure one goes to review."""
    api.make_project(threshold=0.9, audit_rate=0.0)
    return PROJECT
