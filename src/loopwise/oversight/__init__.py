"""Oversight statistics (pure numpy / scipy): intervals now; group metrics and drift later."""

from loopwise.oversight.intervals import Interval, wilson

__all__ = ["Interval", "wilson"]
