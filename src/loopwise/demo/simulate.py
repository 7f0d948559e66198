"""The whole loop on real data, with simulated reviewers answering the queue.

A small first batch is labeled by people (cold start), the first model is trained on it,
the rest of the data streams through the gate in batches, reviewers answer what the gate
sends them, and the model is retrained as their labels accumulate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from loopwise.demo.data import DATASETS
from loopwise.loop import Loop, Project

DEMO_POLICY = {"threshold": 0.9, "audit_rate": 0.1}
"""The demo audits 10% of automatic decisions so that 569 cases give an error estimate."""


@dataclass
class SimulatedReviewer:
    """A person who gives the true label with probability ``accuracy``, else another
    label chosen at random."""

    name: str
    accuracy: float
    rng: np.random.Generator

    def answer(self, truth: int, n_labels: int) -> int:
        if n_labels < 2 or self.rng.random() < self.accuracy:
            return truth
        others = [i for i in range(n_labels) if i != truth]
        return int(self.rng.choice(others))


def _unique_name(loop: Loop, base: str) -> str:
    taken = {p["name"] for p in loop.projects()}
    name, i = base, 1
    while name in taken:
        i += 1
        name = f"{base}-{i}"
    return name


def drain_queue(
    loop: Loop, project: str, reviewers: Sequence[SimulatedReviewer],
    truth: dict[str, int], n_labels: int, labels: list[str],
) -> int:
    """Let the reviewers answer every open task, taking turns; returns answers given."""
    views = {r.name: loop.as_user(r.name) for r in reviewers}
    answered, turn, idle = 0, 0, 0
    while idle < len(reviewers):
        r = reviewers[turn % len(reviewers)]
        turn += 1
        view = views[r.name]
        tasks = view.project(project).claim(10)
        if not tasks:
            idle += 1
            continue
        idle = 0
        for t in tasks:
            ext = t["item"]["external_id"]
            label = labels[r.answer(truth[ext], n_labels)]
            view.submit_task(t["task_id"], label, seconds=float(r.rng.gamma(4.0, 5.0)))
            answered += 1
    return answered


def simulate(
    loop: Loop,
    *,
    project: str | None = None,
    dataset: str = "breast-cancer",
    random_state: int = 0,
    first_batch: int = 40,
    batch_size: int = 50,
    retrain_every: int = 40,
    reviewer_accuracies: Sequence[float] = (0.97, 0.95, 0.99),
    policy: dict[str, Any] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run the loop over a real dataset (:data:`~loopwise.demo.data.DATASETS`: scikit-learn's
    breast-cancer cases by default, or its digits); returns the demo's figures.

    Keys: ``project, items, automation_rate, model_accuracy, system_accuracy,
    estimated_auto_error, estimated_auto_error_ci, estimated_auto_error_n,
    true_auto_error, reviews, model_versions`` and the gate's ``gate_mode,
    target_error, certified, certified_threshold, labels_needed`` and the
    ``learning_curve`` (per model version: status, human labels, holdout accuracy).
    Accuracies are over the streamed items (those the model scored), against the dataset's
    true labels.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; known: {sorted(DATASETS)}")
    records, y, labels = DATASETS[dataset](random_state)
    project = project or dataset
    truth = {r["external_id"]: int(t) for r, t in zip(records, y, strict=True)}
    rng = np.random.default_rng(random_state)
    name = _unique_name(loop, project)
    proj: Project = loop.create_project(name, labels=labels, input="tabular",
                                        policy={**DEMO_POLICY, **(policy or {})})
    reviewers = []
    for i, acc in enumerate(reviewer_accuracies):
        user = f"{name}-reviewer-{i + 1}"
        loop.create_user(user, "reviewer")
        reviewers.append(SimulatedReviewer(user, acc, np.random.default_rng(rng.integers(2**32))))

    total = len(records)
    proj.submit(records[:first_batch])
    drain_queue(loop, name, reviewers, truth, len(labels), labels)
    proj.train()
    labels_at_train = proj.metrics()["human_labels"]
    done = first_batch
    if on_progress:
        on_progress(done, total)

    streamed: list[dict[str, Any]] = []
    for start in range(first_batch, total, batch_size):
        batch = records[start:start + batch_size]
        streamed.extend(proj.submit(batch))
        drain_queue(loop, name, reviewers, truth, len(labels), labels)
        human = proj.metrics()["human_labels"]
        if human - labels_at_train >= retrain_every:
            proj.train()
            labels_at_train = human
        done += len(batch)
        if on_progress:
            on_progress(done, total)
    return _figures(loop, proj, streamed, truth, labels)


def _figures(loop: Loop, proj: Project, streamed: list[dict[str, Any]],
             truth: dict[str, int], labels: list[str]) -> dict[str, Any]:
    export = [_parse(line) for line in proj.export("jsonl").splitlines()]
    by_ext = {row["external_id"]: row for row in export}
    rows = [by_ext[d["external_id"]] for d in streamed]
    true: npt.NDArray[np.int64] = np.array([truth[r["external_id"]] for r in rows])
    predicted = np.array([labels.index(r["prediction"]["label"]) for r in rows])
    final = np.array([labels.index(r["decision"]["label"]) for r in rows])
    auto = np.array([r["route"] in ("auto", "audited") for r in rows])
    m = proj.metrics()
    est = m["auto_error"]
    return {
        "project": proj.name,
        "items": m["items"],
        "automation_rate": m["automation_rate"],
        "model_accuracy": float((predicted == true).mean()),
        "system_accuracy": float((final == true).mean()),
        "estimated_auto_error": est["estimate"],
        "estimated_auto_error_ci": est["ci"],
        "estimated_auto_error_n": est["n"],
        "true_auto_error": float((predicted[auto] != true[auto]).mean()) if auto.any() else None,
        "reviews": m["reviews"],
        "model_versions": m["model_versions"],
        "gate_mode": m["gate"]["mode"],
        "target_error": m["gate"].get("target_error"),
        "certified": m["gate"]["certified"],
        "certified_threshold": m["gate"]["threshold"] if m["gate"]["mode"] == "promise" else None,
        "labels_needed": m["gate"].get("labels_needed"),
        "learning_curve": [
            {"version": c["version"], "status": c["status"], "human_labels": c["human_labels"],
             "holdout_accuracy": (c.get("holdout_accuracy") or {}).get("estimate")}
            for c in m.get("learning_curve", [])
        ],
    }


def _parse(line: str) -> dict[str, Any]:
    import json

    row: dict[str, Any] = json.loads(line)
    return row
