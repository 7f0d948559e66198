#!/usr/bin/env python
"""The audit trail: is every single-event tampering detected, and how fast is a full verify?

Run by hand (not part of the test suite)::

    python bench/audit.py [--quick]

Events are built in memory: a realistic stream of a triage project (users created, then
per item: received with an input hash, prediction, route, claim, review, decision; an
expert override with a reason every ~500 items; a stop and an authorised resume every
20,000 events), canonical JSON bodies of ~300 bytes, hash-chained with
``loopwise.audit.link``, stored as ``(seq, prev_hash, hash, body, type)`` rows as the
store returns them. Checkpoints (Merkle root over the events so far, head hash, Ed25519
signature) are written every N events.

(1) Tampering, on a 100,000-event log with a checkpoint every 1,000 events (the last at
event 100,000). Four kinds of change to one event at a random position (1,000 trials
each; positions 1 and n always among them): *alter* (its payload changed, body kept
canonical), *delete*, *insert* (a well-formed new event whose ``prev_hash`` links to the
event before it), *reorder* (moved to another random position). Three attackers:

* ``naive`` — edits the stored rows only;
* ``rewriter`` — after the edit renumbers and re-hashes every later event, so the hash
  chain is consistent again (what someone with write access to the database can do);
* ``forger`` — a rewriter who also deletes the checkpoints from the changed event on
  (forging new ones would need the server's private key).

The verifier gets the chain alone, or the stored checkpoints with the server's public key
and ``max_unchecked`` = the interval, or (against the forger) also a copy of the latest
checkpoint saved elsewhere (exported, published). A trial counts as detected when the
result is not ok. Each trial verifies from the last checkpoint before the changed event,
resuming (``since=``) from the state a verification of the untouched prefix reaches
there; the tampered rows are built lazily as the verifier reads them. For 10 trials per
row the whole log is also verified from event 1 and must name the same problem. Arms that
must read to the end of the log to decide (the rewriter against the chain alone, the
forger against the stored checkpoints) are sampled: 25 trials per kind.

(2) Speed: ``verify_trail`` (chain + Merkle roots + 100 signed checkpoints + completeness)
and ``verify_chain`` over 1,000,000 events, best of 3, against plain ``hashlib`` over the
same bytes (``sha256(prev_hash + "\\n" + body)`` per event, the chain's own hashing) as
the baseline. Target: < 10 s.

Results: a table on stdout, ``bench/results/audit.json`` and ``bench/results/audit.md``
(``audit-quick.*`` with ``--quick``: 100 trials per kind, 5 sampled, 200,000 events for
speed).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import os
import platform
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cryptography

from loopwise.audit import (
    GENESIS,
    Checkpoint,
    MerkleAccumulator,
    TrailResult,
    event_body,
    event_leaf,
    link,
    load_private_key,
    sign_checkpoint,
    verify_chain,
    verify_trail,
)

RESULTS = Path(__file__).resolve().parent / "results"
Row = tuple[int, str, str, str, str]
KINDS = ("alter", "delete", "insert", "reorder")
PROJECT = "mammogram-triage"


# ------------------------------------------------------------------------------ the log
def make_events(n: int, seed: int) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(type, actor, payload) of ``n`` events of a busy triage project."""
    rng = random.Random(seed)
    out: list[tuple[str, str | None, dict[str, Any]]] = [
        ("user.created", None, {"user_id": 1, "name": "ada", "role": "admin"}),
        ("user.created", "ada", {"user_id": 2, "name": "eve", "role": "expert"}),
    ]
    out += [
        ("user.created", "ada", {"user_id": 3 + r, "name": f"reviewer-{r}", "role": "reviewer"})
        for r in range(8)
    ]
    labels = ("benign", "malignant")
    item = task = 0
    while len(out) < n:
        if len(out) % 20_000 < 6 and len(out) > 20:
            out.append(("project.stopped", "ada", {"reason": "drift on site B", "version": 9}))
            out.append(("project.resumed", "ada", {"reason": "new model checked", "version": 10}))
        item += 1
        task += 1
        p = round(rng.random(), 4)
        label = labels[p >= 0.5]
        who = f"reviewer-{rng.randrange(8)}"
        stamp = f"2024-05-01T{item // 3600 % 24:02d}:{item // 60 % 60:02d}:{item % 60:02d}Z"
        out += [
            (
                "item.received",
                "service",
                {
                    "item_id": item,
                    "external_id": f"case-{item:08d}",
                    "input_sha256": hashlib.sha256(item.to_bytes(8, "big")).hexdigest(),
                    "meta": {"site": rng.choice("ABC"), "age_band": rng.choice(["<50", "50+"])},
                },
            ),
            (
                "prediction.made",
                "service",
                {
                    "item_id": item,
                    "model_version": 4,
                    "label": label,
                    "confidence": max(p, 1 - p),
                    "proba": [round(1 - p, 4), p],
                    "novelty": round(rng.random(), 3),
                },
            ),
            (
                "route.decided",
                "service",
                {
                    "item_id": item,
                    "route": "review",
                    "reason": rng.choice(["uncertain", "audit_sample", "rule:high_risk"]),
                    "policy_version": 7,
                },
            ),
            (
                "task.claimed",
                who,
                {"task_id": task, "item_id": item, "lease_expires_at": stamp, "queue": "review"},
            ),
            (
                "review.submitted",
                who,
                {"task_id": task, "item_id": item, "label": label, "seconds": rng.randint(4, 90)},
            ),
            (
                "decision.made",
                who,
                {"item_id": item, "label": label, "source": "reviewer", "reviews": 1},
            ),
        ]
        if item % 500 == 0:
            out.append(
                (
                    "decision.overridden",
                    "eve",
                    {
                        "item_id": item,
                        "from": label,
                        "to": labels[1 - (p >= 0.5)],
                        "reason": "second read of the mammogram",
                    },
                )
            )
    for i in range(10, len(out)):  # what the service adds to every event of a request
        type_, actor, payload = out[i]
        extra = {"request_id": f"{rng.getrandbits(128):032x}", "client": "pacs-gateway/2.3"}
        out[i] = (type_, actor, {**payload, **extra})
    return out[:n]


