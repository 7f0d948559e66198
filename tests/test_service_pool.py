"""Pool mode in the loop: pool items wait unrouted; a query sends the most informative to
people (cold start: a diverse batch; with a champion: its most uncertain items); their
labels count as ``pool_query`` labels and train models. Real data: breast-cancer cases."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from loopwise import InvalidInput, Loop
from loopwise.demo.data import breast_cancer_records
from loopwise.learning import STRATEGIES
from loopwise.store.tables import items


def answer_all(reviewer: Loop, name: str, truth: dict[int, str]) -> int:
    n = 0
    while tasks := reviewer.project(name).claim(50):
        for t in tasks:
            reviewer.submit_task(t["task_id"], truth[t["item_id"]])
            n += 1
    return n


@pytest.fixture
def pool_project(loop: Loop) -> tuple[Any, dict[int, str], Loop]:
    records, y, labels = breast_cancer_records(random_state=0)
    project = loop.create_project("al", labels=labels)
    out = project.submit([{**r, "pool": True} for r in records[:300]])
    truth = {d["item_id"]: labels[int(c)] for d, c in zip(out, y[:300], strict=True)}
    loop.create_user("rev", "reviewer")
    return project, truth, loop.as_user("rev")


def test_pool_items_wait_unrouted(loop: Loop, pool_project: Any) -> None:
    project, truth, reviewer = pool_project
    m = project.metrics()
    assert m["by_route"] == {"pool": 300} and m["pool"] == {"waiting": 300, "queried": 0}
    assert m["queue"]["open"] == 0 and m["decided"] == 0
    assert reviewer.project("al").claim(5) == []
    item = project.item(next(iter(truth)))
    assert item["prediction"] is None and item["decision"] is None


def test_bad_queries_are_refused_and_write_nothing(loop: Loop, pool_project: Any) -> None:
    project, _, _ = pool_project
    before = len(loop.audit_events(project="al"))
    for n in (0, -3, 301, 2.5, True):
        with pytest.raises(InvalidInput, match="n: must be"):
            loop.service.query_pool(loop.actor, "al", n)
    with pytest.raises(InvalidInput, match="known ones are " + ", ".join(STRATEGIES)):
        loop.service.query_pool(loop.actor, "al", 5, strategy="smartest")
    project.update_policy(strategy="smartest")
    with pytest.raises(InvalidInput, match="unknown strategy 'smartest'"):
        project.query_pool(5)
    assert len(loop.audit_events(project="al")) == before + 1  # the policy change only
    with pytest.raises(InvalidInput, match="pool item is scored when queried"):
        project.submit([{"data": {"x": 1.0}, "pool": True, "proba": [0.5, 0.5]}])
    with pytest.raises(InvalidInput, match="pool: must be true or false"):
        project.submit([{"data": {"x": 1.0}, "pool": "yes"}])


def test_cold_start_then_uncertain_items_under_the_champion(
    loop: Loop, pool_project: Any
) -> None:
    project, truth, reviewer = pool_project
    first = loop.service.query_pool(loop.actor, "al", 40, random_state=0)
    chosen = [t["item_id"] for t in first["tasks"]]
    assert len(set(chosen)) == 40 and first["pool_remaining"] == 260
    assert first["model_version_id"] is None and first["strategy"] == "margin"
    # a diverse first batch: both diagnoses turn up
    assert {truth[i] for i in chosen} == set(truth.values())
    assert answer_all(reviewer, "al", truth) == 40
    m = project.metrics()
    assert m["labels_by_source"]["pool_query"] == 40 and m["pool"]["queried"] == 40
    assert m["by_reason"]["pool_query"] == 40
    model = project.train()
    assert model["status"] == "champion"

    second = loop.service.query_pool(loop.actor, "al", 20, random_state=1)
    picked = {t["item_id"] for t in second["tasks"]}
    assert second["model_version_id"] is not None and not picked & set(chosen)
    # margin: the picked items are the champion's least sure of the pool
    waiting = [i for i in truth if i not in set(chosen)]
    with loop.service.reading() as conn:
        p = loop.service.project_row(conn, "al")
        assert p.champion_id is not None
        mdl = loop.service.load_model(conn, p.champion_id)
        data = dict(conn.execute(select(items.c.id, items.c.data)
                                 .where(items.c.project_id == p.id)).all())
    proba = mdl.predict_proba([data[i] for i in waiting])
    top2 = np.sort(proba, axis=1)[:, -2:]
    margin = dict(zip(waiting, top2[:, 1] - top2[:, 0], strict=True))
    worst_picked = max(margin[i] for i in picked)
    assert all(margin[i] >= worst_picked for i in waiting if i not in picked)
