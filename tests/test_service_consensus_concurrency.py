"""Many reviewers at once on one project with overlap (max_reviews 3), over the in-process
loop, on SQLite and PostgreSQL: no item over its maximum, no person twice on an item, no
answer lost. The issue's size (50 reviewers x 5,000 items) runs by hand:
``LOOPWISE_BIG=1 python -m pytest tests/test_service_consensus_concurrency.py``."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

import numpy as np
import pytest
from sqlalchemy import func, select

from loopwise import Loop
from loopwise.config import Settings
from loopwise.loop import Project
from loopwise.store.tables import reviews, tasks

SIZE = (50, 5000) if os.environ.get("LOOPWISE_BIG") else (12, 150)


def _waiting(loop: Loop) -> int:
    with loop.service.db.read() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(tasks)
                .where(tasks.c.kind == "review", tasks.c.state.in_(["open", "claimed"]))
            ).scalar_one()
        )


@pytest.mark.parametrize(("n_reviewers", "n_items"), [SIZE])
def test_concurrent_reviewers_with_overlap(loop: Loop, n_reviewers: int, n_items: int) -> None:
    names = [f"r{i}" for i in range(n_reviewers)]
    for name in names:
        loop.create_user(name, "reviewer")
    project = loop.create_project(
        "crowd",
        labels=["a", "b", "c"],
        policy={"audit_rate": 0.0, "min_reviews": 2, "max_reviews": 3},
    )
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, n_items)
    for start in range(0, n_items, 1000):
        stop = min(n_items, start + 1000)
        project.submit(
            [{"data": {"i": i}} for i in range(start, stop)],
            proba=[[0.4, 0.3, 0.3]] * (stop - start),
        )
    answered: Counter[str] = Counter()
    errors: list[BaseException] = []

    # one connection per reviewer thread (the pool's default suits a server process)
    wide = Loop(settings=Settings(database_url=loop.settings.database_url, pool_size=n_reviewers))
    users = {name: wide.as_user(name) for name in names}

    def work(name: str, seed: int) -> None:
        user = users[name]
        me = Project(user, "crowd")
        r = np.random.default_rng(seed)
        try:
            idle = 0
            while idle < 200:
                got = me.claim(2)
                if not got:
                    if _waiting(loop) == 0:
                        return
                    idle += 1
                    time.sleep(0.005)
                    continue
                idle = 0
                for t in got:
                    item = int(t["item"]["data"]["i"])
                    label = int(truth[item]) if r.random() < 0.8 else int(r.integers(0, 3))
                    user.submit_task(t["task_id"], "abc"[label])
                    answered[name] += 1
        except BaseException as exc:
            errors.append(exc)

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(n, i)) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    wide.close()
    assert not errors, errors[0]
    with loop.service.db.read() as conn:
        rows = conn.execute(select(reviews.c.item_id, reviews.c.user_id)).all()
    per_item = Counter(r.item_id for r in rows)
    assert max(per_item.values()) <= 3  # no item over its maximum
    assert len(set(rows)) == len(rows)  # no person twice on an item
    assert len(rows) == sum(answered.values())  # no answer lost
    assert len(per_item) == n_items and min(per_item.values()) >= 2
    assert _waiting(loop) == 0
    print(f"{n_reviewers} reviewers x {n_items} items: {len(rows)} answers in {elapsed:.1f} s")
