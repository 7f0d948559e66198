"""The plain review page: sign in with a token, answer the waiting items, CSRF checked."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from loopwise import Loop
from loopwise.config import Settings
from loopwise.server import create_app


def _setup(db_url: str) -> tuple[TestClient, str, Loop]:
    loop = Loop(db_url)
    token = loop.create_user("rita", "reviewer")["token"]
    p = loop.create_project("cells", labels=["ok", "defect"])
    p.submit([{"external_id": f"c{i}", "data": {"width": i}} for i in range(3)],
             proba=[[0.6, 0.4]] * 3)
    client = TestClient(create_app(Settings(database_url=db_url)))
    return client, token, loop


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert m, html
    return m.group(1)


def test_reviewer_signs_in_and_answers_every_item(sqlite_url: str) -> None:
    client, token, loop = _setup(sqlite_url)
    assert "Your token" in client.get("/").text
    bad = client.post("/signin", data={"token": "nope"})
    assert bad.status_code == 401 and "not valid" in bad.text
    assert client.post("/signin", data={"token": token}, follow_redirects=False).status_code == 303
    assert "cells" in client.get("/").text
    seen = set()
    for _ in range(3):
        page = client.get("/projects/cells/review")
        assert page.status_code == 200
        assert "uncertain" in page.text and "Model suggests" in page.text
        task_id = int(re.search(r'name="task_id" value="(\d+)"', page.text).group(1))
        # Reloading shows the same claimed task rather than claiming another.
        again = client.get("/projects/cells/review")
        assert f'name="task_id" value="{task_id}"' in again.text
        seen.add(task_id)
        r = client.post("/projects/cells/review",
                        data={"task_id": task_id, "label": "defect", "csrf": _csrf(page.text)})
        assert r.status_code == 200 and f"saved task {task_id}" in r.text
    assert len(seen) == 3
    assert "Nothing is waiting" in client.get("/projects/cells/review").text
    decided = [loop.project("cells").item(i)["decision"] for i in (1, 2, 3)]
    assert all(d["label"] == "defect" and d["by"] == "rita" for d in decided)
    loop.close()


def test_forged_form_is_refused(sqlite_url: str) -> None:
    client, token, loop = _setup(sqlite_url)
    client.post("/signin", data={"token": token})
    page = client.get("/projects/cells/review")
    task_id = int(re.search(r'name="task_id" value="(\d+)"', page.text).group(1))
    r = client.post("/projects/cells/review",
                    data={"task_id": task_id, "label": "ok", "csrf": "0" * 64})
    assert r.status_code == 403 and "CSRF" in r.text
    assert loop.project("cells").item(1)["decision"] is None
    loop.close()


def test_signed_out_visitors_are_sent_to_sign_in(sqlite_url: str) -> None:
    client, _, loop = _setup(sqlite_url)
    r = client.get("/projects/cells/review", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    loop.close()


def test_unknown_label_and_project_show_an_error_page(sqlite_url: str) -> None:
    client, token, loop = _setup(sqlite_url)
    client.post("/signin", data={"token": token})
    page = client.get("/projects/cells/review")
    task_id = int(re.search(r'name="task_id" value="(\d+)"', page.text).group(1))
    r = client.post("/projects/cells/review",
                    data={"task_id": task_id, "label": "maybe", "csrf": _csrf(page.text)})
    assert r.status_code == 422 and "maybe" in r.text
    assert client.get("/projects/nope/review").status_code == 404
    loop.close()
