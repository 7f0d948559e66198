"""Routing: which predictions stand and which go to people (pure numpy / scipy).

* :class:`Gate` — threshold mode (version 1) or a certified promise
  (``Gate(target_error=eps, delta=delta).calibrate(proba, y)``), rules, novelty, audits,
  the stop switch; :meth:`Gate.route` decides a whole batch in one vectorised call.
* :mod:`~loopwise.routing.certify` — Learn-then-Test certification of thresholds.
* :mod:`~loopwise.routing.temperature` — the score and its temperature.
* :mod:`~loopwise.routing.monitor` — the error of automatic decisions from audits.
* :mod:`~loopwise.routing.novelty` — kNN novelty with a conformal threshold.
* :mod:`~loopwise.routing.rules` — declarative rules over a batch.

>>> import numpy as np
>>> from loopwise.routing import Gate
>>> batch = Gate(threshold=0.9, audit_rate=0.0).route(np.array([[0.95, 0.05], [0.6, 0.4]]))
>>> batch.route.tolist(), batch.reason.tolist()
(['auto', 'review'], ['confident', 'uncertain'])
"""

from loopwise.routing.certify import (
    Certificate,
    binomial_pvalues,
    certify,
    certify_per_class,
    certify_sampled,
    min_accepted,
    threshold_grid,
)
from loopwise.routing.gate import UNCERTIFIED, Gate, RoutedBatch
from loopwise.routing.monitor import AuditEstimate, audit_error, clopper_pearson, promise_broken
from loopwise.routing.novelty import NoveltyDetector
from loopwise.routing.proba import proba_problems
from loopwise.routing.rules import Rule, compile_rules, match_rules
from loopwise.routing.temperature import apply_temperature, fit_temperature, max_confidence

__all__ = [
    "UNCERTIFIED",
    "AuditEstimate",
    "Certificate",
    "Gate",
    "NoveltyDetector",
    "RoutedBatch",
    "Rule",
    "apply_temperature",
    "audit_error",
    "binomial_pvalues",
    "certify",
    "certify_per_class",
    "certify_sampled",
    "clopper_pearson",
    "compile_rules",
    "fit_temperature",
    "match_rules",
    "max_confidence",
    "min_accepted",
    "proba_problems",
    "promise_broken",
    "threshold_grid",
]
