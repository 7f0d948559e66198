#!/usr/bin/env python
"""REST API throughput and latency of loopwise against a real uvicorn server.

Run by hand (not part of the test suite)::

    python bench/api.py [--db sqlite|postgres|both] [--quick] [--two-workers]

For each database (SQLite in a temporary file; PostgreSQL in a fresh database created on
the server at ``127.0.0.1:5432`` and dropped after) it starts ``uvicorn
loopwise.server:create_app`` as a subprocess (1 worker) and measures:

(a) items/s through ``POST /api/v1/projects/{p}/items`` in batches of 100 and 1,000, with
    routing and audit events: items carrying client probabilities (70% confident, 30%
    uncertain, so about a third go to review), and items scored by the project's own
    model (trained first on 200 human-labeled breast-cancer cases);
(b) claim -> submit round trips/s for one reviewer, p50/p95 latency of each call;
(c) the same with 16 concurrent reviewers (threads, each its own client and token);
(d) seconds to export 10,000 decided items (jsonl and csv).

In the same run it measures baselines on the same machine, so that ratios survive a noisy
machine: a bare FastAPI app (uvicorn subprocess, no database) that parses the same JSON
body and returns (``/parse``) or builds the same response model (``/echo``); a bare small
POST (floor of one claim or submit call); ``service.submit`` and ``service.export``
in-process (no HTTP).

Results: a table on stdout, ``bench/results/api-<db>.json`` (``api-<db>-quick.json`` with
``--quick``) and ``bench/results/api.md`` (``api-quick.md``), built from every result file
present. Only 127.0.0.1 is contacted; every server is stopped in ``finally``; every loop is
bounded both in count and in time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
HOST = "127.0.0.1"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
N_REVIEWERS = 16
LABEL_STUDIO = "Label Studio 1.23, SQLite, one user, same kind of machine"

# Reference figures (Label Studio 1.23 on this kind of machine) and the target (5x each).
# "higher": bigger is better; "lower": smaller is better. Ranges are (low, high); the
# target is 5x the *best* reference figure, so it is the conservative one.
REFERENCE: dict[str, dict[str, Any]] = {
    "submit_b1000": {"ref": (5400, 7600), "better": "higher", "unit": "items/s"},
    "submit_b100": {"ref": (1300, 3200), "better": "higher", "unit": "items/s"},
    "review_rt": {"ref": (15, 15), "better": "higher", "unit": "round trips/s"},
    "claim_p50": {"ref": (30, 30), "better": "lower", "unit": "ms"},
    "answer_p50": {"ref": (34, 34), "better": "lower", "unit": "ms"},
    "export": {"ref": (8.8, 8.8), "better": "lower", "unit": "s"},
}
TARGET_FACTOR = 5.0


@dataclass(frozen=True)
class Sizes:
    submit_items: int  # items per (a) configuration
    submit_seconds: float  # time cap per (a) configuration
    inproc_items: int  # (a) in-process baseline
    baseline_seconds: float  # time cap per bare-FastAPI configuration
    queue_items: int  # review tasks waiting for (b) and (c)
    review_max: int  # (b) round trips
    review_seconds: float
    concurrent_max: int  # (c) round trips in total
    concurrent_seconds: float
    export_items: int
    export_reviewed: int  # of the export items, how many are decided by a reviewer
    export_repeats: int
    n_train: int  # human labels the first model of bench-model is trained on
    two_workers_items: int
    watchdog_seconds: int  # the whole run per database


FULL = Sizes(submit_items=20_000, submit_seconds=60, inproc_items=10_000, baseline_seconds=15,
             queue_items=9_000, review_max=2_000, review_seconds=20, concurrent_max=5_000,
             concurrent_seconds=25, export_items=10_000, export_reviewed=300, export_repeats=3,
             n_train=200, two_workers_items=20_000, watchdog_seconds=1500)
QUICK = Sizes(submit_items=2_000, submit_seconds=1.5, inproc_items=2_000, baseline_seconds=1,
              queue_items=600, review_max=100, review_seconds=1.5, concurrent_max=300,
              concurrent_seconds=2, export_items=2_000, export_reviewed=20, export_repeats=1,
              n_train=60, two_workers_items=2_000, watchdog_seconds=240)


# --------------------------------------------------------------------------------------
# small helpers


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float | None:
    return None if not values else float(np.percentile(np.asarray(values), q))


def ms(values: list[float], q: float) -> float | None:
    v = pct(values, q)
    return None if v is None else round(1000 * v, 2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def http_client(base: str, token: str | None = None) -> httpx.Client:
    assert base.startswith(f"http://{HOST}:"), base  # only ever the local machine
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # trust_env=False: no proxy from the environment, ever.
    return httpx.Client(base_url=base, headers=headers, timeout=120.0, trust_env=False)


_CLK = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """User+system CPU seconds of a process and every live descendant (from /proc)."""
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        parent[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / _CLK
    total, todo, seen = 0.0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += cpu.get(pid, 0.0)
        todo.extend(c for c, p in parent.items() if p == pid)
    return total


def system_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        parts = f.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in parts[1:9])
    return (user + nice + system + irq + softirq + steal) / _CLK


def process_cpu_seconds(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        out[pid] = (int(fields[11]) + int(fields[12])) / _CLK
    return out


class Machine:
    """What else runs on the machine: the PostgreSQL backends of our database count as
    ours; everything else (other people's tests, say) is noise, measured per phase."""

    pg_db: str | None = None
    quiet_budget = 0.0  # seconds left to wait, in all, for a quiet machine before phases
    quiet_per_phase = 30.0  # and at most this long before one phase

    @classmethod
    def pg_backends(cls) -> list[int]:
        if cls.pg_db is None:
            return []
        import psycopg

        try:
            with psycopg.connect(pg_admin_dsn(PG_URL), autocommit=True,
                                 connect_timeout=3) as conn:
                rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                                    (cls.pg_db,)).fetchall()
            return [int(r[0]) for r in rows]
        except Exception:
            return []

    @classmethod
    def wait_quiet(cls, ours: Callable[[], float]) -> float:
        """Wait (bounded) until other processes use < 0.3 cores; returns seconds waited."""
        limit = min(cls.quiet_per_phase, cls.quiet_budget)
        if limit <= 0:
            return 0.0
        t0 = time.monotonic()
        while True:
            b0, o0 = system_busy_seconds(), ours()
            time.sleep(0.5)
            others = (system_busy_seconds() - b0 - (ours() - o0)) / 0.5
            waited = time.monotonic() - t0
            if others < 0.3 or waited > limit:
                cls.quiet_budget -= waited
                return round(waited, 1)