def body(seq: int, event: tuple[str, str | None, dict[str, Any]]) -> str:
    type_, actor, payload = event
    at = f"2024-05-01T12:00:00.{seq % 1_000_000:06d}Z"
    return event_body(seq=seq, type=type_, at=at, actor=actor, project=PROJECT, payload=payload)


def chain(bodies: list[str], types: list[str]) -> list[Row]:
    hashes = link(GENESIS, bodies)
    prevs = [GENESIS, *hashes[:-1]]
    return list(zip(range(1, len(bodies) + 1), prevs, hashes, bodies, types, strict=True))


def checkpoints(rows: list[Row], every: int, key: Any) -> list[Checkpoint]:
    acc, out = MerkleAccumulator(), list[Checkpoint]()
    for row in rows:
        acc.append(event_leaf(row[2]))
        if row[0] % every == 0:
            cp = Checkpoint(len(out) + 1, row[0], acc.root().hex(), row[2], body_time(row[0]))
            out.append(sign_checkpoint(cp, key))
    return out


def body_time(seq: int) -> str:
    return f"2024-05-01T12:00:{seq % 60:02d}Z"


def build(n: int, seed: int) -> tuple[list[Row], list[str]]:
    events = make_events(n, seed)
    bodies = [body(s, e) for s, e in enumerate(events, start=1)]
    types = [e[0] for e in events]
    return chain(bodies, types), types


# -------------------------------------------------------------------------- tampering
def renumber(text: str, seq: int) -> str:
    """The body with its top-level ``seq`` set (``seq`` and ``type`` are the last keys)."""
    head, _, tail = text.rpartition('"seq":')
    return f'{head}"seq":{seq}{tail[tail.index(",") :]}'


@dataclasses.dataclass(frozen=True)
class Trial:
    kind: str
    p: int  # the tampered event (1-based)
    q: int  # reorder: where it moves to; else p

    @property
    def start(self) -> int:
        """The first position whose stored row differs from the untouched log."""
        return min(self.p, self.q)


def edited(rows: list[Row], t: Trial, seed: int) -> Iterator[tuple[str, str]]:
    """(body, type) of every event from ``t.start`` on, after the edit (bodies keep their
    original seq; the naive attacker does not renumber)."""
    i, n = t.start - 1, len(rows)
    if t.kind == "alter":
        obj = json.loads(rows[i][3])
        obj["payload"] = {**obj["payload"], "label": f"altered-{seed}"}
        yield event_body(**obj), rows[i][4]
        i += 1
    elif t.kind == "delete":
        i += 1
    elif t.kind == "insert":
        new = event_body(
            seq=t.p,
            type="decision.made",
            at=body_time(t.p),
            actor="eve",
            project=PROJECT,
            payload={"item_id": seed, "label": "benign"},
        )
        yield new, "decision.made"
    else:  # reorder: the event at p moves to q (a later q: it lands just before row q+1)
        order = list(range(t.start - 1, max(t.p, t.q)))
        order.remove(t.p - 1)
        order.insert(t.q - t.start, t.p - 1)
        for j in order:
            yield rows[j][3], rows[j][4]
        i = max(t.p, t.q)
    for j in range(i, n):
        yield rows[j][3], rows[j][4]


