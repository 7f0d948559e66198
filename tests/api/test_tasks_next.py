"""``POST /tasks/{id}/submit?next=1``: answer and claim the next task in one transaction."""

from __future__ import annotations

from tests.api.conftest import PROJECT, Api, item


def test_submit_with_next_answers_and_claims_the_next_task(api: Api, project: str) -> None:
    got = api.decisions([item(f"n-{i}", (0.55, 0.45)) for i in range(2)])
    first, second = (d["item_id"] for d in got)
    (task,) = api.claim("reviewer")
    assert task["item_id"] == first

    r = api.call("POST", f"/tasks/{task['task_id']}/submit?next=1", "reviewer",
                 json={"label": "malignant"})
    assert r.status_code == 200, r.text
    reply = r.json()
    assert (reply["item_id"], reply["label"], reply["decided_by"]) == (first, "malignant",
                                                                       "reviewer")
    nxt = reply["next"]
    assert nxt["item_id"] == second and set(nxt) == set(task)
    assert api.claim("reviewer2") == []  # the next task is held

    r = api.call("POST", f"/tasks/{nxt['task_id']}/submit", "reviewer",
                 params={"next": "true"}, json={"label": "benign"})
    assert r.status_code == 200, r.text
    assert r.json()["next"] is None
    plain = api.answer(nxt["task_id"], "reviewer", "benign")
    assert plain.status_code == 409  # already done; nothing else changed
    assert api.metrics(PROJECT)["queue"]["done"] == 2
    assert api.verify()["ok"] is True


def test_a_refused_submit_claims_nothing(api: Api, project: str) -> None:
    api.decisions([item(f"r-{i}", (0.55, 0.45)) for i in range(2)])
    (task,) = api.claim("reviewer")
    r = api.call("POST", f"/tasks/{task['task_id']}/submit?next=1", "reviewer2",
                 json={"label": "benign"})
    assert r.status_code == 409
    assert api.metrics(PROJECT)["queue"]["claimed"] == 1
