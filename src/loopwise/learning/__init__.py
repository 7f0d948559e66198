"""Learning: the project's built-in models (fit, class probabilities aligned with the
project's labels, safe persistence) and active-learning queries (:func:`select`: which
pool items people should label next)."""

from __future__ import annotations

from loopwise.learning.models import (
    TrainedModel,
    default_estimator,
    featurize,
    fit_model,
    tabular_features,
)
from loopwise.learning.select import DEFAULT_STRATEGY, STRATEGIES, select
from loopwise.learning.uncertainty import uncertainty

__all__ = [
    "DEFAULT_STRATEGY",
    "STRATEGIES",
    "TrainedModel",
    "default_estimator",
    "featurize",
    "fit_model",
    "select",
    "tabular_features",
    "uncertainty",
]