def naive_rows(rows: list[Row], t: Trial, seed: int) -> Iterator[Row]:
    """The stored rows from ``t.start`` on, edited in place (hashes as they were, except
    a well-formed inserted event, which links to the event before it)."""
    i = t.start - 1
    if t.kind == "alter":
        r = rows[i]
        new_body = next(edited(rows, t, seed))[0]
        yield (r[0], r[1], r[2], new_body, r[4])
        yield from rows[i + 1 :]
    elif t.kind == "delete":
        yield from rows[i + 1 :]
    elif t.kind == "insert":
        new_body, type_ = next(edited(rows, t, seed))
        prev = rows[i][1]
        yield (
            t.p,
            prev,
            hashlib.sha256(f"{prev}\n{new_body}".encode()).hexdigest(),
            new_body,
            type_,
        )
        yield from rows[i:]
    else:
        lo, hi = t.start - 1, max(t.p, t.q)
        order = list(range(lo, hi))
        order.remove(t.p - 1)
        order.insert(t.q - t.start, t.p - 1)
        for j in order:
            yield rows[j]
        yield from rows[hi:]


def rewritten_rows(rows: list[Row], t: Trial, seed: int) -> Iterator[Row]:
    """The rewriter's log from ``t.start`` on: edited, renumbered, re-hashed."""
    prev = rows[t.start - 2][2] if t.start > 1 else GENESIS
    sha256 = hashlib.sha256
    for seq, (text, type_) in enumerate(edited(rows, t, seed), start=t.start):
        text = renumber(text, seq)
        h = sha256(f"{prev}\n{text}".encode()).hexdigest()
        yield (seq, prev, h, text, type_)
        prev = h


def prefix_states(rows: list[Row], cps: list[Checkpoint], keys: list[Any]) -> list[Any]:
    """``states[k]``: the result of verifying the untouched events up to checkpoint k
    (``None`` for k = 0), built one interval at a time."""
    states: list[Any] = [None]
    lo = 0
    for i, cp in enumerate(cps):
        part = rows[lo : cp.tree_size]
        states.append(verify_trail(part, cps[: i + 1], keys=keys, since=states[-1]))
        assert states[-1].ok
        lo = cp.tree_size
    return states


ARMS = [  # (attacker, what the verifier gets, sampled)
    ("naive", "chain only", False),
    ("naive", "checkpoints", False),
    ("rewriter", "chain only", True),
    ("rewriter", "checkpoints", False),
    ("forger", "checkpoints", True),
    ("forger", "checkpoints + saved latest", False),
]


