#!/usr/bin/env python
"""Oversight statistics on real data: group metrics against fairlearn, interval coverage,
drift on census data that changes over time.

Run by hand (not part of the test suite)::

    python bench/oversight.py [--reps 2000] [--quick]

1. **fairlearn cross-check.** ``group_metrics`` against fairlearn's ``MetricFrame`` (and
   its ``demographic_parity_*``, ``equalized_odds_*``, ``equal_opportunity_*`` functions)
   for every breakdown (each attribute and every intersection), on

   * scikit-lego's ``load_arrests`` (5,226 arrests; ``colour``, ``sex``, ``citizen``, and an
     age band that makes small groups); ``y_pred`` = a logistic regression's 5-fold
     out-of-fold predictions of ``released`` from the other columns;
   * nannyml's Massachusetts census employment data, 2015 (68,785 people; ``SEX``,
     ``RAC1P`` — one race code has a single person); ``y_pred`` = the shipped predictions.

   Per-group metrics: count, selection rate, TPR, FPR, FNR, TNR, PPV (precision),
   accuracy, balanced accuracy; disparities: ``MetricFrame.difference()`` / ``ratio()`` of
   each (between groups) and the six named ones. Every pair where both are defined must
   agree to 1e-9; pairs where loopwise says *undefined* are listed with fairlearn's value.
   A disparity that differs is recomputed from fairlearn's per-group values without the
   groups loopwise calls undefined, and must then agree.
2. **Interval coverage** at the nominal 95% on simulated groups (``--reps``, default
   2,000, per configuration): Wilson (one rate), Newcombe (difference), Katz (ratio), MOVER
   for balanced accuracy, and the Hájek / Kish–Wilson interval of ``auto_error`` under
   unequal audit probabilities.
3. **Drift.** Census 2015 (reference) against 2016, 2017, 2018 and windows of 5,000
   people: 16 features (age numeric, the rest categorical), the model's confidence and its
   predicted-label mix. The files carry no time within a year, and their rows are ordered
   (by household relationship, among others), so a block of consecutive rows is not a
   sample of its year: windows are random disjoint blocks of each year; consecutive blocks
   are reported too, as a case of windows that really do differ. Real drift between the
   years is small: no year and no random window may be flagged. Then synthetic shifts of
   2016 (age + 5 and + 10 years; 70% one sex; confidence squared; review rate 30% → 45%
   and → 50%) show where the bands sit, and a window of 100 people must be
   ``insufficient``.
4. **Speed**, best of 3 in the same process: ``group_metrics`` (all breakdowns, intervals,
   disparities) against fairlearn's ``MetricFrame`` with the same nine metrics plus its
   differences and ratios, on census 2016–18 (208,892 rows, SEX x RAC1P); a drift report
   of a 2016–18 window against the 2015 reference.

The census data is read from nannyml's wheel without installing or importing nannyml:
the wheel is fetched once by ``pip download nannyml==0.13.1 --no-deps`` into
``~/.cache/loopwise-bench`` (or ``$LOOPWISE_BENCH_CACHE``). Needs ``pip install fairlearn
scikit-lego pyarrow``; a missing piece skips its section with a message.

Results: a table on stdout, ``bench/results/oversight.json`` and ``oversight.md``
(``oversight-quick.*`` with ``--quick``: 1,000 repetitions, fewer windows).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from loopwise.oversight import (
    DriftMonitor,
    feature_drift,
    group_metrics,
    katz,
    newcombe,
    rate_drift,
    wilson,
)

RESULTS = Path(__file__).resolve().parent / "results"
NANNYML = "nannyml==0.13.1"
CENSUS_FEATURES = [
    "AGEP",
    "SCHL",
    "MAR",
    "RELP",
    "DIS",
    "ESP",
    "CIT",
    "MIG",
    "MIL",
    "ANC",
    "NATIVITY",
    "DEAR",
    "DEYE",
    "DREM",
    "SEX",
    "RAC1P",
]
TOL = 1e-9


# ------------------------------------------------------------------------------ data
def load_arrests() -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict
    from sklego.datasets import load_arrests as arrests

    df = arrests(as_frame=True)
    y = (df["released"] == "Yes").to_numpy().astype(int)
    X = np.c_[
        df["year"].to_numpy() - 2000,
        df["age"].to_numpy() / 10,
        df["checks"].to_numpy(),
        (df["employed"] == "Yes").to_numpy(),
        (df["citizen"] == "Yes").to_numpy(),
        (df["colour"] == "Black").to_numpy(),
        (df["sex"] == "Male").to_numpy(),
    ].astype(float)
    pred = cross_val_predict(LogisticRegression(max_iter=1000), X, y, cv=5)
    band = np.select(
        [df["age"] < 18, df["age"] < 30, df["age"] < 45], ["<18", "18-29", "30-44"], "45+"
    )
    sens = {
        "colour": df["colour"].to_numpy(),
        "sex": df["sex"].to_numpy(),
        "citizen": df["citizen"].to_numpy(),
        "age_band": band,
    }
    return {"name": "arrests (scikit-lego)", "y": y, "pred": pred, "sensitive": sens}


def census_wheel() -> Path:
    cache = Path(os.environ.get("LOOPWISE_BENCH_CACHE", Path.home() / ".cache/loopwise-bench"))
    found = sorted(cache.glob("nannyml-0.13.1-*.whl"))
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                NANNYML,
                "--no-deps",
                "--quiet",
                "-d",
                str(cache),
            ],
            check=True,
            timeout=600,
        )
        found = sorted(cache.glob("nannyml-0.13.1-*.whl"))
    return found[0]


def load_census() -> dict[str, Any]:
    import pandas as pd

    z = zipfile.ZipFile(census_wheel())

    def read(name: str) -> Any:
        return pd.read_parquet(io.BytesIO(z.read(f"nannyml/datasets/data/{name}.pq")))

    ref = read("employment_MA_reference")
    ana = read("employment_MA_analysis").merge(read("employment_MA_analysis_target"), on="id")
    return {"reference": ref, "analysis": ana}


# ------------------------------------------------------------------ 1. fairlearn check
def fairlearn_metrics() -> dict[str, Callable[..., float]]:
    import fairlearn.metrics as fm
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, precision_score

    return {
        "n": fm.count,
        "selection_rate": fm.selection_rate,
        "tpr": fm.true_positive_rate,
        "fpr": fm.false_positive_rate,
        "fnr": fm.false_negative_rate,
        "tnr": fm.true_negative_rate,
        "ppv": precision_score,
        "accuracy": accuracy_score,
        "balanced_accuracy": balanced_accuracy_score,
    }


def named_fairlearn() -> dict[str, Callable[..., float]]:
    import fairlearn.metrics as fm

    return {
        n: getattr(fm, n)
        for n in (
            "demographic_parity_difference",
            "demographic_parity_ratio",
            "equalized_odds_difference",
            "equalized_odds_ratio",
            "equal_opportunity_difference",
            "equal_opportunity_ratio",
        )
    }


def num(x: Any) -> float:
    return float(x) if x is not None else math.nan


def cross_check(data: dict[str, Any]) -> dict[str, Any]:
    import fairlearn.metrics as fm
    import pandas as pd

    metrics = fairlearn_metrics()
    y, pred, sens = data["y"], data["pred"], data["sensitive"]
    rep = group_metrics(y, pred, sens)
    counts = {
        "equal": 0,
        "mismatch": 0,
        "loopwise_undefined": 0,
        "both_undefined": 0,
        "fairlearn_undefined": 0,
        "empty_cells_fairlearn_only": 0,
    }
    max_diff = 0.0
    undefined_rows: list[dict[str, Any]] = []
    disparity_rows: list[dict[str, Any]] = []
    names = list(sens)
    for size in range(1, len(names) + 1):
        for combo in itertools.combinations(names, size):
            attr = " & ".join(combo)
            brk = rep.attributes[attr]
            sf = pd.DataFrame({c: sens[c] for c in combo})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mf = fm.MetricFrame(metrics=metrics, y_true=y, y_pred=pred, sensitive_features=sf)
                by = mf.by_group
                diffs, ratios = mf.difference(), mf.ratio()
                named = {k: f(y, pred, sensitive_features=sf) for k, f in named_fairlearn().items()}
            undefined_groups: dict[str, set[str]] = {}
            for key, row in by.iterrows():
                group = " & ".join(str(k) for k in (key if isinstance(key, tuple) else (key,)))
                if group not in brk.by_group:  # fairlearn lists empty cells of the product
                    assert not float(row["n"]) > 0, group
                    counts["empty_cells_fairlearn_only"] += 1
                    continue
                stats = brk.by_group[group]
                for m in metrics:
                    ours = float(stats.n) if m == "n" else stats.rates[m].estimate
                    theirs = float(row[m])
                    if math.isnan(ours) and math.isnan(theirs):
                        counts["both_undefined"] += 1
                    elif math.isnan(ours):
                        counts["loopwise_undefined"] += 1
                        undefined_groups.setdefault(m, set()).add(group)
                        undefined_rows.append(
                            {
                                "data": data["name"],
                                "attribute": attr,
                                "group": group,
                                "n": stats.n,
                                "metric": m,
                                "fairlearn": theirs,
                                "loopwise": stats.rates[m].reason,
                            }
                        )
                    elif math.isnan(theirs):
                        counts["fairlearn_undefined"] += 1
                    else:
                        d = abs(ours - theirs)
                        max_diff = max(max_diff, d)
                        counts["equal" if d <= TOL else "mismatch"] += 1
            theirs_all = {f"{m}_difference": float(diffs[m]) for m in metrics if m != "n"}
            theirs_all |= {f"{m}_ratio": float(ratios[m]) for m in metrics if m != "n"}
            theirs_all |= {k: float(v) for k, v in named.items()}
            for key, theirs in theirs_all.items():
                ours = brk.disparities[key].value.estimate
                if abs(ours - theirs) <= TOL or (math.isnan(ours) and math.isnan(theirs)):
                    counts["equal"] += 1
                    continue
                redone = recompute(key, by, undefined_groups)
                disparity_rows.append(
                    {
                        "data": data["name"],
                        "attribute": attr,
                        "disparity": key,
                        "fairlearn": theirs,
                        "loopwise": ours,
                        "fairlearn_without_undefined_groups": redone,
                        "agrees_after_dropping": abs(redone - ours) <= TOL
                        or (math.isnan(redone) and math.isnan(ours)),
                    }
                )
                counts["equal" if disparity_rows[-1]["agrees_after_dropping"] else "mismatch"] += 1
    return {
        "data": data["name"],
        "rows": len(y),
        "counts": counts,
        "max_abs_diff": max_diff,
        "undefined": undefined_rows,
        "disparities_differing": disparity_rows,
    }


def recompute(key: str, by: Any, undefined_groups: dict[str, set[str]]) -> float:
    """A fairlearn disparity from its per-group values, without loopwise's undefined groups."""

    def values(m: str) -> list[float]:
        out = []
        for k, row in by.iterrows():
            g = " & ".join(str(x) for x in (k if isinstance(k, tuple) else (k,)))
            if g not in undefined_groups.get(m, set()) and not math.isnan(float(row[m])):
                out.append(float(row[m]))
        return out

    def diff(m: str) -> float:
        v = values(m)
        return max(v) - min(v) if len(v) > 1 else math.nan

    def ratio(m: str) -> float:
        v = values(m)
        return min(v) / max(v) if len(v) > 1 and max(v) > 0 else math.nan

    alias = {
        "demographic_parity": ["selection_rate"],
        "equal_opportunity": ["tpr"],
        "equalized_odds": ["tpr", "fpr"],
    }
    for name, ms in alias.items():
        if key.startswith(name):
            vals = [diff(m) if key.endswith("difference") else ratio(m) for m in ms]
            vals = [v for v in vals if not math.isnan(v)]
            if not vals:
                return math.nan
            return max(vals) if key.endswith("difference") else min(vals)
    m, kind = key.rsplit("_", 1)
    return diff(m) if kind == "difference" else ratio(m)


