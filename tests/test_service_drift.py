"""Drift from the store: no drift on the same distribution, a major one on a shift."""

from __future__ import annotations

from typing import Any

from tests.test_service_fairness import fill


def test_a_shift_in_inputs_is_major_and_no_shift_is_not(loop: Any) -> None:
    fill(loop, n=1200, seed=1)
    rep = loop.service.drift(loop.actor, "t")
    assert rep["reference"]["inputs"].startswith("first items")
    w = rep["windows"][0]
    assert w["features"]["x"]["status"] == "ok" and w["features"]["c"]["status"] == "ok"
    fill(loop, n=600, seed=2, shift=1.5)
    w = loop.service.drift(loop.actor, "t")["windows"][0]
    assert w["features"]["x"]["status"] == "major" and "x" in w["drifted"]
    assert w["features"]["c"]["status"] == "ok"
    summary = loop.project("t").metrics()["drift"]["windows"][0]
    assert summary["psi_max"] > 0.25
