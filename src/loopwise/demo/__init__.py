"""Demo data and simulated reviewers, for ``loopwise demo`` and the benchmarks."""

from loopwise.demo.data import breast_cancer_records
from loopwise.demo.simulate import SimulatedReviewer, simulate

__all__ = ["SimulatedReviewer", "breast_cancer_records", "simulate"]