def run_tampering(
    n: int, every: int, trials: int, sampled: int, full_checks: int, seed: int
) -> dict[str, Any]:
    rows, _ = build(n, seed)
    key = load_private_key(random.Random(seed).randbytes(32))
    cps = checkpoints(rows, every, key)
    keys = [key.public_key()]
    assert verify_trail(rows, cps, keys=keys, max_unchecked=every).ok
    states = prefix_states(rows, cps, keys)
    rng = random.Random(seed + 2)
    out: list[dict[str, Any]] = []
    for kind in KINDS:
        plan = []
        for p in [1, n, *(rng.randint(1, n) for _ in range(trials - 2))]:
            q = p
            while kind == "reorder" and q == p:
                q = rng.randint(1, n)
            plan.append(Trial(kind, p, q))
        for attacker, setup, is_sampled in ARMS:
            make: Callable[[list[Row], Trial, int], Iterator[Row]] = (
                naive_rows if attacker == "naive" else rewritten_rows
            )
            dist: list[int] = []
            problems: dict[str, int] = {}
            detected = agreeing = 0
            todo = plan[:sampled] if is_sampled else plan
            t0 = time.perf_counter()
            for i, t in enumerate(todo):
                k = (t.start - 1) // every  # checkpoints wholly before the change
                if setup == "chain only":
                    cp_list, max_unchecked = [], None
                elif attacker != "forger":
                    cp_list, max_unchecked = cps, every
                else:  # the forger deleted the checkpoints from the change on
                    cp_list, max_unchecked = cps[:k], every
                    if setup.endswith("saved latest"):
                        cp_list = [*cp_list, cps[-1]]
                tail = itertools.chain(rows[k * every : t.start - 1], make(rows, t, i))
                r = verify_trail(
                    tail, cp_list, keys=keys, since=states[k], max_unchecked=max_unchecked
                )
                if r.problem is not None:
                    detected += 1
                    dist.append(r.problem.seq - t.start)
                    problems[r.problem.kind] = problems.get(r.problem.kind, 0) + 1
                if i < full_checks:  # the same verdict from event 1, with nothing resumed
                    whole = itertools.chain(rows[: t.start - 1], make(rows, t, i))
                    w = verify_trail(whole, cp_list, keys=keys, max_unchecked=max_unchecked)
                    assert _verdict(w) == _verdict(r), (t, w.problem, r.problem)
                    agreeing += 1
            out.append(
                {
                    "kind": kind,
                    "attacker": attacker,
                    "verifier": setup,
                    "trials": len(todo),
                    "detected": detected,
                    "detection_rate": detected / len(todo),
                    "problems": problems,
                    "mean_events_to_problem": sum(dist) / len(dist) if dist else None,
                    "max_events_to_problem": max(dist) if dist else None,
                    "full_verifications_agreeing": agreeing,
                    "seconds": time.perf_counter() - t0,
                }
            )
            print(_trial_line(out[-1]), flush=True)
    return {"events": n, "checkpoint_every": every, "sampled_trials": sampled, "results": out}


def _verdict(r: TrailResult) -> tuple[Any, ...] | None:
    p = r.problem
    return None if p is None else (p.seq, p.kind, p.checkpoint)


def _trial_line(r: dict[str, Any]) -> str:
    return (
        f"  {r['kind']:8} {r['attacker']:9} {r['verifier']:26} "
        f"{r['detected']:5}/{r['trials']:<5} {r['problems']}  {r['seconds']:.1f} s"
    )


