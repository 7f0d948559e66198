"""The report: valid, self-contained HTML that holds the figures; the same as JSON."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

from tests.test_service_fairness import fill


def test_report_is_self_contained_and_holds_the_figures(loop: Any) -> None:
    fill(loop, n=300)
    svc = loop.service
    rep = svc.report(loop.actor, "t")
    json.dumps(rep, allow_nan=False)
    assert len(rep["over_time"]) == 20 and sum(b["n"] for b in rep["over_time"]) == 300
    page = svc.report_html(loop.actor, "t")
    HTMLParser().feed(page)  # parses
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>")
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", page)
    assert "<svg" in page and "Fairness by group" in page
    assert f"Items: {rep['metrics']['items']}" in page
    share = rep["metrics"]["automation_rate"]
    assert f"{100 * share:.1f}%" in page
    assert "f (n=" in page and "unknown (n=" in page  # groups with their n


def test_cli_report_writes_html_and_json(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from loopwise import Loop
    from loopwise.cli import app

    db = str(tmp_path / "r.db")
    with Loop(db, random_state=0) as lp:
        fill(lp, n=60)
    out = tmp_path / "report.html"
    res = CliRunner().invoke(app, ["report", "t", "--out", str(out), "--db", db])
    assert res.exit_code == 0, res.output
    assert out.read_text().startswith("<!DOCTYPE html>")
    res = CliRunner().invoke(app, ["report", "t", "--json", "--db", db])
    assert res.exit_code == 0 and json.loads(res.output)["project"] == "t"
    assert CliRunner().invoke(app, ["report", "nope", "--db", db]).exit_code == 2
