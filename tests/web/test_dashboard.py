"""The dashboard in a real browser: its figures and charts render, keyboard-reachable;
fairness by group, drift, reviewers and the learning curve show the service's numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier

from loopwise import Loop
from loopwise.demo.data import breast_cancer_records
from loopwise.web.pages import FAIRNESS_VIEWS, STATUS_ORDER
from tests.conftest import LiveServer
from tests.web.conftest import shot
from tests.web.test_workbench import sign_in

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_the_dashboard_shows_the_promise_and_its_charts(live_server: LiveServer, page: Any) -> None:
    with Loop(live_server.db_url) as loop:
        token = loop.create_user("ada", "admin")["token"]
        loop.create_user("rev", "reviewer")
        project = loop.create_project(
            "qc", labels=["ok", "bad"], policy={"target_error": 0.05, "audit_rate": 0.2}
        )
        project.submit(
            [{"external_id": f"i{i}", "data": {"i": i}} for i in range(120)],
            proba=[[0.97, 0.03]] * 120,
        )
    sign_in(page, live_server, token)
    page.click("text=qc")
    page.wait_for_selector("#automatic")
    text = page.inner_text("#automatic")
    assert "not certified yet" in text and "more labels needed" in text
    assert page.inner_text("#automation") == "0.0%"
    assert page.locator("#over-time svg.chart polyline, #over-time svg.chart circle").count() >= 1
    assert page.locator("#automatic svg.interval").count() == 1
    # no sensitive attribute, no model, no skill records: each section says so
    assert "no sensitive attributes" in page.inner_text("#fairness")
    assert "No model version" in page.inner_text("#learning-curve")
    assert "No reviewer has a skill record" in page.inner_text("#reviewers")
    # the promise, the queue and the chart over time fit the first 1280x800 screen
    assert page.locator("#over-time").bounding_box()["y"] + 100 < 800
    # every link on the page is reachable by keyboard
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.tagName") in ("A", "BUTTON")


def _fill(loop: Loop) -> None:
    """Project "bc": breast-cancer cases, sensitive "half", two reviewers on every item
    (one careless), a champion and a rejected challenger, then new cases (a few of a
    small group "c")."""
    records, y, labels = breast_cancer_records(random_state=0)
    rng = np.random.default_rng(0)
    project = loop.create_project(
        "bc",
        labels=labels,
        sensitive=["half"],
        policy={"threshold": 0.9, "audit_rate": 0.2, "min_reviews": 2, "max_reviews": 2},
    )
    recs = [
        {**r, "meta": {"half": "c" if i >= 390 else "a" if i % 3 else "b"}}
        for i, r in enumerate(records)
    ]  # group "c": ten new cases, none answered
    p1 = np.clip(np.where(y[:160] == 1, 0.7, 0.3) + rng.normal(0, 0.15, 160), 0.01, 0.99)
    out = project.submit(recs[:160], proba=np.c_[1 - p1, p1])
    truth = {d["item_id"]: int(c) for d, c in zip(out, y[:160], strict=True)}
    for who, slip in (("rev", 0.0), ("sam", 0.2)):
        loop.create_user(who, "reviewer")
        r = loop.as_user(who)
        while tasks := r.project("bc").claim(100):
            for t in tasks:
                c = truth[t["item_id"]]
                r.submit_task(t["task_id"], labels[1 - c if rng.random() < slip else c])
    assert project.train()["status"] == "champion"
    assert project.train(estimator=DummyClassifier(strategy="prior"))["status"] == "rejected"
    project.submit(recs[160:400])


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def test_fairness_drift_reviewers_and_learning_curve(live_server: LiveServer, page: Any) -> None:
    with Loop(live_server.db_url) as loop:
        token = loop.create_user("ada", "admin")["token"]
        rev_token = loop.create_user("ron", "reviewer")["token"]
        _fill(loop)
        fair = loop.service.fairness(loop.actor, "bc")
        drift = loop.service.drift(loop.actor, "bc")
        people = loop.service.reviewers(loop.actor, "bc")
        pace = loop.service.throughput(loop.actor, "bc")
        curve = loop.project("bc").metrics()["learning_curve"]
    sign_in(page, live_server, token)
    page.goto(f"{live_server.url}/projects/bc")
    page.wait_for_selector("#fairness svg.dots")

    # fairness: every group's rate of every thing, as the service computed it
    undefined = 0
    for key, _, metrics in FAIRNESS_VIEWS:
        rep = fair[key]
        assert rep["status"] == "ok", rep
        groups = rep["attributes"]["half"]["groups"]
        box = page.locator(f"#fair-{key} [data-attribute=half]")
        assert box.locator("svg title").first.text_content().endswith("95% Wilson interval")
        greyed = {g.get_attribute("data-group") for g in box.locator("g.group.insufficient").all()}
        assert greyed == {g for g, s in groups.items() if s["insufficient"]}
        for g, s in groups.items():
            for m in metrics:
                cell = box.locator(f'g.rate[data-group="{g}"][data-metric="{m}"]')
                want = s["rates"][m]["estimate"]
                if want is None:
                    undefined += 1
                    assert "undefined" in (cell.get_attribute("class") or "")
                    assert cell.locator("text").text_content() == "undefined"
                else:
                    assert float(cell.get_attribute("data-estimate")) == want
                    assert cell.locator("text").text_content() == _pct(want)
        gaps = [
            d
            for k, d in rep["attributes"]["half"]["disparities"].items()
            if k in {f"{m}_difference" for m in metrics} and d["estimate"] is not None
        ]
        # the largest gap between groups large enough to judge (a small group's only if
        # there is no other)
        solid = [d for d in gaps if not d.get("insufficient")] or gaps
        worst = max(solid, key=lambda d: abs(d["estimate"]))
        assert f"{100 * worst['estimate']:.1f} points" in box.locator("p.gap").inner_text()
    assert undefined >= 1  # the auto-error of group "c": no answered audit
    assert "c" in fair["routing"]["attributes"]["half"]["groups"]

    # drift: the most recent window's checks, worst first, status in words
    window = drift["windows"][0]
    rows = page.locator("#drift tr.drift-row")
    names = [r.get_attribute("data-name") for r in rows.all()]
    assert set(names) >= set(window["features"])
    ranks = [STATUS_ORDER.index(r.locator(".status").text_content()) for r in rows.all()]
    assert ranks == sorted(ranks)
    first = window["features"].get(names[0])
    if first is not None:
        assert rows.first.locator(".status").text_content() == first["status"]

    # reviewers: n, accuracy with a small interval bar, paused
    for r in people:
        row = page.locator(f'#reviewers tr.reviewer[data-name="{r["name"]}"]')
        cells = row.locator("td").all_inner_texts()
        assert cells[1] == f"{r['n']:g}"
        assert cells[2] == (_pct(r["accuracy"]) if r["accuracy"] is not None else "undefined")
        assert row.locator("svg.mini title").count() == 1
    assert {r["name"] for r in people} == {"rev", "sam"}
    # throughput: answers per person in the last 24 hours, as the service counts them
    assert pace and sum(r["answers"] for r in pace) > 0
    for r in pace:
        cells = page.locator(f'#throughput tr[data-name="{r["name"]}"] td').all_inner_texts()
        assert cells[1] == str(r["answers"])

    # learning curve: version 1 kept, version 2 marked rejected, at their accuracies
    for c in curve:
        point = page.locator(f'#learning-curve g.point[data-version="{c["version"]}"]')
        assert float(point.get_attribute("data-estimate")) == c["holdout_accuracy"]["estimate"]
        kind = "rejected" if c["status"] == "rejected" else "kept"
        assert kind in point.get_attribute("class")
    assert page.locator("#learning-curve g.point.rejected").count() == 1
    assert page.locator("#learning-curve svg[aria-label]").count() == 1
    shot(page, "dashboard")
    page.locator("#fairness").scroll_into_view_if_needed()
    shot(page, "dashboard_oversight")

    # a reviewer sees the oversight figures but not the other reviewers' skill
    page.context.clear_cookies()
    sign_in(page, live_server, rev_token)
    page.goto(f"{live_server.url}/projects/bc")
    page.wait_for_selector("#fairness")
    assert page.locator("#reviewers").count() == 0
