"""Many reviewers through the in-process loop: overlap and consensus, blind tasks, experts
on disagreement, gold items, skill and pausing, assignment caps, agreement in metrics."""

from __future__ import annotations

from typing import Any

import pytest

from loopwise import Loop
from loopwise.errors import InvalidInput

LABELS = ["benign", "malignant"]
NAMES = ("ann", "bob", "cat", "dan")


@pytest.fixture
def people(loop: Loop) -> dict[str, Loop]:
    for name in NAMES:
        loop.create_user(name, "reviewer")
    loop.create_user("eve", "expert")
    return {"admin": loop, **{n: loop.as_user(n) for n in (*NAMES, "eve")}}


def make(loop: Loop, n: int = 1, **policy: Any) -> list[dict[str, Any]]:
    p = loop.create_project("triage", labels=LABELS, policy={"audit_rate": 0.0, **policy})
    return p.submit([{"data": {"x": i}} for i in range(n)], proba=[[0.6, 0.4]] * n)


def answer(who: Loop, label: str) -> dict[str, Any]:
    (task,) = who.project("triage").claim()
    return who.submit_task(task["task_id"], label)


def sound(loop: Loop) -> None:
    assert loop.verify_audit()["ok"] is True


def test_defaults_keep_one_answer_one_decision(people: dict[str, Loop]) -> None:
    make(people["admin"])
    reply = answer(people["ann"], "malignant")
    assert (reply["label"], reply["decided_by"]) == ("malignant", "reviewer")
    assert "consensus" not in reply and people["bob"].project("triage").claim() == []


def test_two_agreeing_reviewers_settle_by_consensus(people: dict[str, Loop]) -> None:
    (d,) = make(people["admin"], min_reviews=2, max_reviews=3)
    first = answer(people["ann"], "malignant")
    assert first["decided_by"] is None and first["label"] is None
    assert first["consensus"]["status"] == "another"
    assert people["ann"].project("triage").claim() == []  # never the same person twice
    (task,) = people["bob"].project("triage").claim()
    assert "answers" not in task  # blind: reviewers never see earlier answers
    second = people["bob"].submit_task(task["task_id"], "malignant")
    assert (second["label"], second["decided_by"]) == ("malignant", "consensus")
    assert second["consensus"]["confidence"] >= 0.95
    item = people["admin"].project("triage").item(d["item_id"])
    assert [r["user"] for r in item["reviews"]] == ["ann", "bob"]
    assert item["decision"]["source"] == "consensus"
    assert people["cat"].project("triage").claim() == []
    sound(people["admin"])


def test_disagreement_at_max_goes_to_an_expert_who_sees_the_answers(
    people: dict[str, Loop],
) -> None:
    (d,) = make(people["admin"], min_reviews=2, max_reviews=2)
    answer(people["ann"], "malignant")
    reply = answer(people["bob"], "benign")
    assert reply["consensus"]["status"] == "expert" and reply["decided_by"] is None
    assert people["cat"].project("triage").claim() == []
    (task,) = people["eve"].project("triage").claim()
    assert (task["kind"], task["reason"]) == ("expert", "disagreement")
    assert sorted((a["user"], a["label"]) for a in task["answers"]) == [
        ("ann", "malignant"),
        ("bob", "benign"),
    ]
    done = people["eve"].submit_task(task["task_id"], "benign")
    assert (done["label"], done["decided_by"]) == ("benign", "expert")
    routes = people["admin"].project("triage").item(d["item_id"])["routes"]
    assert [(r["route"], r["reason"]) for r in routes][-1] == ("expert", "disagreement")
    sound(people["admin"])


def test_no_item_gets_more_than_max_reviews(people: dict[str, Loop]) -> None:
    make(people["admin"], n=3, min_reviews=3, max_reviews=3, consensus_confidence=1.0)
    for name in NAMES:
        while people[name].project("triage").claim():
            pass  # drain: released below
    counts: dict[int, set[str]] = {}
    for name in NAMES:
        for t in people[name].service.my_tasks(people[name].actor, "triage"):
            people[name].submit_task(t["task_id"], "malignant")
            counts.setdefault(t["item_id"], set()).add(name)
    for item_id in counts:
        reviews = people["admin"].project("triage").item(item_id)["reviews"]
        assert len(reviews) <= 3 and len({r["user"] for r in reviews}) == len(reviews)


def test_gold_items_score_reviewers_and_never_decide(people: dict[str, Loop]) -> None:
    admin = people["admin"]
    ds = make(admin, n=3, gold_rate=0.5)
    project = admin.project("triage")
    with pytest.raises(InvalidInput) as bad:
        project.mark_gold(
            [
                {"item_id": ds[0]["item_id"], "label": "benign"},
                {"item_id": 99_999, "label": "benign"},
                {"item_id": ds[1]["item_id"], "label": "maybe"},
            ]
        )
    assert len(bad.value.errors) == 2
    assert project.reviewers() == []  # nothing written
    (auto,) = project.submit([{"data": {"g": 1}}], proba=[[0.99, 0.01]])  # decided by the model
    gold_id = auto["item_id"]
    assert project.mark_gold([{"item_id": gold_id, "label": "malignant"}]) == {"marked": 1}
    (task,) = people["ann"].project("triage").claim()  # a new reviewer gets gold first
    assert task["item_id"] == gold_id
    assert set(task) == {
        "task_id",
        "item_id",
        "kind",
        "reason",
        "lease_expires_at",
        "item",
        "suggestion",
    }
    assert (task["kind"], task["reason"]) == ("review", "uncertain")
    reply = people["ann"].submit_task(task["task_id"], "benign")
    assert reply["gold"] == {"correct": False, "label": "malignant"}
    decision = project.item(gold_id)["decision"]
    assert (decision["label"], decision["source"]) == ("benign", "model")  # gold never decides
    (row,) = project.reviewers()
    assert (row["name"], row["n"], row["accuracy"], row["gold_n"]) == ("ann", 1.0, 0.0, 1)
    assert row["interval"][0] == 0.0 and 0 < row["interval"][1] < 1
    assert len(people["ann"].project("triage").claim(3)) == 3  # the queue, no gold left
    sound(admin)