class Meter:
    """Wall time, server CPU, this process's CPU, and the CPU that other processes on the
    machine took meanwhile (noise) over a block."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.wall = 0.0
        self.server_cpu: float | None = None
        self.db_cpu: float | None = None
        self.client_cpu = 0.0
        self.others_cpu = 0.0
        self.waited = 0.0

    def _ours(self) -> float:
        own = time.process_time()
        if self.server_pid:
            own += tree_cpu_seconds(self.server_pid)
        return own + sum(process_cpu_seconds(Machine.pg_backends()).values())

    def __enter__(self) -> Meter:
        self.waited = Machine.wait_quiet(self._ours)
        self._pg = Machine.pg_backends()
        self._db0 = process_cpu_seconds(self._pg)
        self._s0 = tree_cpu_seconds(self.server_pid) if self.server_pid else None
        self._busy0 = system_busy_seconds()
        self._c0 = time.process_time()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._t0
        self.client_cpu = time.process_time() - self._c0
        busy = system_busy_seconds() - self._busy0
        if self.server_pid and self._s0 is not None:
            self.server_cpu = tree_cpu_seconds(self.server_pid) - self._s0
        pg = set(self._pg) | set(Machine.pg_backends())
        if pg:
            db1 = process_cpu_seconds(list(pg))
            self.db_cpu = sum(v - self._db0.get(k, 0.0) for k, v in db1.items())
        self.others_cpu = max(0.0, busy - self.client_cpu - (self.server_cpu or 0.0)
                              - (self.db_cpu or 0.0))

    @property
    def own_cpu(self) -> float:
        """CPU seconds of the benchmark's own processes: server, PostgreSQL backends, client."""
        return (self.server_cpu or 0.0) + (self.db_cpu or 0.0) + self.client_cpu

    def per_cpu_second(self, n: float) -> float | None:
        """``n`` per CPU second of our own processes: with a sequential client on a quiet
        machine, roughly the rate one would measure (I/O waits such as fsync aside), and much
        less sensitive than wall-clock rates to other load on the machine."""
        return None if self.own_cpu <= 0 else round(n / self.own_cpu, 1)

    def as_dict(self) -> dict[str, Any]:
        def per_s(x: float | None) -> float | None:
            return None if x is None or self.wall == 0 else round(x / self.wall, 2)

        return {
            "wall_s": round(self.wall, 4),
            "server_cpu_s": None if self.server_cpu is None else round(self.server_cpu, 3),
            "server_cores_busy": per_s(self.server_cpu),
            "postgres_cores_busy": per_s(self.db_cpu),
            "client_cores_busy": per_s(self.client_cpu),
            "others_cores_busy": per_s(self.others_cpu),
            "waited_for_quiet_s": self.waited,
        }


# --------------------------------------------------------------------------------------
# servers


