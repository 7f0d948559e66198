"""Many people and programs at once, against a real server (uvicorn in a subprocess).

No task is ever handed to two people; every item is decided exactly once; the same batch
sent by several clients at once is stored once. Both scenarios share one server per
database (starting one takes seconds) and run in projects of their own.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from itertools import combinations
from typing import Any

import httpx
import pytest

from tests.api.conftest import LABELS, ROLES, Api, item, make_users

pytestmark = pytest.mark.slow

N_ITEMS = 300
N_REVIEWERS = 16
N_CLIENTS = 8
N_BATCH = 40


def test_many_reviewers_and_clients_at_once(live_server: Any, db_url: str) -> None:
    reviewers = [f"rev-{i:02d}" for i in range(N_REVIEWERS)]
    tokens = make_users(db_url, {**ROLES, **dict.fromkeys(reviewers, "reviewer")})
    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        api = Api(http, tokens)
        no_task_is_handed_to_two_reviewers(api, live_server.url, reviewers)
        the_same_batch_sent_at_once_is_stored_once(api, live_server.url)
        assert api.verify()["ok"] is True


def no_task_is_handed_to_two_reviewers(api: Api, url: str, reviewers: list[str]) -> None:
    """300 review items; 16 reviewers, each in its own thread, claim 1-3 tasks and answer
    them until the queue is empty."""
    project = "queue"
    api.make_project(project, threshold=0.9, audit_rate=0.0)
    submitted = api.decisions([item(f"q-{i}", (0.6, 0.4)) for i in range(N_ITEMS)], project)
    assert {d["route"] for d in submitted} == {"review"}
    item_ids = {d["item_id"] for d in submitted}
    assert len(item_ids) == N_ITEMS
    start = threading.Barrier(len(reviewers))

    def work(name: str, seed: int) -> tuple[list[tuple[int, int]], list[int]]:
        """(task_id, item_id) of every task received, and every status (0: the connection
        failed)."""
        rng = random.Random(seed)
        got: list[tuple[int, int]] = []
        statuses: list[int] = []
        headers = {"Authorization": f"Bearer {api.tokens[name]}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
            start.wait()
            try:
                while True:
                    r = c.post(
                        f"/api/v1/projects/{project}/tasks/claim", json={"n": rng.randint(1, 3)}
                    )
                    statuses.append(r.status_code)
                    tasks = r.json()["tasks"] if r.status_code == 200 else []
                    if not tasks:
                        return got, statuses
                    for t in tasks:
                        got.append((t["task_id"], t["item_id"]))
                        r = c.post(
                            f"/api/v1/tasks/{t['task_id']}/submit",
                            json={"label": rng.choice(LABELS), "seconds": 1.5},
                        )
                        statuses.append(r.status_code)
            except httpx.TransportError:
                statuses.append(0)
                return got, statuses

    with ThreadPoolExecutor(len(reviewers)) as pool:
        results = list(pool.map(work, reviewers, range(len(reviewers))))

    received = [{task_id for task_id, _ in got} for got, _ in results]
    for a, b in combinations(range(len(reviewers)), 2):
        both = received[a] & received[b]
        assert not both, f"tasks {sorted(both)} handed to {reviewers[a]} and {reviewers[b]}"
    statuses = [s for _, st in results for s in st]
    assert not [s for s in statuses if s >= 500], Counter(statuses)
    assert set(statuses) == {200}, Counter(statuses)
    every = [pair for got, _ in results for pair in got]
    assert len(every) == N_ITEMS
    assert {item_id for _, item_id in every} == item_ids
    assert sum(1 for r in received if r) > 1, "only one reviewer got work"

    m = api.metrics(project)
    assert m["items"] == N_ITEMS
    assert m["reviews"] == N_ITEMS
    assert m["decisions_by_source"] == {"reviewer": N_ITEMS}
    assert m["queue"] == {**m["queue"], "open": 0, "claimed": 0, "done": N_ITEMS}
    decided = Counter(_item_of(e) for e in api.events("decision.made", project))
    assert set(decided) == item_ids and set(decided.values()) == {1}
    rows = api.export(project)
    assert len(rows) == N_ITEMS
    for row in rows:
        assert len(row["reviews"]) == 1
        assert row["decision"]["source"] == "reviewer"
        assert row["decision"]["label"] == row["reviews"][0]["label"]


def _item_of(event: dict[str, Any]) -> int:
    return int(json.loads(event["body"])["payload"]["item_id"])


def the_same_batch_sent_at_once_is_stored_once(api: Api, url: str) -> None:
    """8 clients send the same 40 external ids at once, half of them in reverse order: on
    PostgreSQL a client that looked before another wrote meets the unique constraint, and
    the two orders may deadlock; every client must still get the stored items, not a 500."""
    project = "dupes"
    api.make_project(project, threshold=0.9, audit_rate=0.0)
    batch = [
        item(f"dup-{i}", (0.95, 0.05) if i % 2 else (0.5, 0.5), meta={"i": i})
        for i in range(N_BATCH)
    ]
    sent = [batch if k % 2 == 0 else batch[::-1] for k in range(N_CLIENTS)]
    start = threading.Barrier(N_CLIENTS)

    def send(records: list[dict[str, Any]]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {api.tokens['service']}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as c:
            start.wait()
            return c.post(f"/api/v1/projects/{project}/items", json={"items": records})

    with ThreadPoolExecutor(N_CLIENTS) as pool:
        replies = list(pool.map(send, sent))

    assert [r.status_code for r in replies] == [200] * N_CLIENTS, [r.text for r in replies]
    answers = []
    for records, r in zip(sent, replies, strict=True):
        decisions = r.json()["decisions"]  # in the order the client sent its batch
        assert [d["external_id"] for d in decisions] == [x["external_id"] for x in records]
        answers.append(
            {d["external_id"]: (d["item_id"], d["route"], d["label"]) for d in decisions}
        )
    assert all(a == answers[0] for a in answers)
    item_of = {ext: v[0] for ext, v in answers[0].items()}
    assert len(set(item_of.values())) == N_BATCH

    rows = api.export(project)
    assert {r["external_id"]: r["item_id"] for r in rows} == item_of
    assert len(rows) == N_BATCH
    m = api.metrics(project)
    assert m["items"] == N_BATCH
    assert m["queue"]["open"] == N_BATCH // 2  # one review task per unsure item
    assert m["decided"] == N_BATCH // 2
    received = api.received(project)  # each item once, from whichever batch won
    assert sorted(e["item_id"] for e in received) == sorted(item_of.values())
