"""Alert rules: states, persistence, cooldown, actions, and signed webhooks with retries
against a real local HTTP server."""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Iterator
from hashlib import sha256
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from loopwise.errors import InvalidInput
from tests.test_service_fairness import fill

SECRET = "a-secret-of-16-chars"


@pytest.fixture
def hook() -> Iterator[dict[str, Any]]:
    """A local server that fails its first request (503), then accepts."""
    got: dict[str, Any] = {"bodies": [], "sigs": [], "calls": 0}

    class H(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got["calls"] += 1
            code = 503 if got["calls"] == 1 else 200
            if code == 200:
                got["bodies"].append(json.loads(body))
                got["sigs"].append((self.headers["X-Loopwise-Signature"], body))
            self.send_response(code)
            self.end_headers()

        def log_message(self, *a: Any) -> None:
            pass

    srv = HTTPServer(("127.0.0.1", 0), H)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    got["url"] = f"http://127.0.0.1:{srv.server_address[1]}/hook"
    yield got
    srv.shutdown()


def test_rules_are_validated() -> None:
    from loopwise.domain import Policy

    for bad in (
        {"name": "x", "metric": "nope", "above": 1},
        {"name": "x", "metric": "review_rate"},
        {"name": "x", "metric": "review_rate", "above": 1, "persistence": [3, 2]},
        {"name": "x", "metric": "review_rate", "above": 1, "action": "explode"},
    ):
        with pytest.raises(InvalidInput):
            Policy.from_dict({"alerts": [bad]})


def test_confirmed_alert_notifies_with_a_signed_retried_webhook_and_stops(
    loop: Any, hook: dict[str, Any]
) -> None:
    fill(loop, n=300)
    svc = loop.service
    svc.webhook_backoff = (0.0, 0.05, 0.1)
    svc.add_webhook(loop.actor, "t", hook["url"], SECRET)
    with pytest.raises(InvalidInput):
        svc.add_webhook(loop.actor, "t", "ftp://x", SECRET)
    rules = [
        {
            "name": "busy",
            "metric": "review_rate",
            "above": 0.1,
            "min_n": 100,
            "persistence": [2, 3],
            "action": "stop",
        },
        {"name": "tiny", "metric": "review_rate", "above": 0.1, "min_n": 10_000},
    ]
    loop.project("t").update_policy(alerts=rules)
    first = {s["rule"]["name"]: s["state"] for s in svc.evaluate_alerts(loop.actor, "t")}
    assert first == {"busy": "suspected", "tiny": "insufficient"}
    assert not loop.project("t").info["policy"]["stopped"]
    second = {s["rule"]["name"]: s["state"] for s in svc.evaluate_alerts(loop.actor, "t")}
    assert second["busy"] == "confirmed"
    assert loop.project("t").info["policy"]["stopped"]
    stopped = [
        json.loads(e["body"])["payload"]
        for e in loop.audit_events(project="t", type="project.stopped")
    ]
    assert stopped[-1]["reason"] == "alert busy"
    assert len(loop.audit_events(project="t", type="alert.raised")) == 1
    svc.evaluate_alerts(loop.actor, "t")  # still confirmed: no new event
    assert len(loop.audit_events(project="t", type="alert.raised")) == 1
    svc.wait_webhooks()
    assert hook["calls"] == 2 and hook["bodies"][0]["rule"] == "busy"
    sig, body = hook["sigs"][0]
    assert sig == "sha256=" + hmac.new(SECRET.encode(), body, sha256).hexdigest()
    (wh,) = svc.list_webhooks(loop.actor, "t")
    (d,) = wh["deliveries"]
    assert d["state"] == "delivered" and [a["status"] for a in d["attempts"]] == [503, 200]
    assert "secret" not in json.dumps(wh)
    # back to ok clears it
    loop.project("t").update_policy(alerts=[{**rules[0], "above": 0.99}])
    for _ in range(3):
        svc.evaluate_alerts(loop.actor, "t")
    assert len(loop.audit_events(project="t", type="alert.cleared")) == 1


def test_rules_run_after_a_batch_at_most_every_interval(loop: Any) -> None:
    fill(loop, n=300)
    loop.project("t").update_policy(
        alerts=[{"name": "busy", "metric": "review_rate", "above": 0.1, "min_n": 10}]
    )
    loop.service.alert_interval = 0.0
    fill(loop, n=20, seed=3)
    assert loop.project("t").metrics()["alerts"][0]["state"] == "confirmed"
    loop.service.alert_interval = 3600.0
    loop.project("t").update_policy(
        alerts=[{"name": "busy", "metric": "review_rate", "above": 0.99, "min_n": 10}]
    )
    fill(loop, n=20, seed=4)  # within the interval: not evaluated again
    assert loop.project("t").metrics()["alerts"][0]["state"] == "confirmed"