# ------------------------------------------------------------------------------- speed
def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Best wall and CPU seconds of ``repeat`` runs, and the last result."""
    wall = cpu = float("inf")
    out = None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        wall = min(wall, time.perf_counter() - w)
        cpu = min(cpu, time.process_time() - c)
    return wall, cpu, out


def run_speed(n: int, every: int, repeat: int, seed: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    rows, _ = build(n, seed)
    key = load_private_key(random.Random(seed).randbytes(32))
    cps = checkpoints(rows, every, key)
    keys = [key.public_key()]
    build_s = time.perf_counter() - t0
    mean_body = sum(len(r[3].encode()) for r in rows) / n

    def baseline() -> str:
        sha256, h = hashlib.sha256, ""
        for r in rows:
            h = sha256(f"{r[1]}\n{r[3]}".encode()).hexdigest()
        return h

    figures = {}
    for name, fn in [
        ("hashlib sha256 (baseline)", baseline),
        ("verify_chain", lambda: verify_chain(rows)),
        (
            "verify_trail (chain + checkpoints + completeness)",
            lambda: verify_trail(rows, cps, keys=keys),
        ),
    ]:
        load = os.getloadavg()[0]
        wall, cpu, res = timed(fn, repeat)
        if name.startswith("verify"):
            assert res.ok, res
        figures[name] = {
            "seconds": wall,
            "cpu_seconds": cpu,
            "events_per_second": n / wall,
            "load_before": load,
        }
        print(
            f"  {name:50} {wall:6.2f} s  ({cpu:.2f} CPU s)  {n / wall / 1e3:7.0f} k events/s",
            flush=True,
        )
    base = figures["hashlib sha256 (baseline)"]
    for f in figures.values():
        f["ratio_to_baseline"] = f["seconds"] / base["seconds"]
        f["cpu_ratio_to_baseline"] = f["cpu_seconds"] / base["cpu_seconds"]
    return {
        "events": n,
        "checkpoints": len(cps),
        "checkpoint_every": every,
        "mean_body_bytes": mean_body,
        "build_seconds": build_s,
        "repeat": repeat,
        "target_seconds": 10.0,
        "figures": figures,
    }


# ------------------------------------------------------------------------------ output
def markdown(res: dict[str, Any]) -> str:
    tam, sp = res["tampering"], res["speed"]
    lines = [
        "# Audit trail benchmark",
        "",
        f"{res['when']} · {res['machine']}",
        "",
        f"## Tampering: {tam['events']:,} events, checkpoints every {tam['checkpoint_every']:,}",
        "",
        "One event altered, deleted, inserted or moved, at random positions (1 and n "
        "always included). naive: the stored rows edited; rewriter: every later event "
        "renumbered and re-hashed (a consistent chain); forger: a rewriter who also deletes "
        "the checkpoints from the change on. The verifier gets the chain alone; or the "
        "stored checkpoints, the public key and max_unchecked = the interval; or also a "
        "saved copy of the latest checkpoint. *events to problem*: the named problem's "
        "position minus the first changed position (negative for a missing checkpoint, "
        "named at the first event it would have covered). *full*: trials also verified "
        "from event 1, naming the same problem.",
        "",
        "| change | attacker | verifier gets | detected | rate | named problem | "
        "events to problem (mean / max) | full |",
        "|---|---|---|---:|---:|---|---:|---:|",
    ]
    for r in tam["results"]:
        dist = (
            "–"
            if r["mean_events_to_problem"] is None
            else f"{r['mean_events_to_problem']:.1f} / {r['max_events_to_problem']}"
        )
        probs = ", ".join(f"{k} {v}" for k, v in sorted(r["problems"].items())) or "–"
        lines.append(
            f"| {r['kind']} | {r['attacker']} | {r['verifier']} | "
            f"{r['detected']:,} / {r['trials']:,} | {100 * r['detection_rate']:.1f}% | "
            f"{probs} | {dist} | {r['full_verifications_agreeing']} |"
        )
    lines += [
        "",
        "What is not detected, and why: the chain alone cannot see the newest event "
        "deleted (a shorter chain is a valid chain) nor any rewrite (whoever can write the "
        "table can recompute every hash); signed checkpoints catch a rewrite at the first "
        "checkpoint at or after the change. A forger who deletes those checkpoints too is "
        "caught by max_unchecked unless the change lies in the last interval (here the "
        "last 1,000 events): there only a checkpoint saved outside the database helps, "
        "which is why `audit export` copies should be kept. A *role* problem: the change "
        "removed or moved the admin's `user.created` event, so a later resume is no longer "
        "by a known admin (the completeness rules notice what the chain alone cannot).",
        "",
        f"## Speed: {sp['events']:,} events (mean body {sp['mean_body_bytes']:.0f} bytes), "
        f"{sp['checkpoints']} signed checkpoints",
        "",
        f"Best of {sp['repeat']}; target: verify in < {sp['target_seconds']:.0f} s. The "
        "baseline is plain hashlib over the same bytes (the chain's own hashing, nothing "
        "else).",
        "",
        "| what | seconds | CPU s | events/s | × baseline (wall) | × baseline (CPU) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, f in sp["figures"].items():
        lines.append(
            f"| {name} | {f['seconds']:.2f} | {f['cpu_seconds']:.2f} | "
            f"{f['events_per_second'] / 1e3:,.0f} k | {f['ratio_to_baseline']:.1f} | "
            f"{f['cpu_ratio_to_baseline']:.1f} |"
        )
    trail = sp["figures"]["verify_trail (chain + checkpoints + completeness)"]
    met = "met" if trail["seconds"] < sp["target_seconds"] else "NOT met"
    lines += [
        "",
        f"Target < {sp['target_seconds']:.0f} s for {sp['events']:,} events: "
        f"{met} ({trail['seconds']:.2f} s).",
    ]
    return "\n".join(lines) + "\n"


def git_state() -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "src"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" + uncommitted changes in src/" if dirty else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="100 trials per kind (5 sampled), 200,000 events for speed",
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    trials = 100 if args.quick else 1_000
    res: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} · {os.cpu_count()} cores · Python "
        f"{platform.python_version()} · cryptography {cryptography.__version__}",
        "git": git_state(),
        "quick": args.quick,
        "seed": args.seed,
    }
    print("tampering")
    res["tampering"] = run_tampering(100_000, 1_000, trials, 5 if args.quick else 25, 10, args.seed)
    print("speed")
    res["speed"] = run_speed(200_000 if args.quick else 1_000_000, 10_000, 3, args.seed)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "audit-quick" if args.quick else "audit"
    (RESULTS / f"{stem}.json").write_text(json.dumps(res, indent=2) + "\n")
    md = markdown(res)
    (RESULTS / f"{stem}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