class Server:
    """A uvicorn subprocess on 127.0.0.1; always stopped by the context manager."""

    def __init__(self, app: str, *, env: dict[str, str], workers: int, log_path: Path,
                 factory: bool = True, app_dir: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = log_path
        cmd = [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(self.port),
               "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
        if factory:
            cmd.append("--factory")
        if app_dir is not None:
            cmd += ["--app-dir", str(app_dir)]
        self.cmd = cmd
        self.env = {**os.environ, **env}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90) -> None:
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(self.cmd, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        with http_client(self.url) as c:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
                try:
                    if c.get("/healthz", timeout=1).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"server did not start within {timeout} s")

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def stop(self) -> None:
        p = self.process
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            # The whole session we started (uvicorn and its workers), by its own id.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        server.start()
        yield server
    finally:
        server.stop()


class Tiny(BaseModel):
    label: str | None = None
    n: int = 1


def baseline_app() -> Any:
    """The bare FastAPI app for the baselines (loaded by uvicorn with ``--app-dir bench``).

    ``/parse`` reads and parses the body like the items route and returns a count;
    ``/echo`` also builds the same response (the ``SubmitOut`` response model) from it;
    ``/tiny`` is a small pydantic-validated POST in the thread pool, like claim and submit.
    """
    from loopwise.api.schemas import SubmitOut

    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    def parse_items(raw: bytes) -> list[Any]:
        body = json.loads(raw)
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise HTTPException(422, 'body: must be {"items": [...]}')
        return body["items"]

    @app.post("/parse")
    async def parse(request: Request) -> dict[str, Any]:
        return {"n": len(parse_items(await request.body()))}

    @app.post("/echo", response_model=SubmitOut)
    async def echo(request: Request) -> dict[str, Any]:
        items = parse_items(await request.body())
        return {"decisions": [
            {"item_id": i, "external_id": it.get("external_id"), "route": "auto",
             "reason": "confident", "label": "benign",
             "confidence": max(it["proba"]) if it.get("proba") else None}
            for i, it in enumerate(items)]}

    @app.post("/tiny")
    def tiny(body: Tiny) -> dict[str, Any]:
        return {"ok": True, "label": body.label}

    return app


# --------------------------------------------------------------------------------------
# databases


def pg_admin_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@contextlib.contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """A fresh database URL: a SQLite file, or a new PostgreSQL database dropped after."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    import psycopg

    name = f"lw_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_dsn(PG_URL), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(pg_admin_dsn(PG_URL), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_version() -> str | None:
    try:
        import psycopg

        with psycopg.connect(pg_admin_dsn(PG_URL), connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return None if row is None else str(row[0])
    except Exception as exc:  # the machine section only reports it
        return f"unavailable ({type(exc).__name__})"


# --------------------------------------------------------------------------------------
# data


class Data:
    """Real feature rows (sklearn's breast-cancer cases) turned into request bodies."""

    def __init__(self, seed: int = 0) -> None:
        from loopwise.demo import breast_cancer_records

        self.records, self.y, self.labels = breast_cancer_records(seed)
        self.rng = np.random.default_rng(seed)
        self.keys = list(self.records[0]["data"])

    def _data(self, i: int, jitter: bool) -> dict[str, float]:
        base = self.records[i % len(self.records)]["data"]
        if not jitter:
            return base
        noise = 1.0 + 0.02 * self.rng.standard_normal(len(self.keys))
        return {k: round(base[k] * f, 5) for k, f in zip(self.keys, noise, strict=True)}

    def proba_rows(self, n: int, uncertain: float) -> list[list[float]]:
        """Two-class probabilities: a share ``uncertain`` with top class in [0.5, 0.9)."""
        top = np.where(self.rng.random(n) < uncertain, self.rng.uniform(0.5, 0.9, n),
                       self.rng.uniform(0.9, 0.999, n))
        first = self.rng.random(n) < 0.5
        out = []
        for t, f in zip(top.round(4), first, strict=True):
            p = float(t)
            out.append([p, 1.0 - p] if f else [1.0 - p, p])
        return out

    def items(self, prefix: str, n: int, *, uncertain: float | None, offset: int = 0,
              jitter: bool = False) -> list[dict[str, Any]]:
        """``n`` items; with probabilities unless ``uncertain`` is None (the model scores)."""
        probs = None if uncertain is None else self.proba_rows(n, uncertain)
        groups = ("f", "m")
        out = []
        for j in range(n):
            it: dict[str, Any] = {
                "external_id": f"{prefix}-{j}",
                "data": self._data(offset + j, jitter),
                "meta": {"sex": groups[j % 2], "site": f"s{j % 7}"},
            }
            if probs is not None:
                it["proba"] = probs[j]
            out.append(it)
        return out

    @staticmethod
    def bodies(items: list[dict[str, Any]], batch: int) -> list[bytes]:
        return [json.dumps({"items": items[s:s + batch]}).encode()
                for s in range(0, len(items), batch)]


# --------------------------------------------------------------------------------------
# setup in-process (before the server starts)


@dataclass
class Setup:
    tokens: dict[str, str]
    labels: list[str]
    train_s: float
    n_train: int


PROJECTS = {
    "bench-proba": {"threshold": 0.9, "audit_rate": 0.02},
    "bench-model": {"threshold": 0.9, "audit_rate": 0.02},
    "bench-queue": {"threshold": 0.9, "audit_rate": 0.0},
    "bench-export": {"threshold": 0.9, "audit_rate": 0.0},
}


def setup_in_process(url: str, data: Data, n_train: int) -> Setup:
    """Users, projects, and the first model of ``bench-model`` trained on ``n_train`` human
    labels of real cases (a person labels the cold-start batch; then the model is fitted)."""
    from loopwise import Loop

    loop = Loop(url, random_state=0)
    try:
        tokens = {"svc": loop.create_user("svc", "service")["token"]}
        for name in ["trainer", "rx", *[f"r{i:02d}" for i in range(N_REVIEWERS)]]:
            tokens[name] = loop.create_user(name, "reviewer")["token"]
        for name, policy in PROJECTS.items():
            loop.create_project(name, labels=data.labels, input="tabular", sensitive=["sex"],
                                policy=policy)
        # Cold start: real cases, no model yet -> all to review; a person labels them.
        proj = loop.project("bench-model")
        first = [{**r, "meta": {"sex": "f" if i % 2 else "m"}}
                 for i, r in enumerate(data.records[:n_train])]
        proj.submit(first)
        truth = {r["external_id"]: int(t) for r, t in zip(data.records, data.y, strict=True)}
        trainer = loop.as_user("trainer")
        tproj = trainer.project("bench-model")
        for _ in range(n_train // 100 + 2):  # bounded: 100 per claim
            tasks = tproj.claim(100)
            if not tasks:
                break
            for t in tasks:
                trainer.submit_task(t["task_id"], data.labels[truth[t["item"]["external_id"]]])
        t0 = time.perf_counter()
        model = proj.train()
        train_s = time.perf_counter() - t0
        return Setup(tokens=tokens, labels=data.labels, train_s=train_s,
                     n_train=int(model["n_train"]))
    finally:
        loop.close()


# --------------------------------------------------------------------------------------
# (a) submit throughput


def run_submit(base: str, path: str, token: str | None, bodies: list[bytes], batch: int,
               seconds: float, server_pid: int | None, check: bool = True) -> dict[str, Any]:
    """Send the bodies one after another (sequential client); items/s over the whole run."""
    lat: list[float] = []
    routes: dict[str, int] = {}
    sent = 0
    headers = {"Content-Type": "application/json"}
    with http_client(base, token) as c:
        # warm-up: the first body (not timed; model load, statement caches)
        r = c.post(path, content=bodies[0], headers=headers)
        r.raise_for_status()
        with Meter(server_pid) as m:
            deadline = time.monotonic() + seconds  # after any wait for a quiet machine
            for body in bodies[1:]:
                if time.monotonic() > deadline:
                    break
                t0 = time.perf_counter()
                r = c.post(path, content=body, headers=headers)
                lat.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise RuntimeError(f"POST {path}: {r.status_code} {r.text[:500]}")
                if check:
                    out = r.json()["decisions"]
                    if len(out) != batch:
                        raise RuntimeError(f"POST {path}: {len(out)} decisions for {batch}")
                    for d in out:
                        routes[d["route"]] = routes.get(d["route"], 0) + 1
                sent += batch
    return {
        "batch": batch,
        "items": sent,
        "requests": len(lat),
        "items_per_s": round(sent / m.wall, 1) if m.wall else None,
        "items_per_cpu_s": m.per_cpu_second(sent),
        "request_ms_p50": ms(lat, 50),
        "request_ms_p95": ms(lat, 95),
        "routes": routes,
        "body_bytes_mean": int(np.mean([len(b) for b in bodies])),
        **m.as_dict(),
    }


def run_submit_inprocess(url: str, items: list[dict[str, Any]], batch: int,
                         seconds: float) -> dict[str, Any]:
    """``service.submit`` without HTTP, on the same database (the server is idle)."""
    from loopwise import Loop

    loop = Loop(url)
    try:
        actor = loop.service.principal("svc")
        svc = loop.service
        svc.submit(actor, "bench-proba", items[:batch])  # warm-up
        sent = 0
        with Meter(None) as m:
            deadline = time.monotonic() + seconds
            for s in range(batch, len(items), batch):
                if time.monotonic() > deadline:
                    break
                svc.submit(actor, "bench-proba", items[s:s + batch])
                sent += batch
        return {"batch": batch, "items": sent, "items_per_s": round(sent / m.wall, 1),
                "items_per_cpu_s": m.per_cpu_second(sent), **m.as_dict()}
    finally:
        loop.close()


# --------------------------------------------------------------------------------------
# (b), (c) review round trips


def reviewer_loop(base: str, token: str, project: str, max_rt: int, deadline: float,
                  start: threading.Event | None, budget: Callable[[], bool],
                  label: str) -> dict[str, Any]:
    claim_lat: list[float] = []
    answer_lat: list[float] = []
    errors: dict[str, int] = {}
    done = 0
    empty = False
    with http_client(base, token) as c:
        if start is not None:
            start.wait(60)
        for _ in range(max_rt):
            if time.monotonic() > deadline or not budget():
                break
            t0 = time.perf_counter()
            r = c.post(f"/api/v1/projects/{project}/tasks/claim", json={"n": 1})
            t1 = time.perf_counter()
            if r.status_code != 200:
                errors[f"claim {r.status_code}"] = errors.get(f"claim {r.status_code}", 0) + 1
                continue
            tasks = r.json()["tasks"]
            if not tasks:
                empty = True
                break
            claim_lat.append(t1 - t0)
            t2 = time.perf_counter()
            r = c.post(f"/api/v1/tasks/{tasks[0]['task_id']}/submit",
                       json={"label": label, "seconds": 1.0})
            t3 = time.perf_counter()
            if r.status_code != 200:
                errors[f"submit {r.status_code}"] = errors.get(f"submit {r.status_code}", 0) + 1
                continue
            answer_lat.append(t3 - t2)
            done += 1
    return {"done": done, "claim": claim_lat, "answer": answer_lat, "errors": errors,
            "queue_empty": empty}


def run_reviews(base: str, tokens: list[str], project: str, label: str, max_total: int,
                seconds: float, server_pid: int | None) -> dict[str, Any]:
    """``len(tokens)`` reviewers (threads when more than one) claim and answer tasks."""
    lock = threading.Lock()
    left = [max_total]

    def budget() -> bool:
        with lock:
            if left[0] <= 0:
                return False
            left[0] -= 1
            return True

    # warm-up: one round trip, not timed
    reviewer_loop(base, tokens[0], project, 1, time.monotonic() + 30, None, lambda: True, label)

    results: list[dict[str, Any]] = []
    start = threading.Event()
    deadline_box: list[float] = []

    def worker(tok: str) -> None:
        start.wait(60)
        res = reviewer_loop(base, tok, project, max_total, deadline_box[0], None, budget, label)
        with lock:
            results.append(res)

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in tokens]
    for t in threads:
        t.start()
    time.sleep(0.2)  # let each thread open its client
    with Meter(server_pid) as m:
        deadline_box.append(time.monotonic() + seconds)
        start.set()
        for t in threads:
            t.join(seconds + 120)
    if any(t.is_alive() for t in threads):
        raise RuntimeError("a reviewer thread did not finish in time")
    claim = [x for r in results for x in r["claim"]]
    answer = [x for r in results for x in r["answer"]]
    rt = [c + a for r in results for c, a in zip(r["claim"], r["answer"], strict=False)]
    done = sum(r["done"] for r in results)
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    return {
        "reviewers": len(tokens),
        "round_trips": done,
        "round_trips_per_s": round(done / m.wall, 1) if m.wall else None,
        "round_trips_per_cpu_s": m.per_cpu_second(done),
        "claim_ms_p50": ms(claim, 50), "claim_ms_p95": ms(claim, 95),
        "answer_ms_p50": ms(answer, 50), "answer_ms_p95": ms(answer, 95),
        "round_trip_ms_p50": ms(rt, 50), "round_trip_ms_p95": ms(rt, 95),
        "errors": errors,
        "queue_ran_empty": any(r["queue_empty"] for r in results),
        **m.as_dict(),
    }


def run_tiny(base: str, seconds: float, max_n: int, server_pid: int | None) -> dict[str, Any]:
    """Floor of a claim -> submit round trip: two small validated POSTs to a bare app."""
    lat: list[float] = []
    with http_client(base) as c:
        c.post("/tiny", json={"n": 1}).raise_for_status()
        with Meter(server_pid) as m:
            deadline = time.monotonic() + seconds
            for _ in range(max_n):
                if time.monotonic() > deadline:
                    break
                t0 = time.perf_counter()
                c.post("/tiny", json={"n": 1}).raise_for_status()
                c.post("/tiny", json={"label": "benign"}).raise_for_status()
                lat.append(time.perf_counter() - t0)
    return {"round_trips": len(lat), "round_trips_per_s": round(len(lat) / m.wall, 1),
            "round_trip_ms_p50": ms(lat, 50), "round_trip_ms_p95": ms(lat, 95), **m.as_dict()}


# --------------------------------------------------------------------------------------
# (d) export


def run_export(base: str, token: str, project: str, fmt: str, repeats: int,
               server_pid: int | None) -> dict[str, Any]:
    times: list[float] = []
    size = lines = 0
    cpu: dict[str, Any] = {}
    with http_client(base, token) as c:
        for _ in range(max(1, repeats)):
            with Meter(server_pid) as m, c.stream(
                    "GET", f"/api/v1/projects/{project}/export", params={"format": fmt}) as r:
                if r.status_code != 200:
                    r.read()
                    raise RuntimeError(f"export {fmt}: {r.status_code} {r.text[:300]}")
                size = lines = 0
                for chunk in r.iter_bytes():
                    size += len(chunk)
                    lines += chunk.count(b"\n")
            times.append(m.wall)
            cpu = m.as_dict()
    return {"format": fmt, "seconds_median": round(float(np.median(times)), 3),
            "seconds_min": round(min(times), 3), "seconds_all": [round(t, 3) for t in times],
            "bytes": size, "lines": lines, "last_run": cpu}


def run_export_inprocess(url: str, project: str, fmt: str) -> dict[str, Any]:
    from loopwise import Loop

    loop = Loop(url)
    try:
        svc = loop.service
        actor = svc.principal("svc")
        times = []
        for _ in range(2):  # the first run warms this process's caches; the best counts
            t0 = time.perf_counter()
            size = sum(len(chunk) for chunk in svc.export(actor, project, fmt))
            times.append(time.perf_counter() - t0)
        return {"format": fmt, "seconds": round(min(times), 3),
                "seconds_all": [round(t, 3) for t in times], "chars": size}
    finally:
        loop.close()


def decided_count(base: str, token: str, project: str) -> tuple[int, int]:
    n = decided = 0
    with http_client(base, token) as c, c.stream(
            "GET", f"/api/v1/projects/{project}/export", params={"format": "jsonl"}) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.strip():
                n += 1
                decided += json.loads(line)["decision"] is not None
    return n, decided


# --------------------------------------------------------------------------------------
# one database


def submit_untimed(base: str, token: str, project: str, bodies: list[bytes]) -> None:
    with http_client(base, token) as c:
        for body in bodies:
            r = c.post(f"/api/v1/projects/{project}/items", content=body,
                       headers={"Content-Type": "application/json"})
            if r.status_code != 200:
                raise RuntimeError(f"setup submit: {r.status_code} {r.text[:300]}")


def review_all(base: str, token: str, project: str, label: str, max_tasks: int) -> int:
    """Answer every open task of a project (setup, untimed); bounded by ``max_tasks``."""
    done = 0
    with http_client(base, token) as c:
        while done < max_tasks:
            r = c.post(f"/api/v1/projects/{project}/tasks/claim", json={"n": 100})
            r.raise_for_status()
            tasks = r.json()["tasks"]
            if not tasks:
                break
            for t in tasks:
                c.post(f"/api/v1/tasks/{t['task_id']}/submit",
                       json={"label": label}).raise_for_status()
                done += 1
    return done


def bench_database(kind: str, sizes: Sizes, two_workers: bool, workdir: Path) -> dict[str, Any]:
    data = Data(seed=0)
    out: dict[str, Any] = {"db": kind}
    with database(kind, workdir) as url:
        Machine.pg_db = url.rsplit("/", 1)[1] if kind == "postgres" else None
        log(f"{kind}: setup (users, projects, first model on {sizes.n_train} labels)")
        t0 = time.perf_counter()
        setup = setup_in_process(url, data, sizes.n_train)
        out["setup"] = {"seconds": round(time.perf_counter() - t0, 2),
                        "train_seconds": round(setup.train_s, 3), "n_train": setup.n_train}
        tok = setup.tokens
        env = {"LOOPWISE_DATABASE_URL": url}
        logf = workdir / f"server-{kind}.log"
        server = Server("loopwise.server:create_app", env=env, workers=1, log_path=logf)
        items_path = "/api/v1/projects/{p}/items"
        a: dict[str, Any] = {}
        b_c: dict[str, Any] = {}
        d: dict[str, Any] = {}
        # Bodies built before any timing: the client only sends bytes.
        bodies: dict[tuple[str, int], list[bytes]] = {}
        proba_items: dict[int, list[dict[str, Any]]] = {}
        for batch in (100, 1000):
            n = sizes.submit_items + batch  # + one warm-up batch
            proba_items[batch] = data.items(f"p{batch}", n, uncertain=0.3)
            bodies[("proba", batch)] = Data.bodies(proba_items[batch], batch)
            model_items = data.items(f"m{batch}", n, uncertain=None, offset=sizes.n_train,
                                     jitter=True)
            bodies[("model", batch)] = Data.bodies(model_items, batch)
        with running(server):
            log(f"{kind}: server up at {server.url} (1 worker)")
            for variant, project in (("proba", "bench-proba"), ("model", "bench-model")):
                for batch in (100, 1000):
                    key = f"{variant}_b{batch}"
                    log(f"{kind}: (a) submit {key}")
                    a[key] = run_submit(server.url, items_path.format(p=project), tok["svc"],
                                        bodies[(variant, batch)], batch, sizes.submit_seconds,
                                        server.pid)
                    log(f"{kind}:     {a[key]['items_per_s']} items/s")
            # Setup for (b), (c), (d): untimed.
            log(f"{kind}: setup of the review queue and the export project")
            q_items = data.items("q", sizes.queue_items, uncertain=1.0)
            submit_untimed(server.url, tok["svc"], "bench-queue", Data.bodies(q_items, 1000))
            n_exp = sizes.export_items
            e_conf = data.items("e", n_exp - sizes.export_reviewed, uncertain=0.0)
            e_unc = data.items("eu", sizes.export_reviewed, uncertain=1.0)
            submit_untimed(server.url, tok["svc"], "bench-export",
                           Data.bodies(e_conf + e_unc, 1000))
            reviewed = review_all(server.url, tok["rx"], "bench-export", setup.labels[1],
                                  sizes.export_reviewed + 10)
            n_items, n_decided = decided_count(server.url, tok["svc"], "bench-export")
            d["items"], d["decided"], d["reviewed"] = n_items, n_decided, reviewed

            log(f"{kind}: (b) one reviewer")
            b_c["one"] = run_reviews(server.url, [tok["r00"]], "bench-queue", setup.labels[0],
                                     sizes.review_max, sizes.review_seconds, server.pid)
            log(f"{kind}:     {b_c['one']['round_trips_per_s']} round trips/s")
            log(f"{kind}: (c) {N_REVIEWERS} reviewers")
            b_c["concurrent"] = run_reviews(
                server.url, [tok[f"r{i:02d}"] for i in range(N_REVIEWERS)], "bench-queue",
                setup.labels[0], sizes.concurrent_max, sizes.concurrent_seconds, server.pid)
            log(f"{kind}:     {b_c['concurrent']['round_trips_per_s']} round trips/s")
            for fmt in ("jsonl", "csv"):
                log(f"{kind}: (d) export {fmt}")
                d[fmt] = run_export(server.url, tok["svc"], "bench-export", fmt,
                                    sizes.export_repeats, server.pid)
                log(f"{kind}:     {d[fmt]['seconds_median']} s")
        # In-process baselines (no HTTP), server stopped.
        log(f"{kind}: baselines in-process")
        base_in: dict[str, Any] = {}
        inproc = data.items("ip", sizes.inproc_items + 1000, uncertain=0.3)
        base_in["submit_b1000"] = run_submit_inprocess(url, inproc, 1000, sizes.submit_seconds)
        for fmt in ("jsonl", "csv"):
            base_in[f"export_{fmt}"] = run_export_inprocess(url, "bench-export", fmt)

        two: dict[str, Any] = {}
        if two_workers:
            server2 = Server("loopwise.server:create_app", env=env, workers=2, log_path=logf)
            n2 = sizes.two_workers_items
            items2 = data.items("w2", n2 + 1000, uncertain=0.3)
            q2 = data.items("q2", sizes.concurrent_max + 200, uncertain=1.0)
            with running(server2):
                log(f"{kind}: 2 workers: (a) batch 1000, (c) {N_REVIEWERS} reviewers")
                two["proba_b1000"] = run_submit(
                    server2.url, items_path.format(p="bench-proba"), tok["svc"],
                    Data.bodies(items2, 1000), 1000, sizes.submit_seconds, server2.pid)
                submit_untimed(server2.url, tok["svc"], "bench-queue", Data.bodies(q2, 1000))
                two["concurrent"] = run_reviews(
                    server2.url, [tok[f"r{i:02d}"] for i in range(N_REVIEWERS)], "bench-queue",
                    setup.labels[0], sizes.concurrent_max, sizes.concurrent_seconds,
                    server2.pid)
                log(f"{kind}:     {two['proba_b1000']['items_per_s']} items/s, "
                    f"{two['concurrent']['round_trips_per_s']} round trips/s")
        out.update({"submit": a, "review": b_c, "export": d, "in_process": base_in,
                    "two_workers": two})
    return out


def bench_bare(sizes: Sizes, workdir: Path) -> dict[str, Any]:
    """The bare FastAPI baselines: same bodies, no service, no database."""
    data = Data(seed=1)
    res: dict[str, Any] = {}
    server = Server("api:baseline_app", env={}, workers=1, log_path=workdir / "bare.log",
                    app_dir=HERE)
    bodies = {b: Data.bodies(data.items(f"x{b}", sizes.submit_items + b, uncertain=0.3), b)
              for b in (100, 1000)}
    with running(server):
        for path in ("/parse", "/echo"):
            for batch in (100, 1000):
                key = f"{path[1:]}_b{batch}"
                res[key] = run_submit(server.url, path, None, bodies[batch], batch,
                                      sizes.baseline_seconds, server.pid, check=path == "/echo")
        res["tiny_pair"] = run_tiny(server.url, sizes.baseline_seconds, sizes.review_max * 5,
                                    server.pid)
    return res


# --------------------------------------------------------------------------------------
# report


def machine_info() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True,
                                  text=True, timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    cpu = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for mod in ("loopwise", "fastapi", "starlette", "uvicorn", "pydantic", "sqlalchemy",
                "psycopg", "httpx", "h11", "httptools", "uvloop", "orjson"):
        try:
            from importlib.metadata import version

            versions[mod] = version(mod)
        except Exception:
            versions[mod] = None
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version(),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty_src": bool(git("status", "--porcelain", "--", "src")),
        "packages": versions,
    }


def _ratio(measured: float | None, ref: float, better: str) -> float | None:
    if measured is None or measured == 0:
        return None
    return measured / ref if better == "higher" else ref / measured


def headline(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures compared with the reference: one row each."""
    s, r, e = res["submit"], res["review"], res["export"]
    one, conc = r["one"], r["concurrent"]
    rows: list[tuple[str, Any, str | None, dict[str, Any], str | None]] = [
        ("(a) submit, batch 1000, client proba", s["proba_b1000"]["items_per_s"], "submit_b1000",
         s["proba_b1000"], "items_per_cpu_s"),
        ("(a) submit, batch 100, client proba", s["proba_b100"]["items_per_s"], "submit_b100",
         s["proba_b100"], "items_per_cpu_s"),
        ("(a) submit, batch 1000, model scores", s["model_b1000"]["items_per_s"],
         "submit_b1000", s["model_b1000"], "items_per_cpu_s"),
        ("(a) submit, batch 100, model scores", s["model_b100"]["items_per_s"], "submit_b100",
         s["model_b100"], "items_per_cpu_s"),
        ("(b) claim→submit, 1 reviewer", one["round_trips_per_s"], "review_rt", one,
         "round_trips_per_cpu_s"),
        ("(b) claim p50 (ms)", one["claim_ms_p50"], "claim_p50", one, None),
        ("(b) claim p95 (ms)", one["claim_ms_p95"], None, one, None),
        ("(b) submit p50 (ms)", one["answer_ms_p50"], "answer_p50", one, None),
        ("(b) submit p95 (ms)", one["answer_ms_p95"], None, one, None),
        (f"(c) claim→submit, {N_REVIEWERS} reviewers", conc["round_trips_per_s"], None, conc,
         "round_trips_per_cpu_s"),
        ("(c) claim p50 / p95 (ms)", f"{conc['claim_ms_p50']} / {conc['claim_ms_p95']}", None,
         conc, None),
        ("(c) submit p50 / p95 (ms)", f"{conc['answer_ms_p50']} / {conc['answer_ms_p95']}",
         None, conc, None),
    ]
    n_exp = e["items"] or 1
    for fmt in ("jsonl", "csv"):
        secs = e[fmt]["seconds_median"]
        last = e[fmt].get("last_run") or {}
        if n_exp == 10_000:
            rows.append((f"(d) export 10,000 decided items, {fmt} (s)", secs, "export", last,
                         None))
        else:  # a quick run exports fewer: the figure is scaled linearly to 10,000
            rows.append((f"(d) export {fmt} (s; {n_exp:,} items scaled to 10,000)",
                         round(secs * 10_000 / n_exp, 3), "export", last, None))
    out = []
    for name, value, key, phase, per_cpu in rows:
        row: dict[str, Any] = {"figure": name, "value": value, "key": key,
                               "per_cpu_s": phase.get(per_cpu) if per_cpu else None,
                               "others_cores": phase.get("others_cores_busy")}
        if key is not None and isinstance(value, int | float):
            ref = REFERENCE[key]
            lo, hi = ref["ref"]
            best = hi if ref["better"] == "higher" else lo
            target = best * TARGET_FACTOR if ref["better"] == "higher" else best / TARGET_FACTOR
            row.update({
                "reference": f"{lo:,}–{hi:,}" if lo != hi else f"{lo:,}",
                "target": round(target, 2),
                "x_target": _ratio(value, target, ref["better"]),
                "x_reference": (_ratio(value, hi, ref["better"]),
                                _ratio(value, lo, ref["better"])),
            })
        out.append(row)
    return out


def baselines(res: dict[str, Any]) -> list[dict[str, Any]]:
    """loopwise vs the bare baselines measured in the same run (ratios)."""
    s, bare, inp = res["submit"], res["bare"], res["in_process"]
    rows = []
    for batch in (100, 1000):
        lw = s[f"proba_b{batch}"]["items_per_s"]
        for name in ("parse", "echo"):
            base = bare[f"{name}_b{batch}"]["items_per_s"]
            rows.append({
                "figure": f"(a) batch {batch}: loopwise vs bare FastAPI /{name}",
                "loopwise": lw, "baseline": base, "unit": "items/s",
                "framework_share": round(lw / base, 3) if base else None,
            })
    ip = inp["submit_b1000"]["items_per_s"]
    lw = s["proba_b1000"]["items_per_s"]
    rows.append({"figure": "(a) batch 1000: over HTTP vs service.submit in-process",
                 "loopwise": lw, "baseline": ip, "unit": "items/s",
                 "framework_share": round(lw / ip, 3) if ip else None})
    tiny = bare["tiny_pair"]["round_trips_per_s"]
    one = res["review"]["one"]["round_trips_per_s"]
    rows.append({"figure": "(b) claim→submit vs two bare small POSTs", "loopwise": one,
                 "baseline": tiny, "unit": "round trips/s",
                 "framework_share": round(one / tiny, 3) if tiny else None})
    for fmt in ("jsonl", "csv"):
        http_s = res["export"][fmt]["seconds_median"]
        in_s = inp[f"export_{fmt}"]["seconds"]
        rows.append({"figure": f"(d) export {fmt}: over HTTP vs service.export in-process",
                     "loopwise": http_s, "baseline": in_s, "unit": "s",
                     "framework_share": round(in_s / http_s, 3) if http_s else None})
    return rows


def fmt_num(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if abs(v) >= 100:
            return f"{v:,.0f}"
        return f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def fmt_x(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, tuple | list):
        lo, hi = v
        if lo is None:
            return "—"
        return f"{lo:.2f}×" if abs(lo - hi) < 1e-9 else f"{lo:.2f}–{hi:.2f}×"
    return f"{v:.2f}×"


def print_table(res: dict[str, Any]) -> None:
    rows = headline(res)
    print(f"\nloopwise REST API on {res['db']} ({res['machine']['nproc']} cores, "
          f"{'quick' if res['quick'] else 'full'} run, 1 worker)")
    head = f"{'figure':52} {'loopwise':>12} {'reference':>12} {'target':>9} {'vs target':>10} " \
           f"{'vs reference':>14} {'per CPU-s':>10} {'others':>7}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['figure']:52} {fmt_num(r['value']):>12} {r.get('reference', '—'):>12} "
              f"{fmt_num(r.get('target')):>9} {fmt_x(r.get('x_target')):>10} "
              f"{fmt_x(r.get('x_reference')):>14} {fmt_num(r.get('per_cpu_s')):>10} "
              f"{fmt_num(r.get('others_cores')):>7}")
    print("per CPU-s: the same count per CPU second of server + PostgreSQL + client (robust to "
          "other load); others: cores other processes used meanwhile (noise)")
    print("\nbaselines measured in the same run (share = loopwise ÷ baseline, or baseline ÷ "
          "loopwise for seconds)")
    for r in baselines(res):
        print(f"{r['figure']:60} {fmt_num(r['loopwise']):>10} vs {fmt_num(r['baseline']):>10} "
              f"{r['unit']:14} share {fmt_num(r['framework_share'])}")
    if res.get("two_workers"):
        tw = res["two_workers"]
        print(f"\n2 workers: (a) batch 1000 {fmt_num(tw['proba_b1000']['items_per_s'])} items/s; "
              f"(c) {fmt_num(tw['concurrent']['round_trips_per_s'])} round trips/s")


def cores(v: dict[str, Any]) -> str:
    return " / ".join(fmt_num(v.get(k)) for k in (
        "server_cores_busy", "postgres_cores_busy", "client_cores_busy")) + \
        f" / **{fmt_num(v.get('others_cores_busy'))}**"


def write_markdown(quick: bool) -> Path:
    suffix = "-quick" if quick else ""
    found = []
    for kind in ("sqlite", "postgres"):
        f = RESULTS / f"api-{kind}{suffix}.json"
        if f.exists():
            found.append(json.loads(f.read_text()))
    names = ", ".join(f"`api-{r['db']}{suffix}.json`" for r in found)
    lines = ["# loopwise REST API benchmark", "",
             f"`python bench/api.py{' --quick' if quick else ''}` — generated from "
             f"{names}. Reference: "
             f"{LABEL_STUDIO} (import without routing). Target: {TARGET_FACTOR:g}× the best "
             "reference figure. *vs target* ≥ 1 means the target is met; *vs reference* is "
             "given against the best–worst end of the reference range.", ""]
    for r in found:
        m = r["machine"]
        lines.append(
            f"- **{r['db']}**: {m['date']}, {m['nproc']} cores ({m['cpu']}), Python "
            f"{m['python']}, SQLite {m['sqlite']}, PostgreSQL {m['postgresql']}, commit "
            f"`{(m['git_commit'] or '?')[:10]}`{' (src modified)' if m['git_dirty_src'] else ''}"
            f"; server: uvicorn {m['packages'].get('uvicorn')}, 1 worker, h11"
            f"{'' if m['packages'].get('httptools') else ' (no httptools/uvloop)'}")
    lines.append("")
    if not found:
        return RESULTS / f"api{suffix}.md"
    header = "| figure | reference | target |"
    sep = "|---|---:|---:|"
    for r in found:
        header += f" {r['db']} | vs target | vs reference | per CPU-s | others |"
        sep += "---:|---:|---:|---:|---:|"
    lines += ["*per CPU-s*: the same count per CPU second of our own processes (server, "
              "PostgreSQL backends, client) — for a sequential client roughly what a quiet "
              "machine would give, fsync waits aside. *others*: cores that other processes on "
              "the machine used during that measurement (noise; the machine has "
              f"{found[0]['machine']['nproc']}).", "", header, sep]
    tables = [headline(r) for r in found]
    for i, row in enumerate(tables[0]):
        line = f"| {row['figure']} | {row.get('reference', '—')} | {fmt_num(row.get('target'))} |"
        for t in tables:
            x = t[i]
            line += (f" {fmt_num(x['value'])} | {fmt_x(x.get('x_target'))} | "
                     f"{fmt_x(x.get('x_reference'))} | {fmt_num(x.get('per_cpu_s'))} | "
                     f"{fmt_num(x.get('others_cores'))} |")
        lines.append(line)
    lines += ["", "## Baselines in the same run", "",
              "share = loopwise ÷ baseline (throughput) or baseline ÷ loopwise (seconds): the "
              "part of the baseline's speed loopwise keeps.", ""]
    header = "| comparison | unit |"
    sep = "|---|---|"
    for r in found:
        header += f" {r['db']}: loopwise | baseline | share |"
        sep += "---:|---:|---:|"
    lines += [header, sep]
    btables = [baselines(r) for r in found]
    for i, row in enumerate(btables[0]):
        line = f"| {row['figure']} | {row['unit']} |"
        for t in btables:
            x = t[i]
            line += (f" {fmt_num(x['loopwise'])} | {fmt_num(x['baseline'])} | "
                     f"{fmt_num(x['framework_share'])} |")
        lines.append(line)
    lines += ["", "## Details", ""]
    for r in found:
        s, rv = r["submit"], r["review"]
        lines.append(f"**{r['db']}**")
        lines.append("")
        lines.append("| run | items or round trips | /s | /CPU-s | request p50 ms | p95 ms | "
                     "cores busy: server / postgres / client / **others** | routes / errors |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---|")
        for k, v in s.items():
            lines.append(f"| submit {k} | {v['items']:,} | {fmt_num(v['items_per_s'])} | "
                         f"{fmt_num(v.get('items_per_cpu_s'))} | "
                         f"{fmt_num(v['request_ms_p50'])} | {fmt_num(v['request_ms_p95'])} | "
                         f"{cores(v)} | {v['routes']} |")
        for k, v in rv.items():
            lines.append(f"| review {k} ({v['reviewers']}) | {v['round_trips']:,} | "
                         f"{fmt_num(v['round_trips_per_s'])} | "
                         f"{fmt_num(v.get('round_trips_per_cpu_s'))} | "
                         f"{fmt_num(v['round_trip_ms_p50'])} | "
                         f"{fmt_num(v['round_trip_ms_p95'])} | {cores(v)} "
                         f"| {v['errors'] or 'none'} |")
        for fmt in ("jsonl", "csv"):
            v = r["export"][fmt]
            lines.append(f"| export {fmt} ({r['export']['items']:,} items, "
                         f"{r['export']['decided']:,} decided) | {v['bytes']:,} bytes | — | — | "
                         f"{v['seconds_all']} s | | {cores(v.get('last_run') or {})} | |")
        for k, v in (r.get("two_workers") or {}).items():
            rate = v.get("items_per_s") or v.get("round_trips_per_s")
            p50 = v.get("request_ms_p50") or v.get("round_trip_ms_p50")
            p95 = v.get("request_ms_p95") or v.get("round_trip_ms_p95")
            per_cpu = v.get("items_per_cpu_s") or v.get("round_trips_per_cpu_s")
            lines.append(f"| 2 workers: {k} | {v.get('items') or v.get('round_trips'):,} | "
                         f"{fmt_num(rate)} | {fmt_num(per_cpu)} | {fmt_num(p50)} | "
                         f"{fmt_num(p95)} | "
                         f"{cores(v)} | {v.get('routes') or v.get('errors') or 'none'} |")
        lines.append("")
    path = RESULTS / f"api{suffix}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


# --------------------------------------------------------------------------------------


class Watchdog(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--quick", action="store_true", help="a smoke run (< 1 minute)")
    ap.add_argument("--two-workers", action="store_true",
                    help="also measure (a) batch 1000 and (c) with 2 uvicorn workers")
    ap.add_argument("--wait-quiet", type=float, default=None, metavar="S",
                    help="before each timed phase wait (at most 30 s, and S s in all) until "
                    "other processes use < 0.3 cores (default: 0 with --quick, else 120)")
    args = ap.parse_args(argv)
    Machine.quiet_budget = args.wait_quiet if args.wait_quiet is not None else (
        0.0 if args.quick else 120.0)
    sizes = QUICK if args.quick else FULL
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    suffix = "-quick" if args.quick else ""

    def on_alarm(signum: int, frame: Any) -> None:
        raise Watchdog(f"run took longer than {sizes.watchdog_seconds * len(kinds)} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(sizes.watchdog_seconds * len(kinds))
    workdir = Path(tempfile.mkdtemp(prefix="lw-bench-"))
    t_start = time.perf_counter()
    try:
        log("bare FastAPI baselines (once for this run)")
        bare = bench_bare(sizes, workdir)
        for kind in kinds:
            t0 = time.perf_counter()
            res = bench_database(kind, sizes, args.two_workers, workdir)
            res["bare"] = bare
            res.update({"quick": args.quick, "machine": machine, "sizes": asdict(sizes),
                        "seconds": round(time.perf_counter() - t0, 1),
                        "reference": {"source": LABEL_STUDIO, "figures": REFERENCE,
                                      "target_factor": TARGET_FACTOR}})
            res["headline"] = headline(res)
            res["baselines"] = baselines(res)
            path = RESULTS / f"api-{kind}{suffix}.json"
            path.write_text(json.dumps(res, indent=1, default=str) + "\n")
            print_table(res)
            log(f"{kind}: done in {res['seconds']} s; wrote {path.relative_to(HERE.parent)}")
        md = write_markdown(args.quick)
        log(f"wrote {md.relative_to(HERE.parent)}; total {time.perf_counter() - t_start:.0f} s")
    finally:
        signal.alarm(0)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
