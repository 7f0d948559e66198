#!/usr/bin/env python
"""Active-learning strategies on real data, next to random and to modAL's and
scikit-activeml's margin sampling; and the latency of one query on large pools.

Run by hand (not part of the test suite)::

    python bench/active_learning.py [--quick] [--seeds N]

Learning curves. Datasets, all loaded offline from installed packages: scikit-learn's
digits (1,797 x 64, 10 classes), breast cancer (569 x 30, 2) and wine (178 x 13, 3), and
river's ImageSegments (2,310 x 18, 7; ``pip install river``; skipped with a note when
river is missing).

Each seed makes a fresh stratified split, 75% pool / 25% test; features are standardised
with the pool's mean and deviation (no labels used). 10 initial labels are drawn at random
from the pool (again until at least two classes appear); every strategy starts from the
same ones, so the comparison is paired. Then, in rounds, the model is fitted on the
labels so far, scored on the test part, and the strategy picks the next batch of 10 from
the rest of the pool, until the label budget (logistic regression: 200 on breast cancer,
100 on wine, 800 on digits, 1,000 on segments; the forest: the same but 600 on digits and
segments). Models: logistic regression (``LogisticRegression(max_iter=1000)``; 10 seeds,
like the issue's reference) and a random forest (50 trees, one thread; 5 seeds, for time).
Full-data accuracy: the same model fitted on the whole labelled pool.

Strategies: every one of ``loopwise.learning.STRATEGIES``; ``margin+eps0.1`` (margin,
each slot random with probability 0.1); ``modAL margin`` (``modAL.uncertainty.
margin_sampling``, its default tie-break) and ``skactiveml margin``
(``UncertaintySampling(method="margin_sampling")`` over its ``SklearnClassifier``
wrapper of the same estimator), when installed. ``committee`` is vote entropy over 5
logistic regressions fitted on stratified bootstraps (``estimator=``); for the forest,
over its own 50 trees (``committee_proba=``; a forest is a bootstrap committee).

Reported per (dataset, model, strategy): labels needed to reach 95% and 99% of full-data
accuracy (the first budget point where the accuracy averaged over seeds reaches it;
``>B`` when it does not within the budget B), the same as a share of random's, and the
area under the learning curve (mean accuracy over the budget points, 10 to B labels).

Latency: one 100-item query from pools of 100,000 and 1,000,000 items (10 classes, 50
features, 1,000 labeled items; probabilities from a logistic regression), median and
slowest of 5 runs, for every strategy, the cold start, and, in the same process, modAL's
margin on the same probabilities (a stub classifier returns them), a plain ``np.argsort``
of the margin, and one ``predict_proba`` of the pool by the logistic regression (the unit
of the committee's cost when it fits its own members); plus the peak memory a query
allocates (``tracemalloc``, a separate run). The machine is shared: before each case the
full run waits (at most 15 s, 240 s in all) until other processes use less than 0.3
cores, and the table gives the cores they used while the case ran.

Results: a table on stdout, ``bench/results/active_learning.json`` and ``.md``
(``active_learning-quick.*`` with ``--quick``: 3 seeds, budgets of 100 / 50 / 300 / 300
for both models; the latency part is the same). Full run: 10-15 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from loopwise.learning import STRATEGIES, select, uncertainty

RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 10
INITIAL = 10
BUDGET = {
    "logreg": {"breast_cancer": 200, "wine": 100, "digits": 800, "segments": 1000},
    "forest": {"breast_cancer": 200, "wine": 100, "digits": 600, "segments": 600},
    "quick": {"breast_cancer": 100, "wine": 50, "digits": 300, "segments": 300},
}
SEEDS = {"logreg": 10, "forest": 5, "quick": 3}
# Reference (logistic regression, batch 10, 10 seeds): labels to reach 99% of full-data
# accuracy, from the issue.
REFERENCE_99 = {
    "digits": {"random": 580, "margin": 230},
    "segments": {"random": 820, "margin": 190},
    "breast_cancer": {"random": 70, "margin": 30},
}


# ------------------------------------------------------------------------------- data
def load_datasets() -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine

    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    notes: list[str] = []
    for name, loader in [
        ("breast_cancer", load_breast_cancer),
        ("wine", load_wine),
        ("digits", load_digits),
    ]:
        X, y = loader(return_X_y=True)
        out[name] = (X.astype(float), y.astype(int))
    try:
        from river import datasets as rd

        rows = list(rd.ImageSegments())
        keys = sorted(rows[0][0])
        X = np.array([[x[k] for k in keys] for x, _ in rows], dtype=float)
        _, y = np.unique([label for _, label in rows], return_inverse=True)
        out["segments"] = (X, y.astype(int))
    except ImportError as exc:
        notes.append(f"segments skipped: {exc}")
    return out, notes


def make_model(name: str, seed: int) -> Any:
    if name == "logreg":
        return LogisticRegression(max_iter=1000)
    return RandomForestClassifier(n_estimators=50, random_state=seed, n_jobs=1)


def proba_k(model: Any, X: np.ndarray, k: int) -> np.ndarray:
    """(n, k) probabilities; 0 for classes the model has not seen."""
    out = np.zeros((len(X), k))
    out[:, model.classes_] = model.predict_proba(X)
    return out


# ------------------------------------------------------------------ strategy adapters
Query = Callable[[dict[str, Any]], np.ndarray] | None
"""ctx -> indices into the unlabeled rest of the pool; None: scikit-activeml's own loop
(its classifier wrapper fits, its query strategy picks)."""


def ours(strategy: str, **extra: Any) -> Callable[[dict[str, Any]], np.ndarray]:
    def query(ctx: dict[str, Any]) -> np.ndarray:
        kwargs: dict[str, Any] = {
            "proba": ctx["proba"],
            "X_pool": ctx["X_rest"],
            "X_labeled": ctx["X_lab"],
            **extra,
        }
        if strategy == "committee":
            if ctx["model_name"] == "logreg":
                kwargs |= {"estimator": make_model("logreg", 0), "y_labeled": ctx["y_lab"]}
            else:
                forest = ctx["model"]
                cp = np.zeros((len(forest.estimators_), len(ctx["X_rest"]), ctx["k"]))
                for j, tree in enumerate(forest.estimators_):
                    cp[j][:, forest.classes_] = tree.predict_proba(ctx["X_rest"])
                kwargs["committee_proba"] = cp
        return select(strategy, n=BATCH, random_state=ctx["rng"], **kwargs)

    return query


def modal_margin(ctx: dict[str, Any]) -> np.ndarray:
    from modAL.uncertainty import margin_sampling

    idx, _ = margin_sampling(ctx["model"], ctx["X_rest"], n_instances=BATCH)
    return np.asarray(idx)


def reference_strategies() -> tuple[dict[str, Query], dict[str, str]]:
    refs: dict[str, Query] = {}
    versions: dict[str, str] = {}
    try:
        from importlib.metadata import version

        import modAL.uncertainty  # noqa: F401

        refs["modAL margin"] = modal_margin
        versions["modAL-python"] = version("modAL-python")
    except ImportError:
        pass
    try:
        from importlib.metadata import version

        import skactiveml.pool  # noqa: F401

        refs["skactiveml margin"] = None
        versions["scikit-activeml"] = version("scikit-activeml")
    except ImportError:
        pass
    return refs, versions


# ------------------------------------------------------------------------- the curves
def split(X: np.ndarray, y: np.ndarray, seed: int) -> dict[str, Any]:
    X_pool, X_test, y_pool, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=seed
    )
    scaler = StandardScaler().fit(X_pool)
    X_pool, X_test = scaler.transform(X_pool), scaler.transform(X_test)
    rng = np.random.default_rng(seed)
    first = rng.choice(len(y_pool), INITIAL, replace=False)
    while len(np.unique(y_pool[first])) < 2:
        first = rng.choice(len(y_pool), INITIAL, replace=False)
    return {"X_pool": X_pool, "y_pool": y_pool, "X_test": X_test, "y_test": y_test, "first": first}


def curve(
    data: dict[str, Any], k: int, model_name: str, name: str, query: Query, seed: int, budget: int
) -> tuple[list[float], float]:
    """Test accuracy at 10, 20, ..., budget labels; and the seconds spent in queries."""
    X_pool, y_pool = data["X_pool"], data["y_pool"]
    labeled = list(data["first"])
    rng = np.random.default_rng(10_000 + seed)
    accs: list[float] = []
    spent = 0.0
    while True:
        lab = np.asarray(labeled)
        if query is None:
            acc, new, seconds = skactiveml_step(data, k, model_name, lab, seed)
        else:
            model = make_model(model_name, seed).fit(X_pool[lab], y_pool[lab])
            acc = float(np.mean(model.predict(data["X_test"]) == data["y_test"]))
        accs.append(acc)
        if len(labeled) >= budget:
            return accs, spent
        if query is not None:
            rest = np.setdiff1d(np.arange(len(y_pool)), lab)
            ctx = {
                "proba": proba_k(model, X_pool[rest], k),
                "X_rest": X_pool[rest],
                "X_lab": X_pool[lab],
                "y_lab": y_pool[lab],
                "model": model,
                "k": k,
                "model_name": model_name,
                "rng": rng,
            }
            t = time.perf_counter()
            new = rest[query(ctx)]
            seconds = time.perf_counter() - t
        spent += seconds
        assert len(set(new.tolist())) == BATCH and not set(new.tolist()) & set(labeled)
        labeled.extend(new.tolist())


def skactiveml_step(
    data: dict[str, Any], k: int, model_name: str, lab: np.ndarray, seed: int
) -> tuple[float, np.ndarray, float]:
    from skactiveml.classifier import SklearnClassifier
    from skactiveml.pool import UncertaintySampling

    X_pool = data["X_pool"]
    y = np.full(len(X_pool), np.nan)
    y[lab] = data["y_pool"][lab]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = SklearnClassifier(
            make_model(model_name, seed), classes=np.arange(k), random_state=seed
        ).fit(X_pool, y)
        acc = float(np.mean(clf.predict(data["X_test"]) == data["y_test"]))
        t = time.perf_counter()
        qs = UncertaintySampling(method="margin_sampling", random_state=seed)
        pick = qs.query(X_pool, y, clf, fit_clf=False, batch_size=BATCH)
        spent = time.perf_counter() - t
    return acc, np.asarray(pick), spent


def labels_to(mean_curve: np.ndarray, target: float) -> int | None:
    hit = np.flatnonzero(mean_curve >= target)
    return int(INITIAL + BATCH * hit[0]) if hit.size else None


def run_curves(
    seeds: int | None, quick: bool
) -> tuple[list[dict[str, Any]], list[str], dict[str, str]]:
    datasets, notes = load_datasets()
    refs, versions = reference_strategies()
    strategies: dict[str, Query] = {s: ours(s) for s in STRATEGIES}
    strategies["margin+eps0.1"] = ours("margin", epsilon=0.1)
    strategies.update(refs)
    rows: list[dict[str, Any]] = []
    for ds, (X, y) in datasets.items():
        k = int(y.max()) + 1
        for model_name in ("logreg", "forest"):
            budget = BUDGET["quick" if quick else model_name][ds]
            n_seeds = seeds or SEEDS["quick" if quick else model_name]
            t0 = time.perf_counter()
            curves: dict[str, list[list[float]]] = {s: [] for s in strategies}
            spent: dict[str, float] = dict.fromkeys(strategies, 0.0)
            full: list[float] = []
            for seed in range(n_seeds):
                data = split(X, y, seed)
                model = make_model(model_name, seed).fit(data["X_pool"], data["y_pool"])
                full.append(float(np.mean(model.predict(data["X_test"]) == data["y_test"])))
                for name, query in strategies.items():
                    accs, s = curve(data, k, model_name, name, query, seed, budget)
                    curves[name].append(accs)
                    spent[name] += s
            full_acc = float(np.mean(full))
            for name in strategies:
                c = np.asarray(curves[name])
                mean = c.mean(axis=0)
                rows.append(
                    {
                        "dataset": ds,
                        "model": model_name,
                        "strategy": name,
                        "seeds": n_seeds,
                        "budget": budget,
                        "full_accuracy": full_acc,
                        "labels_95": labels_to(mean, 0.95 * full_acc),
                        "labels_99": labels_to(mean, 0.99 * full_acc),
                        "aulc": float(mean.mean()),
                        "aulc_se": float(c.mean(axis=1).std(ddof=1) / math.sqrt(n_seeds))
                        if n_seeds > 1
                        else math.nan,
                        "query_seconds_per_round": spent[name] / (n_seeds * (len(mean) - 1)),
                        "curve": mean.tolist(),
                    }
                )
            print(
                f"{ds}/{model_name}: {n_seeds} seeds x {len(strategies)} strategies, "
                f"budget {budget}, {time.perf_counter() - t0:.0f} s",
                file=sys.stderr,
            )
    return rows, notes, versions


# ---------------------------------------------------------------------------- latency
class _Stub:
    """A fitted 'classifier' that returns given probabilities (for modAL)."""

    def __init__(self, proba: np.ndarray) -> None:
        self.proba = proba

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.proba


def latency_cases(size: int, rng: np.random.Generator) -> list[tuple[str, Callable[[], Any]]]:
    """The queries timed on a pool of ``size`` items (10 classes, 50 features)."""
    d, k, n_lab, n = 50, 10, 1000, 100
    centers = rng.normal(size=(k, d))
    y = rng.integers(0, k, size + n_lab)
    X = centers[y] + rng.normal(size=(len(y), d)) * 1.5
    X_lab, y_lab, X_pool = X[:n_lab], y[:n_lab], X[n_lab:]
    model = LogisticRegression(max_iter=1000).fit(X_lab, y_lab)
    proba = model.predict_proba(X_pool)
    committee = np.stack(
        [
            LogisticRegression(max_iter=1000)
            .fit(X_lab[i::5], y_lab[i::5])
            .predict_proba(X_pool)
            .astype(np.float32)
            for i in range(5)
        ]
    )
    base = {"proba": proba, "X_pool": X_pool, "X_labeled": X_lab, "n": n}

    def ours(strategy: str, **kwargs: Any) -> Callable[[], Any]:
        return lambda: select(strategy, random_state=1, **(base | kwargs))

    cases = [(s, ours(s)) for s in STRATEGIES if s != "committee"]
    cases += [
        ("committee (committee_proba, 5 members)", ours("committee", committee_proba=committee)),
        (
            "committee (estimator: fits 5 LR, predicts the pool 5x)",
            ours("committee", estimator=LogisticRegression(max_iter=1000), y_labeled=y_lab),
        ),
        ("cold start (proba=None)", ours("margin", proba=None)),
        ("margin, epsilon 0.1", ours("margin", epsilon=0.1)),
        (
            "reference: np.argsort of the margin",
            lambda: np.argsort(uncertainty(proba, "margin"))[::-1][:n],
        ),
        ("reference: one LR predict_proba of the pool", lambda: model.predict_proba(X_pool)),
    ]
    try:
        from modAL.uncertainty import margin_sampling

        cases.append(
            (
                "reference: modAL margin_sampling",
                lambda: margin_sampling(_Stub(proba), X_pool, n_instances=n),
            )
        )
    except ImportError:
        pass
    return cases


_CLK = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (/proc/stat; 0 where unreadable)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[1:9])
    return (user + nice + system + irq + softirq + steal) / _CLK


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall seconds of ``fn()`` and the cores other processes kept busy meanwhile."""
    busy, ours, t = busy_seconds(), time.process_time(), time.perf_counter()
    fn()
    wall = time.perf_counter() - t
    others = (busy_seconds() - busy - (time.process_time() - ours)) / wall
    return wall, max(others, 0.0)