# ---------------------------------------------------------------------- 2. coverage
def coverage(reps: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(20240601)
    rows: list[dict[str, Any]] = []

    def add(method: str, config: str, hits: list[bool], widths: list[float]) -> None:
        rows.append(
            {
                "method": method,
                "config": config,
                "reps": len(hits),
                "coverage": float(np.mean(hits)),
                "mean_width": float(np.nanmean(widths)),
            }
        )

    for n, p in itertools.product((30, 100, 1000), (0.02, 0.1, 0.3, 0.5)):
        ivs = [wilson(k, n) for k in rng.binomial(n, p, reps)]
        add(
            "wilson",
            f"n={n}, p={p}",
            [r.low <= p <= r.high for r in ivs],
            [r.high - r.low for r in ivs],
        )
    pairs = [
        (30, 0.2, 30, 0.4),
        (40, 0.3, 40, 0.5),
        (100, 0.1, 150, 0.15),
        (60, 0.5, 200, 0.5),
        (300, 0.05, 500, 0.08),
        (1000, 0.3, 1000, 0.33),
    ]
    for n1, p1, n2, p2 in pairs:
        k1, k2 = rng.binomial(n1, p1, reps), rng.binomial(n2, p2, reps)
        config = f"{n1}x{p1} vs {n2}x{p2}"
        d = [newcombe(a, n1, b, n2) for a, b in zip(k1, k2, strict=True)]
        add(
            "newcombe", config, [r.low <= p1 - p2 <= r.high for r in d], [r.high - r.low for r in d]
        )
        q = [katz(a, n1, b, n2) for a, b in zip(k1, k2, strict=True)]
        add(
            "katz",
            config,
            [r.low <= p1 / p2 <= r.high for r in q],
            [math.log(r.high / r.low) if r.low > 0 else math.nan for r in q],
        )
    for n_pos, tpr, n_neg, tnr in [(30, 0.8, 70, 0.9), (100, 0.6, 300, 0.95)]:
        y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
        truth = (tpr + tnr) / 2
        hits, widths = [], []
        for _ in range(reps):
            pred = np.r_[rng.random(n_pos) < tpr, rng.random(n_neg) >= tnr].astype(int)
            r = group_metrics(y, pred, np.zeros(y.size, int)).by_group["0"].balanced_accuracy
            hits.append(r.low <= truth <= r.high)
            widths.append(r.high - r.low)
        add("balanced accuracy (MOVER)", f"P={n_pos} tpr={tpr}, N={n_neg} tnr={tnr}", hits, widths)
    n = 5000
    pi = np.where(np.arange(n) < n // 2, 0.05, 0.2)
    for err_low, err_high in [(0.02, 0.02), (0.06, 0.01)]:
        p_err = np.where(np.arange(n) < n // 2, err_low, err_high)
        truth = float(p_err.mean())
        hits, widths = [], []
        for _ in range(reps):
            wrong = rng.random(n) < p_err
            audited = rng.random(n) < pi
            r = (
                group_metrics(
                    wrong.astype(int),
                    np.zeros(n, int),
                    np.zeros(n, int),
                    audited=audited,
                    inclusion=pi,
                    positive=1 if wrong.any() else 0,
                )
                .by_group["0"]
                .auto_error
            )
            hits.append(r.low <= truth <= r.high)
            widths.append(r.high - r.low)
        add(
            "auto_error (Hájek, Wilson at linearised n)",
            f"audit 5%/20%, error {err_low}/{err_high}",
            hits,
            widths,
        )
    return rows


# -------------------------------------------------------------------------- 3. drift
def drift(census: dict[str, Any], quick: bool) -> dict[str, Any]:
    ref, ana = census["reference"], census["analysis"]
    cat = [f for f in CENSUS_FEATURES if f != "AGEP"]

    def frame(df: Any) -> dict[str, np.ndarray]:
        cols = {f: df[f].to_numpy() for f in CENSUS_FEATURES}
        cols["confidence"] = df["predicted_probability"].to_numpy()
        cols["predicted_label"] = df["prediction"].to_numpy()
        return cols

    monitor = DriftMonitor(categorical=[*cat, "predicted_label"]).fit(frame(ref))
    real: list[dict[str, Any]] = []
    for year in (2016, 2017, 2018):
        rep = monitor.report(frame(ana[ana["year"] == year]))
        worst = max(rep.features.values(), key=lambda f: f.psi)
        real.append(
            {
                "window": str(year),
                "n": int((ana["year"] == year).sum()),
                "status": rep.status,
                "drifted": list(rep.drifted),
                "max_psi": worst.psi,
                "max_psi_feature": worst.name,
                "max_js": max(f.js for f in rep.features.values()),
            }
        )
    size = 5000
    rng = np.random.default_rng(0)
    blocks: dict[str, list[np.ndarray]] = {"random": [], "contiguous": []}
    for year in (2016, 2017, 2018):
        rows = np.flatnonzero(ana["year"].to_numpy() == year)
        for i in range(0, len(rows) - size + 1, size * (4 if quick else 1)):
            blocks["contiguous"].append(rows[i : i + size])
        shuffled = rng.permutation(rows)
        for i in range(0, len(rows) - size + 1, size * (4 if quick else 1)):
            blocks["random"].append(shuffled[i : i + size])
    for kind, idx_list in blocks.items():
        reports = [monitor.report(frame(ana.iloc[ix])) for ix in idx_list]
        flagged = sorted({k for r in reports for k in r.drifted})
        worst = max((f for r in reports for f in r.features.values()), key=lambda f: f.psi)
        real.append(
            {
                "window": f"{len(reports)} {kind} windows of {size:,} (2016-18)",
                "n": size,
                "status": f"{sum(r.status == 'ok' for r in reports)} ok / "
                f"{sum(r.status == 'moderate' for r in reports)} moderate / "
                f"{sum(r.status == 'major' for r in reports)} major",
                "drifted": flagged,
                "max_psi": worst.psi,
                "max_psi_feature": worst.name,
                "max_js": max(f.js for r in reports for f in r.features.values()),
            }
        )

    base = ana[ana["year"] == 2016]
    synthetic: list[dict[str, Any]] = []
    older, oldest = frame(base), frame(base)
    older["AGEP"] = older["AGEP"] + 5
    oldest["AGEP"] = oldest["AGEP"] + 10
    sex = base["SEX"].to_numpy().astype(str)
    one = sex == sex[0]
    idx = np.r_[rng.choice(np.flatnonzero(one), 7000), rng.choice(np.flatnonzero(~one), 3000)]
    skewed = {k: v[idx] for k, v in frame(base).items()}
    squared = frame(base)
    squared["confidence"] = squared["confidence"] ** 2
    for name, cur, feature in [
        ("age + 5 years", older, "AGEP"),
        ("age + 10 years", oldest, "AGEP"),
        ("70% one sex", skewed, "SEX"),
        ("confidence squared", squared, "confidence"),
    ]:
        rep = monitor.report(cur)
        f = rep.features[feature]
        synthetic.append(
            {
                "shift": name,
                "feature": feature,
                "status": f.status,
                "psi": f.psi,
                "js": f.js,
                "wasserstein": f.wasserstein,
                "report_status": rep.status,
            }
        )
    for k in (4500, 5000):
        rr = rate_drift(3000, 10_000, k, 10_000, name="review_rate")
        synthetic.append(
            {
                "shift": f"review rate 30% -> {k // 100}%",
                "feature": "review_rate",
                "status": rr.status,
                "psi": rr.psi,
                "js": rr.js,
                "wasserstein": math.nan,
                "report_status": rr.status,
            }
        )
    tiny = feature_drift(ref["AGEP"].to_numpy(), base["AGEP"].to_numpy()[:100], name="AGEP")
    synthetic.append(
        {
            "shift": "window of 100 people",
            "feature": "AGEP",
            "status": tiny.status,
            "psi": tiny.psi,
            "js": tiny.js,
            "wasserstein": tiny.wasserstein,
            "report_status": tiny.status,
        }
    )
    return {"real": real, "synthetic": synthetic}


# -------------------------------------------------------------------------- 4. speed
def best_of(f: Callable[[], Any], k: int = 3) -> float:
    times = []
    for _ in range(k):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def speed(census: dict[str, Any] | None) -> list[dict[str, Any]]:
    import fairlearn.metrics as fm
    import pandas as pd

    if census is None:
        return []
    ana = census["analysis"]
    y, pred = ana["employed"].to_numpy(), ana["prediction"].to_numpy()
    sens = {"SEX": ana["SEX"].to_numpy(), "RAC1P": ana["RAC1P"].to_numpy()}
    metrics = fairlearn_metrics()

    def fairlearn_run() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mf = fm.MetricFrame(
                metrics=metrics, y_true=y, y_pred=pred, sensitive_features=pd.DataFrame(sens)
            )
            mf.difference()
            mf.ratio()

    ours = best_of(lambda: group_metrics(y, pred, sens))
    theirs = best_of(fairlearn_run)
    ref = census["reference"]
    cat = [f for f in CENSUS_FEATURES if f != "AGEP"]
    monitor = DriftMonitor(categorical=cat).fit({f: ref[f].to_numpy() for f in CENSUS_FEATURES})
    window = {f: ana[f].to_numpy() for f in CENSUS_FEATURES}
    drift_s = best_of(lambda: monitor.report(window))
    return [
        {
            "case": "group_metrics, SEX x RAC1P (3 breakdowns)",
            "rows": len(y),
            "seconds": ours,
            "reference": "fairlearn MetricFrame (finest only)",
            "reference_seconds": theirs,
            "speed_vs_reference": theirs / ours,
        },
        {
            "case": "drift report, 16 features",
            "rows": len(ana),
            "seconds": drift_s,
            "reference": "",
            "reference_seconds": math.nan,
            "speed_vs_reference": math.nan,
        },
    ]


# ------------------------------------------------------------------------- output
def fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}g}" if abs(x) < 1e-3 and x != 0 else f"{x:.{digits}f}"
    return str(x)


def markdown(res: dict[str, Any]) -> str:
    out = [
        f"# Oversight benchmark{' (quick run)' if res['quick'] else ''}",
        "",
        f"{res['when']} · {res['machine']} · {res['versions']}",
        "",
    ]
    out += [
        "## 1. Group metrics against fairlearn's MetricFrame",
        "",
        "Per-group values (count, selection rate, TPR, FPR, FNR, TNR, PPV, accuracy, "
        "balanced accuracy) and disparities (each metric's difference and ratio between "
        "groups, and the six named ones) of every breakdown. *equal*: both defined and "
        f"within {TOL:g} (disparities that differ only because fairlearn counts an "
        "undefined group's 0 are counted equal once recomputed without it, and listed "
        "below).",
        "",
        "| data | rows | equal | mismatch | loopwise undefined, fairlearn a number | "
        "both undefined | max abs diff |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in res["fairlearn"]:
        k = c["counts"]
        out.append(
            f"| {c['data']} | {c['rows']:,} | {k['equal']} | {k['mismatch']} | "
            f"{k['loopwise_undefined']} | {k['both_undefined']} | "
            f"{c['max_abs_diff']:.1e} |"
        )
    out += [
        "",
        "Where fairlearn returns a number and loopwise says undefined:",
        "",
        "| data | attribute | group | n | metric | fairlearn | loopwise |",
        "|---|---|---|---:|---|---:|---|",
    ]
    for c in res["fairlearn"]:
        for u in c["undefined"]:
            out.append(
                f"| {u['data']} | {u['attribute']} | {u['group']} | {u['n']} | "
                f"{u['metric']} | {fmt(u['fairlearn'])} | undefined: {u['loopwise']} |"
            )
    out += [
        "",
        "Disparities that differ from fairlearn's (because of those groups):",
        "",
        "| data | attribute | disparity | fairlearn | loopwise | fairlearn without the "
        "undefined groups | agrees then |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for c in res["fairlearn"]:
        for d in c["disparities_differing"]:
            out.append(
                f"| {d['data']} | {d['attribute']} | {d['disparity']} | "
                f"{fmt(d['fairlearn'])} | {fmt(d['loopwise'])} | "
                f"{fmt(d['fairlearn_without_undefined_groups'])} | "
                f"{'yes' if d['agrees_after_dropping'] else 'NO'} |"
            )
    out += [
        "",
        f"## 2. Interval coverage (nominal 0.95, {res['reps']:,} repetitions each)",
        "",
        "Binomial sd of a coverage estimate near 0.95: "
        f"{math.sqrt(0.95 * 0.05 / res['reps']):.4f}. Katz width is on the log scale.",
        "",
        "| interval | configuration | coverage | mean width |",
        "|---|---|---:|---:|",
    ]
    for r in res["coverage"]:
        out.append(
            f"| {r['method']} | {r['config']} | {r['coverage']:.4f} | {r['mean_width']:.4f} |"
        )
    if res.get("drift"):
        out += [
            "",
            "## 3. Drift: census 2015 (68,785) against later years",
            "",
            "Windows of 5,000: *random* = disjoint random blocks of each year; "
            "*contiguous* = consecutive rows of the file, which is ordered within a year "
            "(not samples of the year).",
            "",
            "Decision on effect sizes: numeric PSI 0.1 / 0.25, categorical JS distance "
            "0.13 / 0.21 (moderate / major); 16 features + confidence + predicted label.",
            "",
            "| window | n | status | flagged | max PSI (feature) | max JS |",
            "|---|---:|---|---|---|---:|",
        ]
        for r in res["drift"]["real"]:
            out.append(
                f"| {r['window']} | {r['n']:,} | {r['status']} | "
                f"{', '.join(r['drifted']) or '–'} | {fmt(r['max_psi'])} "
                f"({r['max_psi_feature'] or '–'}) | {fmt(r['max_js'])} |"
            )
        out += [
            "",
            "| synthetic shift of 2016 | feature | status | PSI | JS | Wasserstein (SDs) |",
            "|---|---|---|---:|---:|---:|",
        ]
        for r in res["drift"]["synthetic"]:
            out.append(
                f"| {r['shift']} | {r['feature']} | {r['status']} | {fmt(r['psi'])} | "
                f"{fmt(r['js'])} | {fmt(r['wasserstein'])} |"
            )
    if res.get("speed"):
        out += [
            "",
            "## 4. Speed (best of 3, same process)",
            "",
            "| case | rows | seconds | reference | reference seconds | loopwise speed-up |",
            "|---|---:|---:|---|---:|---:|",
        ]
        for s in res["speed"]:
            out.append(
                f"| {s['case']} | {s['rows']:,} | {s['seconds']:.3f} | "
                f"{s['reference'] or '–'} | {fmt(s['reference_seconds'], 3)} | "
                f"{fmt(s['speed_vs_reference'], 2)} |"
            )
    return "\n".join(out) + "\n"


def jsonable(x: Any) -> Any:
    """``nan`` → ``None``, numpy scalars → Python, recursively."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"numpy {np.__version__}"]
    for pkg in ("scipy", "fairlearn", "scikit-lego", "pandas"):
        try:
            parts.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            parts.append(f"{pkg} missing")
    return " · ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="1,000 repetitions, fewer windows")
    args = ap.parse_args()
    reps = args.reps or (1000 if args.quick else 2000)
    res: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()} · {os.cpu_count()} cores · Python "
        f"{platform.python_version()}",
        "versions": versions(),
        "quick": args.quick,
        "reps": reps,
        "tolerance": TOL,
    }
    census: dict[str, Any] | None = None
    try:
        census = load_census()
    except Exception as exc:  # no pip, no network to the registry, no pyarrow: say so
        print(f"census data skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
    res["fairlearn"] = []
    try:
        import fairlearn  # noqa: F401

        datasets = []
        try:
            datasets.append(load_arrests())
        except ImportError as exc:
            print(f"arrests skipped (pip install scikit-lego): {exc}", file=sys.stderr)
        if census is not None:
            ref = census["reference"]
            datasets.append(
                {
                    "name": "census MA 2015 (nannyml)",
                    "y": ref["employed"].to_numpy(),
                    "pred": ref["prediction"].to_numpy(),
                    "sensitive": {"SEX": ref["SEX"].to_numpy(), "RAC1P": ref["RAC1P"].to_numpy()},
                }
            )
        res["fairlearn"] = [cross_check(d) for d in datasets]
        res["speed"] = speed(census)
    except ImportError:
        print("fairlearn cross-check skipped: pip install fairlearn", file=sys.stderr)
    res["coverage"] = coverage(reps)
    res["drift"] = drift(census, args.quick) if census is not None else None
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "oversight-quick" if args.quick else "oversight"
    (RESULTS / f"{stem}.json").write_text(json.dumps(jsonable(res), indent=2) + "\n")
    md = markdown(res)
    (RESULTS / f"{stem}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
