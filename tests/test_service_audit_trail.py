"""The audit trail wired into the store: signed checkpoints written with the events, the
server's key, verify (chain, checkpoints, signatures, completeness), export verified with
the pure functions alone, stop/resume with a reason, and which actions write events."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update

from loopwise import Loop
from loopwise.audit import (
    Checkpoint,
    generate_private_key,
    load_public_key,
    private_key_pem,
    verify_trail,
)
from loopwise.config import Settings
from loopwise.errors import Conflict, Forbidden, InvalidInput
from loopwise.service.audit import default_key_path, verify_export
from loopwise.store.events import PendingEvent, append_events
from loopwise.store.tables import audit_keys, chain_head, checkpoints, events, policy_versions

EVERY = 5
LABELS = ["no", "yes"]


def _key_file(tmp_path: Path) -> str:
    path = tmp_path / "server-key.pem"
    path.write_bytes(private_key_pem(generate_private_key()))
    return str(path)


@pytest.fixture
def audited(db_url: str, tmp_path: Path) -> Iterator[Loop]:
    """A loop signing a checkpoint every 5 events (PostgreSQL: with a key file given)."""
    key = None if db_url.startswith("sqlite") else _key_file(tmp_path)
    lp = Loop(settings=Settings(database_url=db_url, checkpoint_every=EVERY, audit_key=key))
    yield lp
    lp.close()


def _project(lp: Loop, name: str = "t", **policy: Any) -> Any:
    return lp.create_project(name, labels=LABELS, policy={"audit_rate": 0.0, **policy})


def _auto(project: Any, n: int) -> list[int]:
    """Submit ``n`` confident items one at a time (one event each); their ids."""
    return [
        project.submit([{"data": {"x": i}}], proba=[[0.99, 0.01]])[0]["item_id"] for i in range(n)
    ]


def _exec(lp: Loop, stmt: Any) -> None:
    with lp.service.db.write() as conn:
        conn.execute(stmt)


def test_a_signed_checkpoint_is_written_every_n_events_and_verifies(audited: Loop) -> None:
    p = _project(audited)
    _auto(p, 11)  # 12 events: project.created + 11 items.received
    with audited.service.reading() as conn:
        rows = conn.execute(select(checkpoints).order_by(checkpoints.c.seq)).all()
        head = conn.execute(select(chain_head.c.seq)).scalar_one()
        pems = conn.execute(select(audit_keys.c.public_pem)).scalars().all()
    assert head == 12
    assert [(r.seq, r.tree_size) for r in rows] == [(1, 5), (2, 10)]
    assert all(len(r.signature) == 128 for r in rows)
    assert len(pems) == 1 and pems[0].startswith("-----BEGIN PUBLIC KEY-----")
    out = audited.verify_audit()
    assert out["ok"] and out["checkpoints"] == 2 and out["signatures_checked"]
    assert out["events"] == 12 and out["summary"].startswith("ok: 12 events")


def test_on_request_checkpoint_covers_the_head(audited: Loop) -> None:
    p = _project(audited)
    _auto(p, 6)  # 7 events
    cp = audited.service.checkpoint_audit(audited.actor)
    assert (cp["seq"], cp["tree_size"]) == (2, 7)
    _auto(p, 3)  # to 10: the regular checkpoint follows
    out = audited.verify_audit()
    assert out["ok"] and out["checkpoints"] == 3, out
    reviewer = audited.create_user("rev", "reviewer")
    with pytest.raises(Forbidden):
        audited.as_user(reviewer["name"]).service.checkpoint_audit(audited.service.principal("rev"))


def test_tampering_is_named(audited: Loop) -> None:
    p = _project(audited)
    _auto(p, 11)
    # An event's body changed: its hash no longer matches.
    body = '{"tampered":true}'
    _exec(audited, update(events).where(events.c.seq == 3).values(body=body))
    out = audited.verify_audit()
    assert not out["ok"] and out["problem"]["seq"] == 3
    assert out["problem"]["kind"] in ("body", "hash")
    assert out["summary"].startswith("BROKEN at event 3")


def test_a_changed_or_missing_checkpoint_is_caught(audited: Loop) -> None:
    p = _project(audited)
    _auto(p, 11)
    _exec(audited, update(checkpoints).where(checkpoints.c.seq == 2).values(root="0" * 64))
    out = audited.verify_audit()
    assert out["problem"]["kind"] == "signature" and out["problem"]["checkpoint"] == 2
    _exec(audited, delete(checkpoints).where(checkpoints.c.seq == 2))
    out = audited.verify_audit()
    assert out["problem"]["kind"] == "checkpoint", out
    assert "covered by no checkpoint" in out["problem"]["message"]


def test_dropping_the_newest_events_is_caught(audited: Loop) -> None:
    p = _project(audited)
    _auto(p, 8)
    _exec(audited, delete(events).where(events.c.seq > 7))
    out = audited.verify_audit()
    assert not out["ok"] and out["problem"]["kind"] == "gap"
    assert "removed from the end" in out["problem"]["message"]


def test_sqlite_makes_a_private_key_file_next_to_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    with Loop(url) as lp:
        path = default_key_path(lp.service.db)
        assert path == tmp_path / "k.db.audit-key.pem"
        assert path.exists() and (os.stat(path).st_mode & 0o777) == 0o600
        first = lp.service.signer
        with lp.service.reading() as conn:
            dump = "\n".join(conn.exec_driver_sql("SELECT * FROM audit_keys").fetchone()[:2])
        assert "PRIVATE" not in dump
    with Loop(url) as again:  # the same key on the next start
        assert again.service.signer is not None and first is not None
        assert again.service.signer.key_id == first.key_id


def test_a_bad_key_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(InvalidInput, match="audit_key"):
        Loop(settings=Settings(database_url=f"sqlite:///{tmp_path / 'b.db'}", audit_key=str(bad)))


@pytest.mark.postgres
def test_postgres_without_a_key_signs_nothing_and_says_how(pg_url: str, tmp_path: Path) -> None:
    with Loop(settings=Settings(database_url=pg_url, checkpoint_every=EVERY)) as lp:
        _auto(_project(lp), 11)
        out = lp.verify_audit()
        assert out["ok"] and out["checkpoints"] == 0 and not out["signing"]
        assert "LOOPWISE_AUDIT_KEY" in out["summary"]
        with pytest.raises(Conflict, match="LOOPWISE_AUDIT_KEY"):
            lp.service.checkpoint_audit(lp.actor)
    # Configured later: the checkpoints due are signed on start.
    key = _key_file(tmp_path)
    with Loop(settings=Settings(database_url=pg_url, checkpoint_every=EVERY, audit_key=key)) as lp:
        out = lp.verify_audit()
        assert out["ok"] and out["checkpoints"] == 2 and out["signatures_checked"], out


def _verify_lines(lines: list[str]) -> Any:
    """An export checked with the pure functions only: no database, no service."""
    objs = [json.loads(line) for line in lines]
    (header,) = [o for o in objs if o["kind"] == "header"]
    keys = [load_public_key(o["public_pem"]) for o in objs if o["kind"] == "key"]
    cps = [
        Checkpoint.from_dict({k: v for k, v in o.items() if k != "kind"})
        for o in objs
        if o["kind"] == "checkpoint"
    ]
    roles = {o["name"]: o["role"] for o in objs if o["kind"] == "role"}
    rows = [
        (o["seq"], o["prev_hash"], o["hash"], o["body"], o["type"])
        for o in objs
        if o["kind"] == "event"
    ]
    return verify_trail(rows, cps, keys=keys, roles=roles, max_unchecked=header["checkpoint_every"])


def test_an_export_verifies_without_the_database(audited: Loop) -> None:
    p = _project(audited)
    ids = _auto(p, 11)
    p.override(ids[0], "yes", reason="label was wrong")
    lines = list(audited.export_audit())
    result = _verify_lines(lines)
    assert result.ok and result.n_events == 13 and result.n_checkpoints == 2
    assert result.signatures_checked and result.completeness.n_overrides == 1
    assert str(verify_export(lines)) == str(result)
    # Any single altered event line is caught.
    events_at = [i for i, line in enumerate(lines) if json.loads(line)["kind"] == "event"]
    forged = list(lines)
    obj = json.loads(forged[events_at[4]])
    obj["body"] = obj["body"].replace('"x":', '"y":') if '"x":' in obj["body"] else obj["body"]
    obj["hash"] = "f" * 64
    forged[events_at[4]] = json.dumps(obj)
    assert not _verify_lines(forged).ok
    # So is a checkpoint whose root was changed.
    cp_at = next(i for i, line in enumerate(lines) if json.loads(line)["kind"] == "checkpoint")
    obj = json.loads(lines[cp_at])
    obj["root"] = "0" * 64
    bad = [*lines[:cp_at], json.dumps(obj), *lines[cp_at + 1 :]]
    assert _verify_lines(bad).problem.kind == "signature"


def test_stop_and_resume_need_a_reason_and_write_nothing_without(audited: Loop) -> None:
    p = _project(audited)
    before = audited.verify_audit()["events"]
    for changes in (
        {"stopped": True},
        {"stopped": True, "reason": "  "},
        {"stopped": True, "reason": 3},
    ):
        with pytest.raises(InvalidInput, match="reason"):
            p.update_policy(**changes)
    assert audited.verify_audit()["events"] == before
    assert p.info["policy_version"] == 1 and not p.info["policy"]["stopped"]
    p.update_policy(stopped=True, reason="drift on group B")
    assert audited.verify_audit()["stopped"] == {"t": before + 2}
    with pytest.raises(InvalidInput, match="resuming"):
        p.update_policy(stopped=False)
    p.update_policy(stopped=False, reason="model v2 fixes it")
    stops = audited.audit_events(type="project.stopped")
    resumes = audited.audit_events(type="project.resumed")
    assert [json.loads(e["body"])["payload"]["reason"] for e in stops + resumes] == [
        "drift on group B",
        "model v2 fixes it",
    ]
    out = audited.verify_audit()
    assert out["ok"] and out["stopped"] == {}
    # Only an admin may change the policy (and so resume).
    audited.create_user("ed", "expert")
    with pytest.raises(Forbidden):
        audited.as_user("ed").project("t").update_policy(stopped=True, reason="x")


def test_verify_checks_the_role_of_who_resumed(audited: Loop) -> None:
    """A resume written by a reviewer (not through the service) breaks completeness."""
    _project(audited)
    audited.create_user("rita", "reviewer")
    with audited.service.db.write() as conn:
        append_events(
            conn,
            [PendingEvent("project.resumed", "t", "rita", {"reason": "go"})],
            datetime.now(UTC),
            signer=audited.service.signer,
        )
    out = audited.verify_audit()
    assert out["problem"]["kind"] == "role" and "reviewer" in out["problem"]["message"]


def test_audit_inputs_keeps_the_hash_or_the_data(audited: Loop) -> None:
    hashed = _project(audited, "h")
    raw = _project(audited, "r", audit_inputs="data")
    for p in (hashed, raw):
        p.submit([{"data": {"name": "Ada"}}], proba=[[0.99, 0.01]])
    with pytest.raises(InvalidInput, match="audit_inputs"):
        _project(audited, "bad", audit_inputs="everything")

    def entry(project: str) -> dict[str, Any]:
        (e,) = audited.audit_events(project=project, type="items.received")
        out: dict[str, Any] = json.loads(e["body"])["payload"]["items"][0]
        return out

    assert "data" not in entry("h") and len(entry("h")["data_sha256"]) == 64
    assert entry("r")["data"] == {"name": "Ada"}
    assert entry("r")["data_sha256"] == entry("h")["data_sha256"]


def test_every_kind_of_action_writes_an_event(audited: Loop) -> None:
    p = _project(audited, threshold=0.9)
    audited.create_user("rev", "reviewer")
    (auto,) = _auto(p, 1)
    p.submit([{"data": {"x": 9}}], proba=[[0.6, 0.4]])
    rev = audited.as_user("rev")
    (task,) = rev.project("t").claim(1)
    rev.release(task["task_id"])
    (task,) = rev.project("t").claim(1)
    rev.submit_task(task["task_id"], "yes")
    p.override(auto, "yes", reason="checked the file")
    p.update_policy(threshold=0.8)
    p.update_policy(stopped=True, reason="incident")
    p.update_policy(stopped=False, reason="incident closed")
    types = {e["type"] for e in audited.audit_events(limit=1000)}
    assert {
        "project.created",
        "user.created",
        "items.received",
        "task.claimed",
        "task.released",
        "review.submitted",
        "decision.made",
        "decision.overridden",
        "policy.changed",
        "project.stopped",
        "project.resumed",
    } <= types
    assert audited.verify_audit()["ok"]


def test_policy_versions_keep_the_history(audited: Loop) -> None:
    p = _project(audited)
    p.update_policy(stopped=True, reason="why not")
    with audited.service.reading() as conn:
        versions = (
            conn.execute(select(policy_versions.c.version).order_by(policy_versions.c.version))
            .scalars()
            .all()
        )
        n = conn.execute(text("SELECT count(*) FROM events WHERE type = 'policy.changed'"))
        assert n.scalar() == 1
    assert versions == [1, 2]