class Quiet:
    """Waits, within a total budget, until other processes use < 0.3 cores."""

    def __init__(self, budget: float) -> None:
        self.budget = budget

    def wait(self, most: float) -> None:
        t0 = time.monotonic()
        while self.budget > 0 and time.monotonic() - t0 < most:
            if timed(lambda: time.sleep(0.5))[1] < 0.3:
                break
        self.budget -= time.monotonic() - t0


def latency(sizes: list[int], quiet: Quiet, reps: int = 5) -> list[dict[str, Any]]:
    """Median and slowest of ``reps`` runs of each case, the cores other processes used
    meanwhile, and the case's peak allocation."""
    rng = np.random.default_rng(0)
    out: list[dict[str, Any]] = []
    for size in sizes:
        rows = []
        for name, fn in latency_cases(size, rng):
            quiet.wait(15.0)
            runs = [timed(fn) for _ in range(reps)]
            times = [wall for wall, _ in runs]
            tracemalloc.start()
            fn()
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            rows.append(
                {
                    "pool": size,
                    "case": name,
                    "seconds_median": float(np.median(times)),
                    "seconds_max": max(times),
                    "seconds_all": times,
                    "others_cores": float(np.median([o for _, o in runs])),
                    "peak_mib": peak / 2**20,
                }
            )
        margin = next(r["seconds_median"] for r in rows if r["case"] == "margin")
        for row in rows:
            row["vs_margin"] = row["seconds_median"] / margin
        out += rows
        print(f"latency {size:,}: done", file=sys.stderr)
    return out


