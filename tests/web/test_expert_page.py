"""The expert view in a real browser: an escalation with the model's and the reviewer's
answers; a decision needs a reason."""

from __future__ import annotations

from typing import Any

import pytest

from loopwise import Loop
from tests.conftest import LiveServer
from tests.web.conftest import shot
from tests.web.test_workbench import sign_in

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_an_expert_decides_an_escalation_with_a_reason(live_server: LiveServer,
                                                        page: Any) -> None:
    with Loop(live_server.db_url) as loop:
        loop.create_user("rev", "reviewer")
        token = loop.create_user("eve", "expert")["token"]
        p = loop.create_project("qc", labels=["ok", "bad"], policy={"audit_rate": 0.0})
        (d,) = p.submit([{"external_id": "x1", "data": {"w": 3.5}}], proba=[[0.6, 0.4]])
        rev = loop.as_user("rev")
        (t,) = rev.project("qc").claim()
        rev.escalate(t["task_id"], "looks odd")
    sign_in(page, live_server, token)
    page.goto(f"{live_server.url}/projects/qc/expert")
    page.wait_for_selector("#task")
    assert "ok" in page.inner_text("#model")
    shot(page, "expert")
    page.keyboard.press("2")
    with page.expect_navigation():
        page.keyboard.press("Enter")  # no reason yet: refused, said why
    assert "needs a reason" in page.inner_text("[role=alert]")
    page.keyboard.press("c")
    page.keyboard.type("scratch on the lens, not a defect")
    page.keyboard.press("Escape")
    page.keyboard.press("1")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.inner_text("#count") == "1"
    with Loop(live_server.db_url) as loop:
        got = loop.project("qc").item(d["item_id"])
        assert got["decision"]["label"] == "ok"
        assert got["reviews"][-1]["comment"] == "scratch on the lens, not a defect"


def test_an_expert_overrides_a_decision_with_a_reason(live_server: LiveServer,
                                                      page: Any) -> None:
    with Loop(live_server.db_url) as loop:
        token = loop.create_user("eve", "expert")["token"]
        p = loop.create_project("qc", labels=["ok", "bad"], policy={"audit_rate": 0.0})
        (d,) = p.submit([{"data": {"w": 1.0}}], proba=[[0.99, 0.01]])  # decided: ok
    sign_in(page, live_server, token)
    page.goto(f"{live_server.url}/projects/qc/expert")
    page.fill("#o-item", str(d["item_id"]))
    page.select_option("#o-label", "bad")
    page.fill("#o-reason", "crack visible under magnification")
    with page.expect_navigation():
        page.click("#override button")
    assert f"override of item {d['item_id']}" in page.inner_text("[role=status]")
    with Loop(live_server.db_url) as loop:
        got = loop.project("qc").item(d["item_id"])
        assert got["decision"]["label"] == "bad" and got["decision"]["source"] == "override"
    page.fill("#o-item", str(d["item_id"]))
    page.select_option("#o-label", "bad")  # the same label again: refused, said why
    page.fill("#o-reason", "again")
    with page.expect_navigation():
        page.click("#override button")
    assert page.locator("[role=alert]").count() == 1
