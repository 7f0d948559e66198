"""The policy editor in a real browser: a preview of what changes, validation, and the
stop switch (with its reason) that sends the next submission to people."""

from __future__ import annotations

from typing import Any

import pytest

from loopwise import Loop
from tests.conftest import LiveServer
from tests.web.conftest import shot
from tests.web.test_workbench import sign_in

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_an_admin_previews_saves_and_stops(live_server: LiveServer, page: Any) -> None:
    with Loop(live_server.db_url) as loop:
        token = loop.create_user("ada", "admin")["token"]
        loop.create_project("qc", labels=["ok", "bad"], policy={"threshold": 0.9})
    sign_in(page, live_server, token)
    page.goto(f"{live_server.url}/projects/qc/settings")
    page.fill("#f-audit_rate", "0.1")
    page.fill("#f-threshold", "1.5")
    with page.expect_navigation():
        page.click("#preview-button")
    assert "policy.threshold" in page.inner_text("#error")  # refused, said why
    page.fill("#f-threshold", "0.8")
    page.fill("#f-audit_rate", "0.1")
    with page.expect_navigation():
        page.click("#preview-button")
    preview = page.inner_text("#preview")
    assert "audit_rate" in preview and "threshold" in preview and "rules" not in preview
    shot(page, "settings")
    with page.expect_navigation():
        page.click("#confirm")
    assert "Saved version 2" in page.inner_text("main")
    page.select_option("#f-stopped", "true")
    with page.expect_navigation():
        page.click("#preview-button")
    assert "needs a reason" in page.inner_text("#error")
    page.select_option("#f-stopped", "true")
    page.fill("#reason", "scanner recalibration")
    with page.expect_navigation():
        page.click("#preview-button")
    with page.expect_navigation():
        page.click("#confirm")
    with Loop(live_server.db_url) as loop:
        p = loop.project("qc")
        assert p.info["policy"]["stopped"] is True
        assert p.info["policy"]["audit_rate"] == 0.1
        (d,) = p.submit([{"data": {"x": 1}}], proba=[[0.99, 0.01]])
        assert (d["route"], d["reason"]) == ("review", "stopped")
        (stop,) = loop.audit_events(type="project.stopped")
        assert "scanner recalibration" in stop["body"]
