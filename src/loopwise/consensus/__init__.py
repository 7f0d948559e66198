"""Consensus of several reviewers (pure numpy / scipy).

* :func:`aggregate` — labels, posteriors and reviewer confusion matrices from answers
  (majority, weighted majority, Dawid–Skene, one-coin Dawid–Skene, MACE).
* :mod:`~loopwise.consensus.skill` — confusion counts from gold items or consensus,
  accuracy with an interval, a bias-corrected quality score.
* :mod:`~loopwise.consensus.agreement` — percent agreement, Cohen's, Fleiss' kappa,
  Krippendorff's alpha, with bootstrap intervals; ``nan`` with a reason when undefined.
* :mod:`~loopwise.consensus.overlap` — settled, another reviewer, or an expert.
* :mod:`~loopwise.consensus.simulate` — simulated crowds for tests and benchmarks.

Answers come in long form: int arrays ``items``, ``reviewers``, ``labels`` of one row per
answer, ids from 0.

>>> from loopwise.consensus import aggregate
>>> res = aggregate([0, 0, 1, 1], [0, 1, 0, 1], [1, 1, 0, 0], method="majority",
...                 n_classes=2, random_state=0)
>>> res.labels.tolist(), res.posteriors.tolist()
([1, 0], [[0.0, 1.0], [1.0, 0.0]])
"""

from loopwise.consensus.aggregate import METHODS, aggregate
from loopwise.consensus.agreement import (
    Agreement,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    percent_agreement,
)
from loopwise.consensus.answers import Answers, as_answers, long_form
from loopwise.consensus.overlap import Verdict, Verdicts, decide, decide_item, item_posteriors
from loopwise.consensus.result import Aggregation
from loopwise.consensus.skill import (
    ReviewerSkills,
    confusion_counts,
    quality_score,
    reviewer_skills,
)

__all__ = [
    "METHODS",
    "Aggregation",
    "Agreement",
    "Answers",
    "ReviewerSkills",
    "Verdict",
    "Verdicts",
    "aggregate",
    "as_answers",
    "cohen_kappa",
    "confusion_counts",
    "decide",
    "decide_item",
    "fleiss_kappa",
    "item_posteriors",
    "krippendorff_alpha",
    "long_form",
    "percent_agreement",
    "quality_score",
    "reviewer_skills",
]
