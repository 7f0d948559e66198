"""Learning: the project's built-in models (fit, class probabilities aligned with the
project's labels, safe persistence)."""

from __future__ import annotations

from loopwise.learning.models import (
    TrainedModel,
    default_estimator,
    featurize,
    fit_model,
    tabular_features,
)

__all__ = [
    "TrainedModel",
    "default_estimator",
    "featurize",
    "fit_model",
    "tabular_features",
]