# ----------------------------------------------------------------------------- report
def fmt_labels(v: int | None, budget: int) -> str:
    return f">{budget}" if v is None else str(v)


def share(v: int | None, r: int | None, budget: int) -> str:
    if v is None:
        return "–" if r is None else "> 1"
    if r is None:
        return f"< {v / budget:.2f}"
    return f"{v / r:.2f}"


def loses_to_random(r: dict[str, Any], rand: dict[str, Any]) -> str:
    """Why ``r`` loses to random ("" if it does not): AULC lower by more than 2 SE of the
    difference, or more labels to 99% (random reaching it within the budget)."""
    why = []
    if r["aulc"] < rand["aulc"] - 2 * math.hypot(r["aulc_se"] or 0.0, rand["aulc_se"] or 0.0):
        why.append("AULC")
    m, q = r["labels_99"], rand["labels_99"]
    if q is not None and (m is None or m > q):
        why.append("labels to 99%")
    return ", ".join(why)


def targets(rows: list[dict[str, Any]], latency_rows: list[dict[str, Any]]) -> list[str]:
    by = {(r["dataset"], r["model"], r["strategy"]): r for r in rows}
    lines = []
    halves = []
    for (ds, model, strat), r in sorted(by.items()):
        if model != "logreg" or strat != "margin":
            continue
        rand = by[(ds, model, "random")]
        b = r["budget"]
        same_run = "; ".join(
            f"{ref} {fmt_labels(by[(ds, model, ref)]['labels_99'], b)}"
            for ref in ("modAL margin", "skactiveml margin")
            if (ds, model, ref) in by
        )
        ref = REFERENCE_99.get(ds)
        ref_txt = (
            f"issue's reference: margin {ref['margin']}, random {ref['random']}" if ref else ""
        )
        lines.append(
            f"- {ds} (logistic regression, labels to 99%): margin {fmt_labels(r['labels_99'], b)}, "
            f"random {fmt_labels(rand['labels_99'], b)} (share "
            f"{share(r['labels_99'], rand['labels_99'], b)}); same run: {same_run or '–'}"
            + (f"; {ref_txt}" if ref_txt else "")
        )
        m, q = r["labels_99"], rand["labels_99"]
        if m is not None and (q is None or m <= 0.5 * q):
            halves.append(ds)
    lines.append(
        f"- margin (the default) needs <= 50% of random's labels to 99% (logistic regression) "
        f"on {len(halves)} datasets: {', '.join(halves) or 'none'}"
    )
    losers: dict[str, list[str]] = {}
    for (ds, model, strat), r in sorted(by.items()):
        if strat in STRATEGIES and strat != "random":
            why = loses_to_random(r, by[(ds, model, "random")])
            if why:
                losers.setdefault(strat, []).append(f"{ds}/{model} ({why})")
    lines.append(
        "- margin (the default) loses to random (AULC lower by more than 2 SE, or more labels "
        f"to 99%) on: {', '.join(losers.pop('margin', [])) or 'none'}"
    )
    for strat, where in losers.items():
        lines.append(f"- {strat} loses to random on: {', '.join(where)}")
    for size in sorted({t["pool"] for t in latency_rows}):
        ours = [t for t in latency_rows if t["pool"] == size and not t["case"].startswith("ref")]
        median = max(ours, key=lambda t: t["seconds_median"])
        slowest = max(ours, key=lambda t: t["seconds_max"])
        over = [t["case"] for t in ours if t["seconds_median"] >= 2.0]
        lines.append(
            f"- one 100-item query from {size:,} items: largest median "
            f"{median['seconds_median']:.2f} s ({median['case']}), slowest single run "
            f"{slowest['seconds_max']:.2f} s ({slowest['case']}, others using "
            f"{slowest['others_cores']:.1f} cores); median at or over 2 s: "
            f"{', '.join(over) or 'none'}"
        )
    return lines


