"""The dashboard in a real browser: its figures and charts render, keyboard-reachable."""

from __future__ import annotations

from typing import Any

import pytest

from loopwise import Loop
from tests.conftest import LiveServer
from tests.web.conftest import shot
from tests.web.test_workbench import sign_in

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_the_dashboard_shows_the_promise_and_its_charts(live_server: LiveServer,
                                                         page: Any) -> None:
    with Loop(live_server.db_url) as loop:
        token = loop.create_user("ada", "admin")["token"]
        loop.create_user("rev", "reviewer")
        project = loop.create_project("qc", labels=["ok", "bad"],
                                      policy={"target_error": 0.05, "audit_rate": 0.2})
        project.submit([{"external_id": f"i{i}", "data": {"i": i}} for i in range(120)],
                       proba=[[0.97, 0.03]] * 120)
    sign_in(page, live_server, token)
    page.click("text=qc")
    page.wait_for_selector("#automatic")
    text = page.inner_text("#automatic")
    assert "not certified yet" in text and "more labels needed" in text
    assert page.inner_text("#automation") == "0.0%"
    assert page.locator("#over-time svg.chart polyline, #over-time svg.chart circle").count() >= 1
    assert page.locator("#automatic svg.interval").count() == 1
    shot(page, "dashboard")
    # every link on the page is reachable by keyboard
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.tagName") in ("A", "BUTTON")
