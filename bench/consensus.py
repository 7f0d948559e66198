#!/usr/bin/env python
"""Label aggregation, adaptive overlap and agreement: loopwise.consensus side by side with
crowd-kit in the same run.

Run by hand (not part of the test suite)::

    python bench/consensus.py [--quick]

Crowds (``loopwise.consensus.simulate``, seeded): 5 classes with a skewed prior
(0.35, 0.25, 0.20, 0.12, 0.08); 50 reviewers — 16 reliable (right 80-95%), 10 noisy
(35-55%), 8 confusing two classes, 6 biased to one class, 6 spammers, 4 adversarial; 3
distinct random reviewers per item. Sizes: 10,000 items (30,000 answers) and 333,334
items (1,000,002 answers).

Methods: every ``aggregate`` method of loopwise (Dawid–Skene also with smoothing 0, the
plain maximum-likelihood EM that crowd-kit runs) and crowd-kit's MajorityVote,
DawidSkene, OneCoinDawidSkene, MACE, GLAD, MMSR and Wawa (``pip install crowd-kit``;
skipped with a message when missing, and per method when it fails). Accuracy is against
the simulated truth; majority ties are broken at random by loopwise and by crowd-kit's
first column (which helps when that is the commonest class, as on the 10k crowd). Times
(wall clock and CPU of this process): loopwise best of 3 from int arrays; crowd-kit best
of 2 (10k) or one run (1M) from a prepared DataFrame. On the 1M crowd crowd-kit runs
MajorityVote, DawidSkene and OneCoinDawidSkene only (MACE and GLAD would take many
minutes).

Adaptive overlap: skills (confusion matrices and prior) are estimated by Dawid–Skene on
the 10k crowd's answers, then 10,000 fresh items are asked of random reviewers of the
same crowd (never one twice on an item) until the top posterior is >= 0.95 or
``max_reviews`` answers are in (then: expert). Accuracy counts every item with its
current label, expert items included (an expert would only raise it). The same with the
true confusion matrices shows what better skill estimates would buy.

Agreement on real data: ``data/e-2.txt`` from the pyanno 2.0.2 source distribution
(Rzhetsky et al. 2009: 15,521 items, 8 annotators, 3 labels per item from 1-5), fetched
with ``pip download pyanno==2.0.2 --no-deps --no-binary :all:`` into a temporary
directory (never kept); skipped with a message when it cannot be fetched. Percent
agreement, Fleiss' kappa, Krippendorff's alpha (1,000 bootstrap resamples), checked
against statsmodels and krippendorff when installed.

Results: a table on stdout, ``bench/results/consensus.md`` and ``.json``
(``consensus-quick.*`` with ``--quick``: no 1M crowd for crowd-kit, no GLAD).
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
import tarfile
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from loopwise.consensus import (
    aggregate,
    fleiss_kappa,
    krippendorff_alpha,
    long_form,
    percent_agreement,
)
from loopwise.consensus.simulate import Crowd, adaptive_overlap, simulate_crowd

RESULTS = Path(__file__).resolve().parent / "results"
KINDS = {"reliable": 16, "noisy": 10, "confuser": 8, "biased": 6, "spammer": 6, "adversarial": 4}
OURS: list[tuple[str, dict[str, Any]]] = [
    ("majority", {}),
    ("weighted_majority", {}),
    ("dawid_skene", {}),
    ("dawid_skene", {"smoothing": 0.0}),
    ("one_coin_dawid_skene", {}),
    ("mace", {}),
]
CK_ALL = ["MajorityVote", "Wawa", "DawidSkene", "OneCoinDawidSkene", "MACE", "MMSR", "GLAD"]
CK_1M = ["MajorityVote", "DawidSkene", "OneCoinDawidSkene"]
REFERENCE = {
    "ck_ds_acc": 0.845,
    "ck_ds_s_30k": 0.5,
    "ck_ds_s_900k": 10.6,
    "mv_acc": 0.709,
    "pyanno_kappa": 0.400,
}


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[Any, float, float]:
    """The result, and the best wall-clock and CPU seconds over ``repeats`` runs."""
    out, wall, cpu = None, math.inf, math.inf
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        wall = min(wall, time.perf_counter() - t)
        cpu = min(cpu, time.process_time() - c)
    return out, wall, cpu


def crowd_kit() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import crowdkit.aggregation as ck
    except Exception as exc:  # not installed or broken: say so, go on
        print(f"crowd-kit skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
    return ck


def run_ours(c: Crowd, repeats: int) -> list[dict[str, Any]]:
    rows = []
    for method, opts in OURS:
        res, secs, cpu = best_of(
            lambda m=method, o=opts: aggregate(
                c.items, c.reviewers, c.labels, method=m, n_classes=5, random_state=0, **o
            ),
            repeats,
        )
        name = method + (" (smoothing 0)" if opts else "")
        rows.append(
            {
                "library": "loopwise",
                "method": name,
                "accuracy": float((res.labels == c.truth).mean()),
                "seconds": secs,
                "cpu_seconds": cpu,
                "iterations": res.n_iter,
            }
        )
        print(
            f"  loopwise {name:32s} acc {rows[-1]['accuracy']:.4f}  {secs:8.3f} s", file=sys.stderr
        )
    return rows


def run_crowd_kit(ck: Any, c: Crowd, names: list[str], repeats: int) -> list[dict[str, Any]]:
    import pandas as pd

    df = pd.DataFrame({"task": c.items, "worker": c.reviewers, "label": c.labels})
    rows = []
    for name in names:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pred, secs, cpu = best_of(lambda n=name: getattr(ck, n)().fit_predict(df), repeats)
            pred = pred.sort_index()
            acc = float((pred.to_numpy().astype(int) == c.truth[pred.index.to_numpy()]).mean())
            rows.append(
                {
                    "library": "crowd-kit",
                    "method": name,
                    "accuracy": acc,
                    "seconds": secs,
                    "cpu_seconds": cpu,
                }
            )
        except Exception as exc:  # one broken method must not end the run
            rows.append(
                {
                    "library": "crowd-kit",
                    "method": name,
                    "accuracy": None,
                    "seconds": None,
                    "cpu_seconds": None,
                    "error": f"{type(exc).__name__}: {str(exc)[:120]}",
                }
            )
        r = rows[-1]
        print(
            f"  crowd-kit {name:31s} "
            + (
                f"acc {r['accuracy']:.4f}  {r['seconds']:8.3f} s"
                if r["accuracy"] is not None
                else r["error"]
            ),
            file=sys.stderr,
        )
    return rows


def run_overlap(c: Crowd) -> list[dict[str, Any]]:
    fitted = aggregate(c.items, c.reviewers, c.labels, n_classes=5, random_state=0)
    assert fitted.skills is not None
    rows = []
    for skills_from, skills, prior in [
        ("Dawid–Skene estimate", fitted.skills, fitted.prior),
        ("true confusions", c.confusions, c.prior),
    ]:
        for max_reviews in (3, 4, 5, 6, 7, 8, 10):
            rng = np.random.default_rng(7)
            truth = rng.choice(5, size=10_000, p=c.prior)
            t = time.perf_counter()
            run = adaptive_overlap(
                truth, c.confusions, skills, prior=prior, max_reviews=max_reviews, random_state=rng
            )
            secs = time.perf_counter() - t
            v = run.verdicts
            settled = v.status == "settled"
            rows.append(
                {
                    "skills": skills_from,
                    "max_reviews": max_reviews,
                    "answers_per_item": run.items.size / truth.size,
                    "accuracy": float((v.label == truth).mean()),
                    "accuracy_settled": float((v.label == truth)[settled].mean()),
                    "expert_share": float((v.status == "expert").mean()),
                    "seconds": secs,
                }
            )
    return rows


def fetch_pyanno() -> np.ndarray | None:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "pyanno==2.0.2",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-d",
            tmp,
            "-q",
        ]
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=300)
            archive = next(Path(tmp).glob("pyanno-2.0.2.tar.gz"))
            with tarfile.open(archive) as tar:
                member = tar.extractfile("pyanno-2.0.2/data/e-2.txt")
                assert member is not None
                text = member.read().decode()
        except Exception as exc:  # no network, no index, changed archive: say so, go on
            print(f"pyanno data skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
            return None
    rows = [
        [int(x) for x in line.replace(",", " ").split()]
        for line in text.splitlines()
        if line.strip()
    ]
    return np.array(rows, dtype=np.int64)


def run_agreement(matrix: np.ndarray) -> dict[str, Any]:
    items, raters, labels = long_form(matrix, missing=-1)
    labels = labels - 1  # 1..5 -> 0..4
    out: dict[str, Any] = {
        "items": int(matrix.shape[0]),
        "annotators": int(matrix.shape[1]),
        "ratings": int(items.size),
        "ratings_per_item": sorted(set(np.bincount(items).tolist())),
    }
    for name, fn in [
        ("percent agreement", percent_agreement),
        ("Fleiss' kappa", fleiss_kappa),
        ("Krippendorff's alpha (nominal)", krippendorff_alpha),
    ]:
        r, secs, _ = best_of(
            lambda f=fn: f(items, raters, labels, n_classes=5, n_boot=1000, random_state=0), 1
        )
        out[name] = {
            "value": r.value,
            "low": r.low,
            "high": r.high,
            "n": r.n,
            "seconds_with_1000_bootstraps": secs,
        }
    try:
        from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

        table = np.zeros((matrix.shape[0], 5))
        np.add.at(table, (items, labels), 1)
        out["Fleiss' kappa"]["statsmodels"] = float(sm_fleiss(table, method="fleiss"))
    except ImportError:
        print("statsmodels missing: no Fleiss cross-check", file=sys.stderr)
    try:
        import krippendorff

        rel = np.where(matrix >= 0, matrix, np.nan).T.astype(float)
        ref, secs, _ = best_of(
            lambda: krippendorff.alpha(reliability_data=rel, level_of_measurement="nominal"), 1
        )
        out["Krippendorff's alpha (nominal)"]["krippendorff"] = float(ref)
        out["Krippendorff's alpha (nominal)"]["krippendorff_seconds_point_only"] = secs
    except ImportError:
        print("krippendorff missing: no alpha cross-check", file=sys.stderr)
    ds = aggregate(items, raters, labels, n_classes=5, random_state=0)
    mv = aggregate(items, raters, labels, method="majority", n_classes=5, random_state=0)
    out["dawid_skene_vs_majority_label_share_differing"] = float((ds.labels != mv.labels).mean())
    return out


def fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def markdown(res: dict[str, Any]) -> str:
    t = res["targets"]
    lines = [
        f"# Consensus benchmark{' (quick run)' if res['quick'] else ''}",
        "",
        f"{res['when']} · {res['machine']} · crowd-kit {res['crowd_kit'] or 'not installed'}",
        "",
        f"Load average (1 min) at start {res['load'][0]:.1f}, at end {res['load'][1]:.1f} on "
        f"{os.cpu_count()} cores: other work shared the machine, so wall-clock seconds are "
        "noisy; CPU seconds of this process are steadier, and the ratios to crowd-kit are "
        "measured in the same run.",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for row in t:
        lines.append(f"| {row['target']} | {row['measured']} | {row['met']} |")
    for size in ("10k", "1M"):
        block = res["aggregation"].get(size)
        if not block:
            continue
        lines += [
            "",
            f"## Aggregation, {block['answers']:,} answers ({block['items']:,} items)",
            "",
            "| library | method | accuracy | seconds (wall) | CPU seconds | EM iterations |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for r in block["rows"]:
            failed = "failed: " + r.get("error", "").split(":")[0] + " (see the .json)"
            acc = fmt(r["accuracy"]) if r["accuracy"] is not None else failed
            lines.append(
                f"| {r['library']} | {r['method']} | {acc} | {fmt(r['seconds'], 3)} | "
                f"{fmt(r['cpu_seconds'], 3)} | {r.get('iterations', '')} |"
            )
    lines += [
        "",
        "## Adaptive overlap (10,000 fresh items, confidence 0.95)",
        "",
        "| skills from | max reviews | answers / item | accuracy | accuracy of settled | "
        "to expert |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in res["overlap"]:
        lines.append(
            f"| {r['skills']} | {r['max_reviews']} | {r['answers_per_item']:.2f} | "
            f"{r['accuracy']:.4f} | {r['accuracy_settled']:.4f} | "
            f"{100 * r['expert_share']:.1f}% |"
        )
    ag = res["agreement"]
    lines += ["", "## Agreement on real data (pyanno e-2.txt, Rzhetsky et al. 2009)", ""]
    if ag is None:
        lines.append("Skipped: the pyanno 2.0.2 source archive could not be fetched.")
    else:
        lines += [
            f"{ag['items']:,} items, {ag['annotators']} annotators, {ag['ratings']:,} "
            f"ratings ({ag['ratings_per_item']} per item). Reference: 0.400.",
            "",
            "| figure | value | 95% bootstrap interval | reference library | "
            "seconds (1,000 resamples) |",
            "|---|---:|---|---:|---:|",
        ]
        for name in ("percent agreement", "Fleiss' kappa", "Krippendorff's alpha (nominal)"):
            r = ag[name]
            ref = r.get("statsmodels", r.get("krippendorff"))
            lines.append(
                f"| {name} | {r['value']:.4f} | [{r['low']:.4f}, {r['high']:.4f}] | "
                f"{fmt(ref)} | {r['seconds_with_1000_bootstraps']:.2f} |"
            )
        lines += [
            "",
            "Labels that Dawid–Skene and majority vote disagree on: "
            f"{100 * ag['dawid_skene_vs_majority_label_share_differing']:.1f}% of items.",
        ]
    return "\n".join(lines) + "\n"


def find(rows: list[dict[str, Any]], library: str, method: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["library"] == library and r["method"] == method), None)


def targets(res: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    small, big = res["aggregation"]["10k"]["rows"], res["aggregation"]["1M"]["rows"]
    ours_s, ours_b = find(small, "loopwise", "dawid_skene"), find(big, "loopwise", "dawid_skene")
    assert ours_s is not None and ours_b is not None
    ck_s, ck_b = find(small, "crowd-kit", "DawidSkene"), find(big, "crowd-kit", "DawidSkene")
    if ck_s and ck_s["accuracy"] is not None:
        diff = ours_s["accuracy"] - ck_s["accuracy"]
        out.append(
            {
                "target": "Dawid–Skene accuracy at crowd-kit's (± 0.002), 30k answers",
                "measured": f"{ours_s['accuracy']:.4f} vs {ck_s['accuracy']:.4f} ({diff:+.4f})",
                "met": "yes" if diff >= -0.002 else "no",
            }
        )
        ratio = ck_s["seconds"] / ours_s["seconds"]
        out.append(
            {
                "target": "Dawid–Skene >= 10x faster than crowd-kit, 30k answers",
                "measured": f"{ours_s['seconds']:.3f} s vs {ck_s['seconds']:.2f} s ({ratio:.0f}x)",
                "met": "yes" if ratio >= 10 else "no",
            }
        )
    if ck_b and ck_b["accuracy"] is not None:
        diff = ours_b["accuracy"] - ck_b["accuracy"]
        ratio = ck_b["seconds"] / ours_b["seconds"]
        out.append(
            {
                "target": "Dawid–Skene accuracy at crowd-kit's (± 0.002), 1M answers",
                "measured": f"{ours_b['accuracy']:.4f} vs {ck_b['accuracy']:.4f} ({diff:+.4f})",
                "met": "yes" if diff >= -0.002 else "no",
            }
        )
        out.append(
            {
                "target": "Dawid–Skene >= 10x faster than crowd-kit, 1M answers",
                "measured": f"{ours_b['seconds']:.3f} s vs {ck_b['seconds']:.1f} s ({ratio:.0f}x)",
                "met": "yes" if ratio >= 10 else "no",
            }
        )
    out.append(
        {
            "target": "1,000,000 answers (Dawid–Skene) in < 1 s",
            "measured": f"{ours_b['seconds']:.3f} s wall, {ours_b['cpu_seconds']:.3f} s CPU "
            f"({ours_b['iterations']} EM iterations)",
            "met": "yes" if ours_b["seconds"] < 1 else "no",
        }
    )
    ok = [
        r
        for r in res["overlap"]
        if r["skills"] == "Dawid–Skene estimate"
        and r["accuracy"] >= 0.93
        and r["answers_per_item"] <= 3.5
    ]
    best = max(ok, key=lambda r: r["accuracy"]) if ok else None
    out.append(
        {
            "target": "adaptive overlap >= 0.93 accuracy at <= 3.5 answers per item",
            "measured": (
                f"{best['accuracy']:.4f} at {best['answers_per_item']:.2f} answers "
                f"(max_reviews {best['max_reviews']})"
            )
            if best
            else "not reached",
            "met": "yes" if best else "no",
        }
    )
    if res["agreement"] is not None:
        ag = res["agreement"]
        k, a = ag["Fleiss' kappa"]["value"], ag["Krippendorff's alpha (nominal)"]["value"]
        out.append(
            {
                "target": "pyanno: Fleiss' kappa and Krippendorff's alpha 0.400",
                "measured": f"{k:.4f} and {a:.4f}",
                "met": "yes" if abs(k - 0.4) < 5e-4 and abs(a - 0.4) < 5e-4 else "no",
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="no crowd-kit on 1M answers, no GLAD")
    args = ap.parse_args()
    ck = crowd_kit()
    res: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} · {os.cpu_count()} cores · Python "
        f"{platform.python_version()} · numpy {np.__version__}",
        "quick": args.quick,
        "crowd": KINDS,
        "reference": REFERENCE,
        "crowd_kit": None,
        "aggregation": {},
        "load": [os.getloadavg()[0]],
    }
    if ck is not None:
        from importlib.metadata import version

        res["crowd_kit"] = version("crowd-kit")
    sizes = [("10k", 10_000, 0), ("1M", 333_334, 1)]
    small: Crowd | None = None
    for label, n_items, seed in sizes:
        c = simulate_crowd(n_items, KINDS, n_classes=5, per_item=3, random_state=seed)
        if label == "10k":
            small = c
        print(f"{label}: {c.items.size:,} answers", file=sys.stderr)
        rows = run_ours(c, repeats=3)
        if ck is not None and not (args.quick and label == "1M"):
            names = CK_ALL if label == "10k" else CK_1M
            if args.quick:
                names = [n for n in names if n != "GLAD"]
            rows += run_crowd_kit(ck, c, names, repeats=2 if label == "10k" else 1)
        res["aggregation"][label] = {"items": n_items, "answers": int(c.items.size), "rows": rows}
    assert small is not None
    res["overlap"] = run_overlap(small)
    matrix = fetch_pyanno()
    res["agreement"] = None if matrix is None else run_agreement(matrix)
    res["load"].append(os.getloadavg()[0])
    res["targets"] = targets(res)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "consensus-quick" if args.quick else "consensus"
    (RESULTS / f"{stem}.json").write_text(json.dumps(res, indent=2, default=float) + "\n")
    md = markdown(res)
    (RESULTS / f"{stem}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
