"""Intervals: correct on known values, undefined (nan) on no data, and they cover."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loopwise.oversight import wilson


def test_wilson_known_value() -> None:
    """Agresti & Coull's worked value: 0 successes in 10 trials → [0, 0.2775]."""
    r = wilson(0, 10)
    assert r.estimate == 0 and r.low == 0
    assert r.high == pytest.approx(0.2775, abs=1e-4)


def test_no_data_is_undefined_not_zero() -> None:
    r = wilson(0, 0)
    assert math.isnan(r.estimate) and math.isnan(r.low) and math.isnan(r.high)
    assert r.to_dict()["estimate"] is None


def test_wilson_covers_at_the_nominal_level() -> None:
    """Over 4,000 binomial draws per p, coverage of the 95% interval is within
    [0.93, 0.975] (Wilson is known to be close to nominal for n=60; the band allows
    ±3.5 binomial sd of the coverage estimate plus Wilson's known oscillation)."""
    rng = np.random.default_rng(0)
    for p in (0.03, 0.1, 0.3, 0.5):
        ks = rng.binomial(60, p, size=4000)
        covered = np.mean([(lambda r: r.low <= p <= r.high)(wilson(k, 60)) for k in ks])
        assert 0.93 <= covered <= 0.975, (p, covered)

