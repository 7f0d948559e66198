"""The ``loopwise`` command, run as a user would (a subprocess, a real database)."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from loopwise import Loop


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loopwise.cli", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=300)


def test_users_create_prints_the_token_last_and_it_works(db_url: str) -> None:
    out = run("users", "create", "carol", "--role", "expert", "--db", db_url)
    assert out.returncode == 0, out.stderr
    token = out.stdout.split()[-1]
    with Loop(db_url) as loop:
        who = loop.service.authenticate(token)
    assert (who.name, who.role.value) == ("carol", "expert")
    again = run("users", "create", "carol", "--db", db_url)
    assert again.returncode != 0 and "already exists" in again.stderr
    bad = run("users", "create", "dave", "--role", "boss", "--db", db_url)
    assert bad.returncode != 0 and "reviewer" in bad.stderr


def test_database_from_the_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    out = run("users", "create", "erin", env={"LOOPWISE_DATABASE_URL": url})
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "env.db").exists()


def test_audit_verify_names_the_first_tampered_event(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with Loop(str(path)) as loop:
        p = loop.create_project("t", labels=["a", "b"])
        p.submit([{"data": {"x": i}} for i in range(20)], proba=[[0.95, 0.05]] * 20)
    ok = run("audit", "verify", "--db", str(path))
    assert ok.returncode == 0 and ok.stdout.startswith("ok: 2 events")  # created, received
    with sqlite3.connect(path) as conn:
        body = conn.execute("SELECT body FROM events WHERE seq = 2").fetchone()[0]
        assert '"confident"' in body
        conn.execute("UPDATE events SET body = ? WHERE seq = 2",
                     (body.replace('"confident"', '"uncertain"', 1),))
    broken = run("audit", "verify", "--db", str(path))
    assert broken.returncode == 1
    assert "event 2" in broken.stdout


def test_audit_verify_catches_deleting_the_newest_events(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    with Loop(str(path)) as loop:
        loop.create_project("t", labels=["a", "b"]).submit(
            [{"data": {"x": 1}}, {"data": {"x": 2}}], proba=[[0.9, 0.1], [0.2, 0.8]])
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM events WHERE seq = (SELECT max(seq) FROM events)")
    out = run("audit", "verify", "--db", str(path))
    assert out.returncode == 1 and "removed" in out.stdout


@pytest.mark.slow
def test_demo_simulate_beats_the_model_alone(tmp_path: Path) -> None:
    """The issue's bar, on three seeds: final decisions more accurate than the model alone,
    with at least half of the decisions automated."""
    for seed in (0, 1, 2):
        out = run("demo", "--simulate", "--json", "--seed", str(seed), "--db",
                  str(tmp_path / f"demo{seed}.db"))
        assert out.returncode == 0, out.stderr
        figures = json.loads(out.stdout)
        assert set(figures) == {
            "items", "automation_rate", "model_accuracy", "system_accuracy",
            "estimated_auto_error", "estimated_auto_error_ci", "estimated_auto_error_n",
            "true_auto_error", "reviews", "model_versions", "gate_mode", "target_error",
            "certified", "certified_threshold", "labels_needed", "learning_curve"}
        assert figures["items"] == 569 and figures["gate_mode"] == "threshold"
        assert figures["automation_rate"] >= 0.5
        assert figures["system_accuracy"] > figures["model_accuracy"]
        lo, hi = figures["estimated_auto_error_ci"]
        assert 0 <= lo <= figures["estimated_auto_error"] <= hi <= 1
        assert figures["model_versions"] >= 2
        curve = figures["learning_curve"]
        assert [c["version"] for c in curve] == list(range(1, len(curve) + 1))
        assert all(a["human_labels"] <= b["human_labels"] for a, b in itertools.pairwise(curve))


def test_demo_table(tmp_path: Path) -> None:
    out = run("demo", "--simulate", "--db", str(tmp_path / "d.db"))
    assert out.returncode == 0, out.stderr
    for word in ("automation rate", "model-alone accuracy", "final-decision accuracy",
                 "estimated auto-error", "true auto-error", "model versions"):
        assert word in out.stdout


def test_demo_serves_the_project_for_a_person(tmp_path: Path) -> None:
    """``loopwise demo`` prints a URL and a reviewer token that signs in and shows a case."""
    import httpx

    from tests.conftest import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopwise.cli", "demo", "--db", str(tmp_path / "s.db"),
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Your reviewer token:"):
                break
        token = lines[-1].split()[-1]
        assert any(f"http://127.0.0.1:{port}/projects/breast-cancer/review" in x for x in lines)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(100):
                try:
                    http.get("/healthz")
                    break
                except httpx.TransportError:
                    import time

                    time.sleep(0.1)
            http.post("/signin", data={"token": token})
            page = http.get("/projects/breast-cancer/review")
            assert page.status_code == 200 and "Model suggests" in page.text
            api = http.get("/api/v1/projects/breast-cancer/metrics",
                           headers={"Authorization": f"Bearer {token}"}).json()
            assert api["model_versions"] == 1 and api["queue"]["open"] > 0
    finally:
        proc.terminate()
        proc.wait(10)


def test_demo_refuses_an_unknown_dataset_and_a_bad_promise(tmp_path: Path) -> None:
    out = run("demo", "--simulate", "--dataset", "mnist", "--db", str(tmp_path / "d.db"))
    assert out.returncode == 2 and "breast-cancer" in out.stderr and "digits" in out.stderr
    out = run("demo", "--simulate", "--target-error", "1.5", "--db", str(tmp_path / "e.db"))
    assert out.returncode == 2 and "target_error" in out.stderr
