"""Crash durability: SIGKILL the real server while reviewers are submitting, restart it.

A request that answered 2xx has committed (ARCHITECTURE.md, "Durable by default"). After a
crash in the middle of concurrent review traffic and a restart on the same database:

- every acknowledged review is stored with its label, and is the item's decision;
- every task is done, or open / claimed under a lease, and can be claimed again once the
  lease runs out, so the queue can be finished;
- tasks, reviews, decisions and their audit events agree in number;
- the audit chain verifies (API and CLI), and restarting migrates idempotently.

The kill point is random (``DURABILITY_SEED=n`` repeats it; the seed is printed on failure).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from loopwise import Loop
from loopwise.store.db import Database
from tests.conftest import LiveServer, free_port

pytestmark = pytest.mark.slow

N_ITEMS = 400
N_REVIEWERS = 8
LABELS = ["neg", "pos"]
LEASE_SECONDS = 4
PROJECT = "durable"


def label_for(task_id: int) -> str:
    """The label a reviewer gives a task: fixed by the task, so it can be checked later."""
    return LABELS[zlib.crc32(str(task_id).encode()) % len(LABELS)]


@dataclass
class Traffic:
    """What the reviewer threads saw."""

    acked: dict[int, tuple[int, str]] = field(default_factory=dict)  # task -> (item, label)
    in_flight: set[int] = field(default_factory=set)  # submits with no answer (crash)
    rejected: set[int] = field(default_factory=set)  # 409 after the lease ran out
    claims: list[tuple[int, int, datetime]] = field(default_factory=list)  # task, who, lease
    failures: list[str] = field(default_factory=list)  # anything else unexpected
    errors: list[str] = field(default_factory=list)  # connection errors (expected)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def n_acked(self) -> int:
        with self.lock:
            return len(self.acked)


def reviewer(base: str, who: int, token: str, traffic: Traffic) -> None:
    """Claim → submit until the server goes away (the first connection error ends it).

    A 409 is the right answer only when the lease had run out (a slow machine): the
    lease's end is on the server's clock, which is this machine's.
    """
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        while not traffic.stop.is_set():
            try:
                r = http.post(f"/api/v1/projects/{PROJECT}/tasks/claim", json={"n": 1})
            except httpx.TransportError as exc:
                with traffic.lock:
                    traffic.errors.append(f"claim: {type(exc).__name__}")
                return
            if r.status_code != 200:
                with traffic.lock:
                    traffic.failures.append(f"claim: {r.status_code} {r.text[:300]}")
                return
            got = r.json()["tasks"]
            if not got:
                return
            task_id, item_id = got[0]["task_id"], got[0]["item_id"]
            lease = datetime.fromisoformat(got[0]["lease_expires_at"])
            with traffic.lock:
                traffic.claims.append((task_id, who, lease))
            label = label_for(task_id)
            try:
                r = http.post(
                    f"/api/v1/tasks/{task_id}/submit", json={"label": label, "seconds": 1.5}
                )
            except httpx.TransportError as exc:
                with traffic.lock:
                    traffic.in_flight.add(task_id)
                    traffic.errors.append(f"submit {task_id}: {type(exc).__name__}")
                return
            with traffic.lock:
                if 200 <= r.status_code < 300:
                    traffic.acked[task_id] = (item_id, label)
                    body = r.json()
                    if (body["item_id"], body["label"]) != (item_id, label):
                        traffic.failures.append(f"submit {task_id}: answered {body}")
                elif r.status_code == 409 and datetime.now(UTC) > lease:
                    traffic.rejected.add(task_id)  # a slow machine: fine, not stored
                else:
                    traffic.failures.append(f"submit {task_id}: {r.status_code} {r.text[:300]}")
                    return


def check_no_overlapping_leases(traffic: Traffic) -> None:
    """A task is claimed again only after the previous lease on it ran out."""
    last: dict[int, tuple[int, datetime]] = {}
    for task_id, who, lease in sorted(traffic.claims, key=lambda c: c[2]):
        if task_id in last:
            before, until = last[task_id]
            claimed_at = lease - timedelta(seconds=LEASE_SECONDS)
            assert claimed_at > until, (
                f"task {task_id} claimed by rev{who} at {claimed_at} while rev{before} "
                f"held it until {until}"
            )
        last[task_id] = (who, lease)


def sql(db: Database, query: str, **params: Any) -> list[Any]:
    with db.read() as conn:
        return list(conn.execute(text(query), params).all())


def n_events(db: Database, type: str) -> int:
    return int(sql(db, "SELECT count(*) FROM events WHERE type = :t", t=type)[0][0])


def schema_state(db: Database) -> tuple[list[Any], list[Any]]:
    """The migration version(s) recorded and the audit chain head rows."""
    return (
        sql(db, "SELECT version_num FROM alembic_version"),
        sql(db, "SELECT id, seq, hash FROM chain_head"),
    )


@pytest.fixture
def seed() -> Iterator[int]:
    value = int(os.environ.get("DURABILITY_SEED", random.randrange(2**32)))
    print(f"DURABILITY_SEED={value}")
    yield value


def new_server(db_url: str, log: Path) -> LiveServer:
    """A server on ``db_url`` and a fresh port, not started yet."""
    port = free_port()
    return LiveServer(url=f"http://127.0.0.1:{port}", db_url=db_url, port=port, log=log)


def test_sigkill_mid_review_stream_loses_no_acknowledged_review(
    db_url: str, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    log = tmp_path / "server.log"

    # -- setup in-process: people, a project whose every item goes to review
    loop = Loop(db_url, random_state=seed)
    try:
        admin = loop.create_user("admin", "admin")["token"]
        tokens = [loop.create_user(f"rev{i}", "reviewer")["token"] for i in range(N_REVIEWERS)]
        finisher = loop.create_user("finisher", "reviewer")["token"]
        project = loop.create_project(
            PROJECT,
            labels=LABELS,
            policy={"threshold": 1.0, "audit_rate": 0.0, "lease_seconds": LEASE_SECONDS},
        )
        records = [{"external_id": f"x-{i}", "data": {"x": i}, "meta": {}} for i in range(N_ITEMS)]
        decisions = project.submit(records, proba=[[0.5, 0.5]] * N_ITEMS)
    finally:
        loop.close()
    assert {d["route"] for d in decisions} == {"review"}
    item_ids = {d["item_id"] for d in decisions}

    # -- traffic, then a crash at a random point mid-stream
    kill_after = rng.randint(40, 200)
    server = new_server(db_url, log)
    traffic = Traffic()
    threads = [
        threading.Thread(target=reviewer, args=(server.url, i, t, traffic), daemon=True)
        for i, t in enumerate(tokens)
    ]
    try:
        server.start()
        for th in threads:
            th.start()
        deadline = time.monotonic() + 30
        while traffic.n_acked() < kill_after and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.02))
        server.kill()
        killed_at = time.monotonic()
        for th in threads:
            th.join(40)
        traffic.stop.set()
        assert not any(th.is_alive() for th in threads), "a reviewer thread hung after the kill"
    finally:
        traffic.stop.set()
        server.kill()

    assert not traffic.failures, traffic.failures
    check_no_overlapping_leases(traffic)
    assert kill_after <= len(traffic.acked) < N_ITEMS, (
        f"the kill was not mid-stream: {len(traffic.acked)} acked, wanted >= {kill_after}; "
        f"{log.read_text()[-2000:]}"
    )
    assert traffic.errors, "no reviewer noticed the crash"

    db = Database(db_url, pool_size=2)
    try:
        schema_before = schema_state(db)
        events_before = sql(db, "SELECT count(*) FROM events")[0][0]

        # -- the CLI verifies the chain as the crash left it, while the server restarts on
        # the same database (both migrate on start: they must agree, and change nothing)
        cli = subprocess.Popen(
            [sys.executable, "-m", "loopwise.cli", "audit", "verify", "--db", db_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        server = new_server(db_url, log)
        try:
            try:
                server.start()
            finally:
                out, _ = cli.communicate(timeout=120)
            assert cli.returncode == 0, out.decode()
            assert b"ok" in out.lower(), out.decode()
            assert schema_state(db) == schema_before, "restart changed the schema bookkeeping"
            assert sql(db, "SELECT count(*) FROM events")[0][0] == events_before
            assert len(schema_before[0]) == 1 and len(schema_before[1]) == 1

            http = httpx.Client(
                base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {admin}"}
            )
            with http:
                check_after_crash(db, http, traffic, item_ids)
                held = sql(db, "SELECT count(*) FROM tasks WHERE state = 'claimed'")[0][0]
                expired = n_events(db, "task.expired")

                # -- every unfinished task can be claimed again once leases run out; the
                # finisher gets long leases (the old ones keep theirs)
                r = http.patch(f"/api/v1/projects/{PROJECT}/policy", json={"lease_seconds": 600})
                assert r.status_code == 200, r.text
                time.sleep(max(0.0, killed_at + LEASE_SECONDS + 0.2 - time.monotonic()))
                finish_queue(server.url, finisher, db)
                # each lease the crash left behind ran out and was taken over, on record
                assert n_events(db, "task.expired") - expired == held
                check_all_decided(db, http, traffic, item_ids)
        finally:
            server.stop()

        # -- migrating the finished database again changes nothing
        schema_after = schema_state(db)
        again = Database(db_url)
        again.migrate()
        again.dispose()
        assert schema_state(db) == schema_after
    finally:
        db.dispose()


def check_after_crash(
    db: Database, http: httpx.Client, traffic: Traffic, item_ids: set[int]
) -> None:
    stored_unacked = sql(db, "SELECT count(*) FROM reviews")[0][0] - len(traffic.acked)
    print(
        f"acked={len(traffic.acked)} in_flight={len(traffic.in_flight)} "
        f"stored_unacked={stored_unacked} rejected={len(traffic.rejected)} "
        f"errors={sorted({e.split(': ')[-1] for e in traffic.errors})}"
    )
    # every acknowledged review is stored, with its label, and decides its item
    exported = export(http)
    assert set(exported) == item_ids
    for task_id, (item_id, label) in traffic.acked.items():
        row = exported[item_id]
        assert [r["label"] for r in row["reviews"]] == [label], (task_id, row)
        assert row["decision"] == {"label": label, "source": "reviewer"}, (task_id, row)
    stored = {
        r[0]: (r[1], LABELS[r[2]]) for r in sql(db, "SELECT task_id, item_id, label FROM reviews")
    }
    for task_id, acked in traffic.acked.items():
        assert stored.get(task_id) == acked, f"acknowledged review of task {task_id} lost"
    # only acknowledged or in-flight submissions may have been stored
    assert set(stored) <= set(traffic.acked) | traffic.in_flight
    for task_id in traffic.in_flight & set(stored):  # committed, answer lost in the crash
        assert stored[task_id][1] == label_for(task_id)
    # one sample item through the item route as well
    task_id, (item_id, label) = next(iter(traffic.acked.items()))
    item = http.get(f"/api/v1/projects/{PROJECT}/items/{item_id}")
    assert item.status_code == 200, item.text
    assert item.json()["decision"]["label"] == label
    assert [t["state"] for t in item.json()["tasks"]] == ["done"]

    check_consistent(db)
    # every task not done is open, or claimed under a lease (claimable when it runs out)
    for task_id, state, assignee, lease in sql(
        db, "SELECT id, state, assignee_id, lease_expires_at FROM tasks WHERE state <> 'done'"
    ):
        assert state in ("open", "claimed"), (task_id, state)
        if state == "claimed":
            assert assignee is not None and lease is not None, (task_id, assignee, lease)
    verify = http.get("/api/v1/audit/verify")
    assert verify.status_code == 200 and verify.json()["ok"], verify.text


def check_consistent(db: Database) -> None:
    """Tasks, reviews, decisions and their events agree."""
    n_tasks = sql(db, "SELECT count(*) FROM tasks")[0][0]
    assert n_tasks == N_ITEMS, "a task was lost or duplicated"
    done = sql(db, "SELECT count(*) FROM tasks WHERE state = 'done'")[0][0]
    n_reviews = sql(db, "SELECT count(*) FROM reviews")[0][0]
    assert n_reviews == done
    # each done task has its review, each review its done task; one review an item here
    assert (
        sql(
            db,
            "SELECT count(*) FROM reviews r JOIN tasks t ON t.id = r.task_id "
            "WHERE t.state = 'done' AND t.item_id = r.item_id",
        )[0][0]
        == n_reviews
    )
    assert (
        sql(
            db,
            "SELECT count(*) FROM (SELECT item_id FROM reviews GROUP BY item_id "
            "HAVING count(*) > 1) AS dup",
        )[0][0]
        == 0
    )
    # one reviewer decision per reviewed item, equal to its review
    assert sql(db, "SELECT count(*) FROM decisions")[0][0] == n_reviews
    assert (
        sql(
            db,
            "SELECT count(*) FROM decisions d JOIN reviews r ON r.item_id = d.item_id "
            "WHERE d.current AND d.label = r.label AND d.source = 'reviewer'",
        )[0][0]
        == n_reviews
    )
    # the audit trail records each of them, committed together
    counts = dict(sql(db, "SELECT type, count(*) FROM events GROUP BY type"))
    assert counts.get("review.submitted", 0) == n_reviews
    assert counts.get("decision.made", 0) == n_reviews
    head = sql(db, "SELECT seq FROM chain_head")[0][0]
    assert head == sql(db, "SELECT max(seq) FROM events")[0][0] == sum(counts.values())


def finish_queue(base: str, token: str, db: Database) -> None:
    """A new reviewer claims everything left (expired leases included) and answers it."""
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 15
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        while time.monotonic() < deadline:
            r = http.post(f"/api/v1/projects/{PROJECT}/tasks/claim", json={"n": 100})
            assert r.status_code == 200, r.text
            got = r.json()["tasks"]
            if not got:
                left = sql(db, "SELECT count(*) FROM tasks WHERE state <> 'done'")[0][0]
                if left == 0:
                    return
                time.sleep(0.2)  # a lease has not run out yet
                continue
            with ThreadPoolExecutor(4) as pool:  # one person, several tabs: faster
                answers = list(
                    pool.map(
                        lambda t: http.post(
                            f"/api/v1/tasks/{t['task_id']}/submit",
                            json={"label": label_for(t["task_id"])},
                        ),
                        got,
                    )
                )
            for r in answers:
                assert r.status_code == 200, r.text
    left = sql(db, "SELECT id, state, lease_expires_at FROM tasks WHERE state <> 'done'")
    pytest.fail(f"tasks never became claimable again: {left}")


def check_all_decided(
    db: Database, http: httpx.Client, traffic: Traffic, item_ids: set[int]
) -> None:
    check_consistent(db)
    assert sql(db, "SELECT count(*) FROM tasks WHERE state = 'done'")[0][0] == N_ITEMS
    exported = export(http)
    assert set(exported) == item_ids
    assert all(len(r["reviews"]) == 1 and r["decision"] is not None for r in exported.values())
    for item_id, label in traffic.acked.values():
        assert exported[item_id]["decision"]["label"] == label
    verify = http.get("/api/v1/audit/verify")
    assert verify.status_code == 200 and verify.json()["ok"], verify.text


def export(http: httpx.Client) -> dict[int, dict[str, Any]]:
    r = http.get(f"/api/v1/projects/{PROJECT}/export", params={"format": "jsonl"})
    assert r.status_code == 200, r.text
    rows = [json.loads(line) for line in r.text.splitlines() if line.strip()]
    return {row["item_id"]: row for row in rows}
