"""Oversight statistics (pure numpy / scipy): intervals now; group metrics and drift later."""

from loopwise.oversight.intervals import Interval, weighted_rate, wilson

__all__ = ["Interval", "weighted_rate", "wilson"]
