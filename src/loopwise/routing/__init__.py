"""Routing: which predictions stand and which go to people (pure numpy).

>>> import numpy as np
>>> from loopwise.routing import Gate
>>> batch = Gate(threshold=0.9, audit_rate=0.0).route(np.array([[0.95, 0.05], [0.6, 0.4]]))
>>> batch.route.tolist(), batch.reason.tolist()
(['auto', 'review'], ['confident', 'uncertain'])
"""

from loopwise.routing.gate import Gate, RoutedBatch
from loopwise.routing.proba import proba_problems

__all__ = ["Gate", "RoutedBatch", "proba_problems"]
