"""Many reviewers over HTTP: gold items (admin, all or nothing), the reviewers' skill page,
pausing (the claim says why) and resuming, consensus replies; roles and errors."""

from __future__ import annotations

from tests.api.conftest import Api, item

P = "crowd"


def test_gold_skill_pause_and_resume_over_http(api: Api) -> None:
    api.make_project(P, audit_rate=0.0, gold_rate=1.0, min_quality=0.5)
    gold = api.decisions([item(f"g-{i}") for i in range(25)], project=P)  # auto-decided
    marks = [{"item_id": d["item_id"], "label": "malignant"} for d in gold]
    path = f"/projects/{P}/gold"
    assert api.call("POST", path, None, json={"items": marks}).status_code == 401
    assert api.call("POST", path, "reviewer", json={"items": marks}).status_code == 403
    assert (
        api.call("POST", "/projects/nope/gold", "admin", json={"items": marks}).status_code == 404
    )
    bad = api.call(
        "POST", path, "admin", json={"items": [*marks, {"item_id": 10**9, "label": "malignant"}]}
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["items", 25, "item_id"]
    assert api.ok("GET", f"/projects/{P}/reviewers", "admin") == []
    assert api.ok("POST", path, "admin", json={"items": marks}) == {"marked": 25}

    for _ in range(20):  # always "benign" on malignant gold items: quality 0
        (task,) = api.claim("reviewer", project=P)
        reply = api.answer(task["task_id"], "reviewer", "benign").json()
        assert reply["gold"] == {"correct": False, "label": "malignant"}
        assert reply["label"] == "benign"  # the model's decision stands
    assert api.call("GET", f"/projects/{P}/reviewers", "reviewer").status_code == 403
    (row,) = api.ok("GET", f"/projects/{P}/reviewers", "expert")
    assert (row["name"], row["n"], row["accuracy"], row["paused"]) == ("reviewer", 20, 0, True)
    assert row["interval"][1] < 0.2
    r = api.ok("POST", f"/projects/{P}/tasks/claim", "reviewer", json={"n": 1})
    assert r["tasks"] == [] and "min_quality" in r["paused"]

    resume = f"/projects/{P}/reviewers/reviewer/resume"
    assert api.call("POST", resume, "expert", json={"reason": "ok"}).status_code == 403
    assert api.call("POST", resume, "admin", json={}).status_code == 422
    assert (
        api.call(
            "POST", f"/projects/{P}/reviewers/ghost/resume", "admin", json={"reason": "x"}
        ).status_code
        == 404
    )
    assert api.ok("POST", resume, "admin", json={"reason": "retrained"})["paused"] is False
    assert len(api.claim("reviewer", project=P)) == 1
    assert [e["type"] for e in api.events("reviewer.resumed", P)] == ["reviewer.resumed"]
    assert api.verify()["ok"] is True


def test_consensus_over_http(api: Api) -> None:
    api.make_project(P, audit_rate=0.0, min_reviews=2, max_reviews=3)
    api.decisions([item("u-1", (0.55, 0.45))], project=P)
    (t1,) = api.claim("reviewer", project=P)
    first = api.answer(t1["task_id"], "reviewer", "malignant").json()
    assert first["consensus"]["status"] == "another" and first["decided_by"] is None
    assert api.claim("reviewer", project=P) == []
    (t2,) = api.claim("reviewer2", project=P)
    second = api.answer(t2["task_id"], "reviewer2", "malignant").json()
    assert (second["label"], second["decided_by"]) == ("malignant", "consensus")
    agr = api.metrics(P)["agreement_reviewers"]
    assert agr["percent_agreement"]["n"] == 1 and agr["percent_agreement"]["value"] == 1.0
    assert agr["fleiss_kappa"]["value"] is None and agr["fleiss_kappa"]["reason"]
