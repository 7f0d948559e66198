"""The audit page in a real browser: events, a filter, and the trail's status — broken
when someone edits the database behind the service's back."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from loopwise import Loop
from tests.conftest import LiveServer
from tests.web.conftest import shot
from tests.web.test_workbench import sign_in

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_the_audit_page_lists_events_and_shows_a_broken_trail(live_server: LiveServer,
                                                               page: Any) -> None:
    with Loop(live_server.db_url) as loop:
        token = loop.create_user("ada", "admin")["token"]
        p = loop.create_project("qc", labels=["ok", "bad"])
        p.submit([{"data": {"i": 1}}], proba=[[0.99, 0.01]])
    sign_in(page, live_server, token)
    page.goto(f"{live_server.url}/projects/qc/audit")
    assert "intact" in page.inner_text("#verify")
    assert "items.received" in page.inner_text("#events")
    page.select_option("#type", "project.created")
    with page.expect_navigation():
        page.click("text=Show")
    assert "items.received" not in page.inner_text("#events")
    shot(page, "audit")
    path = live_server.db_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE events SET body = replace(body, '0.99', '0.42') "
                     "WHERE type = 'items.received'")
    page.goto(f"{live_server.url}/projects/qc/audit")
    assert "BROKEN" in page.inner_text("#verify")
