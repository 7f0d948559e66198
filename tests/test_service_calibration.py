"""The gate's promise in the loop: calibrated on the project's own holdout labels,
versioned, reported in the metrics, checked against audits."""

from __future__ import annotations

import numpy as np
import pytest

from loopwise import InvalidInput, Loop
from loopwise.domain import in_holdout


def _stream(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A calibrated two-class model: P(label 0) = p, true label drawn accordingly."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.5, 1.0, n)
    y = (rng.random(n) > p).astype(int)
    return np.c_[p, 1 - p], y


def _answer_all(loop: Loop, project: str, truth: dict[str, int], labels: list[str]) -> int:
    rev = loop.as_user("rev")
    done = 0
    while tasks := rev.project(project).claim(100):
        for t in tasks:
            rev.submit_task(t["task_id"], labels[truth[t["item"]["external_id"]]])
            done += 1
    return done


def test_recalibration_certifies_on_the_streams_holdout_and_versions_it(sqlite_url: str) -> None:
    loop = Loop(sqlite_url, random_state=0)
    loop.create_user("rev", "reviewer")
    labels = ["ok", "bad"]
    p = loop.create_project("qc", labels=labels,
                            policy={"target_error": 0.1, "delta": 0.1, "audit_rate": 0.05})
    before = p.metrics()["gate"]
    assert (before["mode"] == "promise" and before["certified"] is None) or not before["certified"]
    proba, y = _stream(2000, 0)
    recs = [{"external_id": f"i{i}", "data": {"i": i}} for i in range(len(y))]
    p.submit(recs, proba=proba)
    truth = {f"i{i}": int(t) for i, t in enumerate(y)}
    _answer_all(loop, "qc", truth, labels)
    version = p.info["policy_version"]
    summary = loop.service.recalibrate(loop.actor, "qc")
    assert summary["certified"] is True
    cert = summary["certificates"][0]
    # Only the holdout fold was used.
    n_holdout = sum(in_holdout(i) for i in range(1, len(y) + 1))
    assert cert["n_calibration"] == n_holdout
    assert 0.5 < summary["threshold"] < 1.0
    # The certified threshold keeps the true error of accepted items within the promise
    # on fresh data from the same model (tolerance: 20,000 fresh items, sd ~0.002).
    fresh_p, fresh_y = _stream(20_000, 1)
    accepted = fresh_p.max(axis=1) >= summary["threshold"]
    assert (fresh_y[accepted] != 0).mean() <= 0.1 + 0.008
    info = p.info
    assert info["policy_version"] == version + 1
    events = loop.audit_events(type="gate.calibrated")
    assert len(events) == 1 and '"certified":true' in events[0]["body"]
    assert p.metrics()["gate"]["certified"] is True
    assert loop.verify_audit()["ok"]
    loop.close()


def test_too_few_labels_stay_uncertified_and_say_how_many_more(sqlite_url: str) -> None:
    loop = Loop(sqlite_url, random_state=0)
    loop.create_user("rev", "reviewer")
    p = loop.create_project("tiny", labels=["a", "b"], policy={"target_error": 0.01})
    proba, y = _stream(60, 3)
    p.submit([{"external_id": f"i{i}", "data": {}} for i in range(60)], proba=proba)
    _answer_all(loop, "tiny", {f"i{i}": int(t) for i, t in enumerate(y)}, ["a", "b"])
    summary = loop.service.recalibrate(loop.actor, "tiny")
    assert summary["certified"] is False
    assert summary["labels_needed"] >= 230 - 60
    # Uncertified: even a very confident prediction goes to people.
    [d] = p.submit([{"data": {}}], proba=[[0.999, 0.001]])
    assert (d["route"], d["reason"]) == ("review", "uncertified")
    loop.close()


def test_calibrating_without_a_promise_is_refused(sqlite_url: str) -> None:
    loop = Loop(sqlite_url)
    loop.create_project("plain", labels=["a", "b"])
    with pytest.raises(InvalidInput, match="target_error"):
        loop.service.recalibrate(loop.actor, "plain")
    loop.close()


def test_policy_changes_keep_the_calibration_unless_the_promise_changes(sqlite_url: str) -> None:
    loop = Loop(sqlite_url)
    p = loop.create_project("keep", labels=["a", "b"], policy={"target_error": 0.05})
    loop.service.recalibrate(loop.actor, "keep")
    assert p.metrics()["gate"]["calibrated_at_version"] == 2
    p.update_policy(audit_rate=0.1)
    assert p.metrics()["gate"]["calibrated_at_version"] == 2
    p.update_policy(target_error=0.02)
    assert p.metrics()["gate"]["calibrated_at_version"] is None
    loop.close()


def test_a_broken_promise_fires_an_alert_and_stops_the_project(sqlite_url: str) -> None:
    """Certify on a calibrated stream, then feed confidently wrong predictions (drift):
    the audits break the promise, an alert fires, and on_breach=review_all stops."""
    loop = Loop(sqlite_url, random_state=0)
    loop.create_user("rev", "reviewer")
    labels = ["ok", "bad"]
    p = loop.create_project("drift", labels=labels, policy={
        "target_error": 0.1, "delta": 0.1, "audit_rate": 0.5, "on_breach": "review_all"})
    proba, y = _stream(2000, 0)  # a seed whose holdout certifies (see the test above)
    p.submit([{"external_id": f"i{i}", "data": {}} for i in range(2000)], proba=proba)
    truth = {f"i{i}": int(t) for i, t in enumerate(y)}
    _answer_all(loop, "drift", truth, labels)
    assert loop.service.recalibrate(loop.actor, "drift")["certified"]
    assert loop.service.check_promise(loop.actor, "drift")["broken"] is False

    drifted = p.submit([{"external_id": f"d{i}", "data": {}} for i in range(200)],
                       proba=[[0.99, 0.01]] * 200)
    assert {d["route"] for d in drifted} <= {"auto", "audited"}
    assert any(d["route"] == "audited" for d in drifted)
    _answer_all(loop, "drift", {f"d{i}": 1 for i in range(200)}, labels)  # all were "bad"
    # The audit answers themselves raised the alarm, once, and stopped the project.
    assert len(loop.audit_events(type="alert.promise_broken")) == 1
    assert p.info["policy"]["stopped"] is True
    result = loop.service.check_promise(loop.actor, "drift")
    assert result["broken"] is True and result["estimate"]["low"] > 0.1
    assert len(loop.audit_events(type="alert.promise_broken")) == 1
    assert p.info["policy"]["stopped"] is True
    [after] = p.submit([{"data": {}}], proba=[[0.999, 0.001]])
    assert (after["route"], after["reason"]) == ("review", "stopped")
    assert p.metrics()["auto_error"]["promise_broken"] is True
    assert loop.verify_audit()["ok"]
    loop.close()


def test_rules_route_over_the_model(sqlite_url: str) -> None:
    loop = Loop(sqlite_url, random_state=0)
    p = loop.create_project("pay", labels=["ok", "fraud"], policy={"audit_rate": 0, "rules": [
        {"name": "big", "if": {"meta.amount": {">": 10000}}, "route": "expert"}]})
    small, big, unscored = p.submit([
        {"data": {}, "meta": {"amount": 50}, "proba": [0.99, 0.01]},
        {"data": {}, "meta": {"amount": 50_000}, "proba": [0.99, 0.01]},
        {"data": {}, "meta": {"amount": 50_000}},
    ])
    assert (small["route"], small["reason"]) == ("auto", "confident")
    assert (big["route"], big["reason"]) == ("expert", "rule:big")
    assert (unscored["route"], unscored["reason"]) == ("expert", "rule:big")
    loop.close()


def test_temperature_is_fitted_on_part_of_the_labels_and_scores_the_routing(
    sqlite_url: str,
) -> None:
    """An over-confident model (true P = p, reported p sharpened): with
    ``policy.temperature`` the calibration fits T > 1 on a share of the holdout labels,
    certifies on the rest, and the routing uses the scaled score."""
    loop = Loop(sqlite_url, random_state=0)
    loop.create_user("rev", "reviewer")
    labels = ["ok", "bad"]
    p = loop.create_project("qc", labels=labels, policy={
        "target_error": 0.1, "delta": 0.1, "audit_rate": 0.05, "temperature": True})
    proba, y = _stream(3000, 2)
    logit = np.log(proba[:, 0] / proba[:, 1]) * 3.0  # three times too sure
    sharp = 1 / (1 + np.exp(-logit))
    p.submit([{"external_id": f"i{i}", "data": {"i": i}} for i in range(len(y))],
             proba=np.c_[sharp, 1 - sharp])
    _answer_all(loop, "qc", {f"i{i}": int(t) for i, t in enumerate(y)}, labels)
    summary = loop.service.recalibrate(loop.actor, "qc")
    assert 2.0 < summary["temperature"] < 4.5  # the truth is 3 (a few hundred labels fit it)
    assert summary["certified"] is True
    # The score routed on is the scaled one: 0.99 reported is ~0.82 after T = 3.
    (d,) = p.submit([{"external_id": "new", "data": {}}], proba=[[0.99, 0.01]])
    scaled = 1 / (1 + np.exp(-np.log(99) / summary["temperature"]))
    assert d["confidence"] == pytest.approx(scaled)  # the score the gate routed on
    assert (d["route"] == "review") == (scaled < summary["threshold"])
    loop.close()