def test_a_poor_reviewer_is_paused_and_resumed(people: dict[str, Loop]) -> None:
    admin = people["admin"]
    ds = make(admin, n=25, gold_rate=1.0, min_quality=0.5)
    project = admin.project("triage")
    project.mark_gold(
        [{"item_id": d["item_id"], "label": "benign"} for d in ds[:12]]
        + [{"item_id": d["item_id"], "label": "malignant"} for d in ds[12:]]
    )
    ann = people["ann"].project("triage")
    for _ in range(20):  # always "benign": right on half, quality 0
        (task,) = ann.claim()
        people["ann"].submit_task(task["task_id"], "benign")
    (row,) = project.reviewers()
    assert row["paused"] is True and row["quality"] < 0.5 and row["n"] == 20
    assert ann.claim() == []
    assert [e["type"] for e in admin.audit_events(type="reviewer.paused")] == ["reviewer.paused"]
    with pytest.raises(InvalidInput):
        project.resume_reviewer("ann", "")
    assert project.resume_reviewer("ann", "retrained")["paused"] is False
    assert len(ann.claim()) == 1
    sound(admin)


def test_claims_respect_the_per_reviewer_cap(people: dict[str, Loop]) -> None:
    make(people["admin"], n=5, max_open_per_reviewer=2)
    ann = people["ann"].project("triage")
    assert len(ann.claim(5)) == 2 and ann.claim() == []


def test_claims_prefer_items_of_the_class_the_reviewer_knows(people: dict[str, Loop]) -> None:
    admin = people["admin"]
    p = admin.create_project("triage", labels=LABELS, policy={"audit_rate": 0.0, "gold_rate": 1.0})
    gold = p.submit([{"data": {"g": i}} for i in range(4)], proba=[[0.99, 0.01]] * 4)
    p.mark_gold([{"item_id": d["item_id"], "label": "malignant"} for d in gold])
    for _ in gold:  # ann is right on every malignant gold item
        reply = answer(people["ann"], "malignant")
        assert reply["gold"]["correct"] is True
    later = p.submit([{"data": {"x": 0}}, {"data": {"x": 1}}], proba=[[0.6, 0.4], [0.4, 0.6]])
    (task,) = people["ann"].project("triage").claim()
    assert task["item_id"] == later[1]["item_id"]  # predicted malignant: her strong class
    (first,) = people["bob"].project("triage").claim()  # no skill yet: gold, then queue order
    assert first["item_id"] in {d["item_id"] for d in gold}


def test_agreement_in_metrics(people: dict[str, Loop]) -> None:
    make(people["admin"], n=4, min_reviews=2, max_reviews=2)
    empty = people["admin"].project("triage").metrics()["agreement_reviewers"]
    assert empty["fleiss_kappa"]["value"] is None and empty["fleiss_kappa"]["reason"]
    for name, labels in (("ann", "mmbb"), ("bob", "mmbm")):
        for lab in labels:
            answer(people[name], {"m": "malignant", "b": "benign"}[lab])
    agr = people["admin"].project("triage").metrics()["agreement_reviewers"]
    assert agr["percent_agreement"]["value"] == pytest.approx(0.75)
    assert agr["percent_agreement"]["n"] == 4
    assert agr["fleiss_kappa"]["value"] is not None
    assert agr["krippendorff_alpha"]["ci"][0] is not None


def test_an_experts_decision_teaches_the_reviewers_skill(loop: Loop) -> None:
    """Items the reviewers disagree on go to an expert; the expert's label counts as the
    truth for each of them, so the one who was wrong loses accuracy."""
    for name, role in (("good", "reviewer"), ("poor", "reviewer"), ("exp", "expert")):
        loop.create_user(name, role)
    project = loop.create_project("skill", labels=["a", "b"], policy={
        "audit_rate": 0.0, "min_reviews": 2, "max_reviews": 2, "consensus_confidence": 0.99})
    project.submit([{"data": {"i": i}} for i in range(6)], proba=[[0.6, 0.4]] * 6)
    good, poor, exp = (loop.as_user(n) for n in ("good", "poor", "exp"))
    for t in good.project("skill").claim(6):
        good.submit_task(t["task_id"], "a")
    for t in poor.project("skill").claim(6):
        poor.submit_task(t["task_id"], "b")  # always the other answer
    decided = 0
    while tasks := exp.project("skill").claim(10):
        for t in tasks:
            exp.submit_task(t["task_id"], "a")
            decided += 1
    assert decided == 6  # every item was a disagreement
    skill = {r["name"]: r for r in project.reviewers()}
    assert skill["good"]["accuracy"] > 0.8 > 0.2 > skill["poor"]["accuracy"]
