"""Novelty in the loop: the champion carries a detector fitted on its training inputs;
with ``policy.novelty`` on, items unlike anything it learned from go to experts (reason
``novel``), on real data (scikit-learn's breast-cancer cases)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from loopwise import Loop
from loopwise.demo import breast_cancer_records


def trained(loop: Loop, **policy: Any) -> tuple[Any, list[dict[str, Any]]]:
    """A project whose model learned from 400 real cases; the 169 others, unseen."""
    records, y, labels = breast_cancer_records(0)
    loop.create_user("rev", "reviewer")
    project = loop.create_project("cells", labels=labels, input="tabular", policy=policy)
    project.submit(records[:400])
    rev = loop.as_user("rev")
    truth = {r["external_id"]: int(t) for r, t in zip(records, y, strict=True)}
    while tasks := rev.project("cells").claim(100):
        for t in tasks:
            rev.submit_task(t["task_id"], labels[truth[t["item"]["external_id"]]])
    project.train()
    return project, records[400:]


def far_away(records: list[dict[str, Any]], factor: float) -> list[dict[str, Any]]:
    """The same cases measured on a scale the model never saw (a broken instrument)."""
    return [{"external_id": f"far-{r['external_id']}",
             "data": {k: v * factor for k, v in r["data"].items()}} for r in records]


def test_novel_inputs_go_to_experts_and_ordinary_ones_rarely(loop: Loop) -> None:
    project, unseen = trained(loop, novelty=0.01, threshold=0.9)
    ordinary = project.submit(unseen)
    share = np.mean([d["reason"] == "novel" for d in ordinary])
    # conformal level 1%: on 169 exchangeable cases, 10% would be a 1-in-10^6 event
    assert share < 0.1
    odd = project.submit(far_away(unseen[:20], 30.0))
    assert {(d["route"], d["reason"]) for d in odd} == {("expert", "novel")}
    item = project.item(odd[0]["item_id"])
    assert item["prediction"]["novelty"] > 0
    eve = loop.create_user("eve", "expert")
    assert eve["role"] == "expert"
    tasks = loop.as_user("eve").project("cells").claim(50)
    assert {t["item"]["external_id"] for t in tasks} >= {d["external_id"] for d in odd}


def test_without_the_policy_novel_inputs_are_routed_on_confidence(loop: Loop) -> None:
    project, unseen = trained(loop, threshold=0.9)
    odd = project.submit(far_away(unseen[:20], 30.0))
    assert all(d["reason"] != "novel" for d in odd)
    # Turning it on needs no retraining: the champion already has its detector.
    project.update_policy(novelty=0.01)
    again = project.submit(far_away(unseen[20:30], 30.0))
    assert {d["reason"] for d in again} == {"novel"}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_items_with_the_clients_own_probabilities_are_never_novel(loop: Loop) -> None:
    project, unseen = trained(loop, novelty=0.01, threshold=0.9)
    odd = far_away(unseen[:5], 30.0)
    got = project.submit(odd, proba=[[0.99, 0.01]] * 5)
    assert {d["reason"] for d in got} <= {"confident", "audit_sample"}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_metrics_say_whether_novelty_can_flag_anything(loop: Loop) -> None:
    project, unseen = trained(loop, novelty=0.001)  # ~300 scores cannot certify 0.1%
    nov = project.metrics()["novelty"]
    assert nov["detector"] and not nov["active"]
    n_train = project.models()[-1]["n_train"]  # the labels outside the holdout
    assert nov["calibration_n"] == n_train and nov["calibration_needed"] == 999
    project.update_policy(novelty=0.01)
    project.submit(far_away(unseen[:3], 30.0))
    nov = project.metrics()["novelty"]
    assert nov["active"] and nov["flagged"] == 3