def markdown(res: dict[str, Any]) -> str:
    lines = [
        f"# Active-learning benchmark{' (quick run)' if res['quick'] else ''}",
        "",
        f"{res['when']} · {res['machine']} · batch {BATCH}, "
        f"{INITIAL} initial labels · "
        + " · ".join(f"{k} {v}" for k, v in res["references"].items()),
        "",
        "Labels to 95% / 99% = labels at which the seed-averaged test accuracy first "
        "reaches that share of the full-data accuracy (`>B`: not within the budget B); "
        "share = that count over random's; AULC = mean test accuracy over the "
        "budget points (± SE over seeds); query s = seconds per query round.",
        "",
    ]
    for note in res["notes"]:
        lines.append(f"_{note}_")
    lines += ["## Targets", "", *targets(res["curves"], res["latency"]), ""]
    lines += [
        "## Learning curves",
        "",
        "| dataset | model | seeds | full acc | strategy | labels to 95% | share | "
        "labels to 99% | share | AULC | query s |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    by = {(r["dataset"], r["model"], r["strategy"]): r for r in res["curves"]}
    for r in res["curves"]:
        rand = by[(r["dataset"], r["model"], "random")]
        b = r["budget"]
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['seeds']} | {r['full_accuracy']:.3f} | "
            f"{r['strategy']} | "
            f"{fmt_labels(r['labels_95'], b)} | {share(r['labels_95'], rand['labels_95'], b)} | "
            f"{fmt_labels(r['labels_99'], b)} | {share(r['labels_99'], rand['labels_99'], b)} | "
            f"{r['aulc']:.3f} ± {r['aulc_se']:.3f} | {r['query_seconds_per_round']:.3f} |"
        )
    lines += [
        "",
        "## Latency: one 100-item query (10 classes, 50 features, 1,000 labeled)",
        "",
        "| pool | case | median s | slowest s | vs margin | others' cores | peak MiB |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for t in res["latency"]:
        lines.append(
            f"| {t['pool']:,} | {t['case']} | {t['seconds_median']:.3f} | "
            f"{t['seconds_max']:.3f} | {t['vs_margin']:.2f} | {t['others_cores']:.1f} | "
            f"{t['peak_mib']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def git_state() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=root, check=True
        ).stdout.strip()
        dirty = (
            subprocess.run(
                ["git", "status", "--porcelain", "src"],
                capture_output=True,
                text=True,
                cwd=root,
                check=True,
            ).stdout.strip()
            != ""
        )
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"commit": commit, "src_dirty": dirty}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 seeds, short budgets")
    ap.add_argument("--seeds", type=int, default=None, help="seeds for both models")
    args = ap.parse_args()
    t0 = time.perf_counter()
    res: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} · {os.cpu_count()} cores · Python "
        f"{platform.python_version()} · numpy {np.__version__}",
        "quick": args.quick,
        "batch": BATCH,
        "initial": INITIAL,
        **git_state(),
    }
    res["latency"] = latency([100_000, 1_000_000], Quiet(0.0 if args.quick else 240.0))
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        curves, notes, versions = run_curves(args.seeds, args.quick)
    res |= {
        "curves": curves,
        "notes": notes,
        "references": versions,
        "seconds": time.perf_counter() - t0,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "active_learning-quick" if args.quick else "active_learning"
    (RESULTS / f"{stem}.json").write_text(json.dumps(res, indent=1, default=float) + "\n")
    md = markdown(res)
    (RESULTS / f"{stem}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
