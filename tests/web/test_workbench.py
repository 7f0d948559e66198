"""The reviewer's workbench in a real browser: sign in, label by keyboard, release,
escalate, see what moved the model; every answer checked through the service."""

from __future__ import annotations

from typing import Any

import pytest

from loopwise import Loop
from loopwise.demo import breast_cancer_records
from tests.conftest import LiveServer
from tests.web.conftest import shot

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
LABELS = ["cat", "dog", "fox"]


def sign_in(page: Any, server: LiveServer, token: str) -> None:
    page.goto(f"{server.url}/")
    page.fill("#token", token)
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Projects")


def test_a_reviewer_labels_five_items_by_keyboard(live_server: LiveServer, page: Any) -> None:
    with Loop(live_server.db_url) as loop:
        token = loop.create_user("rita", "reviewer")["token"]
        project = loop.create_project("pets", labels=LABELS, policy={"audit_rate": 0.0})
        sent = project.submit([{"external_id": f"p{i}", "data": {"x": float(i)}}
                               for i in range(7)], proba=[[0.5, 0.3, 0.2]] * 7)
    ids = {d["external_id"]: d["item_id"] for d in sent}
    sign_in(page, live_server, token)
    page.goto(f"{live_server.url}/projects/pets/review")
    page.wait_for_selector("#task")
    shot(page, "review")
    answers: dict[int, str] = {}
    for i in range(5):
        item = int(page.get_attribute("#answer input[name=item_id]", "value"))
        key = str(1 + i % 3)
        page.keyboard.press(key)
        assert page.inner_text("#choice").startswith(f"Chosen: {LABELS[i % 3]}")
        page.keyboard.press("Enter")
        page.wait_for_selector(f"#count:text('{i + 1}')")
        answers[item] = LABELS[i % 3]
    # S gives the sixth back (open again, for anyone); E sends the next one to an expert.
    sixth = int(page.get_attribute("#answer input[name=item_id]", "value"))
    with page.expect_navigation():
        page.keyboard.press("s")
    with Loop(live_server.db_url) as loop:
        states = {t["state"] for t in loop.project("pets").item(sixth)["tasks"]}
        assert "open" in states or "claimed" in states  # back in the queue
    seventh = int(page.get_attribute("#answer input[name=item_id]", "value"))
    with page.expect_navigation():
        page.keyboard.press("e")
    with Loop(live_server.db_url) as loop:
        for item, label in answers.items():
            got = loop.project("pets").item(item)
            assert got["decision"]["label"] == label and got["decision"]["source"] == "reviewer"
        assert loop.project("pets").item(sixth)["decision"] is None
        tasks = loop.project("pets").item(seventh)["tasks"]
        assert "expert" in {t["kind"] for t in tasks}
    assert set(answers) | {sixth, seventh} <= set(ids.values())


def test_the_workbench_highlights_what_moved_the_model(live_server: LiveServer,
                                                        page: Any) -> None:
    records, y, labels = breast_cancer_records(0)
    with Loop(live_server.db_url) as loop:
        loop.create_user("t", "reviewer")
        token = loop.create_user("rex", "reviewer")["token"]
        project = loop.create_project("cells", labels=labels, policy={"audit_rate": 0.0})
        project.submit(records[:200])
        trainer = loop.as_user("t")
        truth = {r["external_id"]: int(t) for r, t in zip(records, y, strict=True)}
        while tasks := trainer.project("cells").claim(100):
            for t in tasks:
                trainer.submit_task(t["task_id"], labels[truth[t["item"]["external_id"]]])
        project.train()
        project.update_policy(threshold=1.0)  # everything to people
        project.submit(records[200:203])
    sign_in(page, live_server, token)
    page.goto(f"{live_server.url}/projects/cells/review")
    page.wait_for_selector("#task")
    assert page.locator("dl.features div.moved").count() >= 1
    assert "What moved the model" in page.inner_text("#task")
    assert "Model suggests" in page.inner_text("#suggestion")
    assert "left" in page.inner_text("#lease")  # the lease counts down
    shot(page, "review-tabular")


def test_an_admin_adds_a_person_whose_token_then_signs_in(live_server: LiveServer,
                                                          page: Any, chromium: Any) -> None:
    with Loop(live_server.db_url) as loop:
        token = loop.create_user("ada", "admin")["token"]
    sign_in(page, live_server, token)
    page.click("text=People")
    page.fill("#name", "nora")
    page.select_option("#role", "expert")
    with page.expect_navigation():
        page.click("text=Create and show the token")
    new_token = page.inner_text("#token").strip()
    assert "nora" in page.inner_text("#people")
    shot(page, "users")
    page.fill("#name", "nora")  # the name is taken: refused, said why, nothing changes
    with page.expect_navigation():
        page.click("text=Create and show the token")
    assert "already" in page.inner_text("[role=alert]")
    other = chromium.new_context().new_page()
    sign_in(other, live_server, new_token)
    assert "nora · expert" in other.inner_text("header")
    other.context.close()


def test_in_a_blind_project_the_model_shows_only_after_the_answer(live_server: LiveServer,
                                                                  page: Any) -> None:
    with Loop(live_server.db_url) as loop:
        token = loop.create_user("bo", "reviewer")["token"]
        project = loop.create_project("blind", labels=LABELS,
                                      policy={"audit_rate": 0.0, "blind": True})
        project.submit([{"data": {"x": 1.0}}, {"data": {"x": 2.0}}],
                       proba=[[0.2, 0.7, 0.1]] * 2)
        claimed = loop.as_user("bo").project("blind").claim()
        assert claimed[0]["suggestion"] is None  # the API hides it too
        loop.as_user("bo").release(claimed[0]["task_id"])
    sign_in(page, live_server, token)
    page.goto(f"{live_server.url}/projects/blind/review")
    page.wait_for_selector("#task")
    assert "Blind review" in page.inner_text("#suggestion")
    assert page.locator("#reason").count() == 0
    page.keyboard.press("1")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "the model had said dog" in page.inner_text("[role=status]")


def test_after_a_gold_item_the_reviewer_is_told_the_right_answer(live_server: LiveServer,
                                                                  page: Any) -> None:
    with Loop(live_server.db_url) as loop:
        token = loop.create_user("gil", "reviewer")["token"]
        project = loop.create_project("gold", labels=LABELS,
                                      policy={"audit_rate": 0.0, "gold_rate": 0.5})
        sent = project.submit([{"data": {"x": float(i)}} for i in range(4)],
                              proba=[[0.9, 0.05, 0.05]] * 4)  # all decided by the model
        project.mark_gold([{"item_id": sent[0]["item_id"], "label": "fox"}])
        project.update_policy(threshold=0.99)
        project.submit([{"data": {"x": 9.0}}], proba=[[0.5, 0.3, 0.2]])
    sign_in(page, live_server, token)
    page.goto(f"{live_server.url}/projects/gold/review")
    page.wait_for_selector("#task")
    page.keyboard.press("1")  # a new reviewer gets the gold item first: "cat" is wrong
    with page.expect_navigation():
        page.keyboard.press("Enter")
    text = page.inner_text("#gold")
    assert "fox" in text and "differed" in text
