"""The gate: one vectorised decision per prediction — let it stand, or send it to people.

Two modes.

* **Threshold** (version 1, ``Gate(threshold)``): ``auto`` when the score is at or above
  ``threshold``, else ``review`` (reason ``uncertain``). It promises nothing.
* **Promise** (``Gate(target_error=eps, delta=delta)``): :meth:`Gate.calibrate` certifies,
  on human-labeled items, the loosest threshold whose error among accepted items is
  ``<= eps`` with probability ``>= 1 - delta`` (Learn-then-Test, see
  :mod:`loopwise.routing.certify`); optionally one per predicted class. Until a threshold
  is certified — before calibration, or when the labels cannot certify one — every item
  goes to review with reason ``uncertified``: never a silent naive threshold.

The score is the maximum class probability, after temperature scaling when the gate has
a temperature (the same score is certified and routed on). A share ``audit_rate`` of
automatic decisions is also sampled at random for review (known inclusion probability),
so their error can be estimated (:mod:`loopwise.routing.monitor`).

Route precedence, strongest first: ``stopped`` (the stop switch: nothing is automatic;
items that rules or novelty send to experts still go to experts, every reason is
``stopped``) > expert rules (``rule:<name>``) > novelty (``expert``, ``novel``) > review
rules > ``uncertified`` / ``uncertain`` > ``auto`` (``confident``, or ``audit_sample``
when also audited). Among rules of the same route, the first in policy order names the
reason.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> p1 = rng.uniform(0.5, 1.0, 5000)
>>> proba = np.c_[p1, 1 - p1]
>>> y = (rng.random(5000) > p1).astype(int)            # a calibrated model: P(y=0) = p1
>>> gate = Gate(target_error=0.05, delta=0.1, audit_rate=0.0).calibrate(proba, y)
>>> round(gate.threshold_, 2), gate.certificates_[0].certified
(0.94, True)
>>> gate.route(np.array([[0.97, 0.03], [0.6, 0.4]])).route.tolist()
['auto', 'review']
>>> Gate(target_error=0.05).route(np.array([[0.999, 0.001]])).reason.tolist()
['uncertified']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from loopwise.domain import Reason, Route
from loopwise.routing.certify import (
    Certificate,
    certify,
    certify_per_class,
    certify_sampled,
    min_accepted,
)
from loopwise.routing.novelty import NoveltyDetector
from loopwise.routing.proba import proba_problems
from loopwise.routing.rules import Rule, compile_rules, match_rules
from loopwise.routing.temperature import fit_temperature, max_confidence

UNCERTIFIED = Reason.UNCERTIFIED.value
"""Reason code: the gate makes a promise but no threshold is certified."""

_ROUTES = np.array([Route.AUTO.value, Route.REVIEW.value, Route.EXPERT.value])
_AUTO, _REVIEW, _EXPERT = 0, 1, 2
_BASE_REASONS = (
    Reason.CONFIDENT.value,
    Reason.UNCERTAIN.value,
    Reason.AUDIT_SAMPLE.value,
    Reason.STOPPED.value,
    Reason.NOVEL.value,
    UNCERTIFIED,
)
_CONFIDENT, _UNCERTAIN, _AUDIT, _STOPPED, _NOVEL, _UNCERT = range(6)

Seed = int | np.random.Generator | None
Records = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class RoutedBatch:
    """The gate's answer for n predictions.

    Attributes
    ----------
    route : (n,) str array of ``"auto"`` | ``"review"`` | ``"expert"``
    audited : (n,) bool, an ``auto`` item also sampled for review
    reason : (n,) str array of reason codes (``confident``, ``uncertain``,
        ``uncertified``, ``audit_sample``, ``novel``, ``rule:<name>``, ``stopped``)
    label : (n,) int, the predicted class index
    confidence : (n,) float, the score the threshold was applied to (after temperature)
    inclusion_prob : (n,) float, the probability that the item gets a human label
        (1 for human routes, ``audit_rate`` for auto items) — the weight estimates need
    novelty : (n,) float novelty scores when a detector ran, else ``None``
    """

    route: npt.NDArray[np.str_]
    audited: npt.NDArray[np.bool_]
    reason: npt.NDArray[np.str_]
    label: npt.NDArray[np.int64]
    confidence: npt.NDArray[np.float64]
    inclusion_prob: npt.NDArray[np.float64]
    novelty: npt.NDArray[np.float64] | None = None

    def __len__(self) -> int:
        return int(self.route.shape[0])


class Gate:
    """Route predictions: automatic where a threshold allows, people everywhere else.

    Parameters
    ----------
    threshold : threshold mode (no ``target_error``): the score at or above which a
        prediction is accepted. Ignored in promise mode.
    target_error : promise mode: the error allowed among automatic decisions.
    delta : the promise holds with probability ``>= 1 - delta`` over the calibration data.
    audit_rate : share of automatic decisions also sent to review at random.
    stopped : the stop switch; every item goes to people (reason ``stopped``).
    per_class : certify one threshold per predicted class (Šidák split of ``delta``).
    temperature : temperature of the score (``None``: raw maximum probability); set it
        with :meth:`fit_temperature` or ``calibrate(temperature_fraction=...)``.
    novelty : a fitted, calibrated :class:`NoveltyDetector`; novel items go to experts.
    rules : policy rules (``{"name", "if", "route"}``) or compiled :class:`Rule`.
    grid : the strict -> loose threshold grid (default :func:`threshold_grid`).
    delta_sampling : share of ``delta`` spent on unobserved errors when calibrating on
        the loop's own labels (``inclusion_prob``).

    Examples
    --------
    >>> import numpy as np
    >>> gate = Gate(threshold=0.8, audit_rate=1.0)
    >>> b = gate.route(np.array([[0.9, 0.1]]), random_state=0)
    >>> str(b.route[0]), bool(b.audited[0]), str(b.reason[0])
    ('auto', True, 'audit_sample')
    """

    def __init__(
        self,
        threshold: float = 0.9,
        *,
        target_error: float | None = None,
        delta: float = 0.1,
        audit_rate: float = 0.02,
        stopped: bool = False,
        per_class: bool = False,
        temperature: float | None = None,
        novelty: NoveltyDetector | None = None,
        rules: Sequence[Mapping[str, Any] | Rule] = (),
        grid: npt.ArrayLike | None = None,
        delta_sampling: float = 0.5,
    ) -> None:
        self.threshold = threshold
        self.target_error = target_error
        self.delta = delta
        self.audit_rate = audit_rate
        self.stopped = stopped
        self.per_class = per_class
        self.temperature = temperature
        self.novelty = novelty
        self.rules: tuple[Rule, ...] = compile_rules(rules)
        self.grid = grid
        self.delta_sampling = delta_sampling
        self.certificates_: tuple[Certificate, ...] = ()

    # ------------------------------------------------------------------ state
    @property
    def promise(self) -> bool:
        """Whether the gate makes a promise (``target_error`` is set)."""
        return self.target_error is not None

    def _check(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold!r}")
        if not 0.0 <= self.audit_rate <= 1.0:
            raise ValueError(f"audit_rate must be in [0, 1], got {self.audit_rate!r}")
        if self.target_error is not None and not 0.0 < self.target_error < 1.0:
            raise ValueError(f"target_error must be in (0, 1), got {self.target_error!r}")
        if not 0.0 < self.delta < 1.0:
            raise ValueError(f"delta must be in (0, 1), got {self.delta!r}")

    def _thresholds(self, n_classes: int) -> float | npt.NDArray[np.float64]:
        """The threshold in force: a float, or one per class."""
        if not self.promise:
            return float(self.threshold)
        if not self.certificates_:
            return math.inf
        if self.per_class:
            th = np.full(n_classes, math.inf)
            for c in self.certificates_:
                if c.label is not None and c.label < n_classes:
                    th[c.label] = c.threshold
            return th
        return self.certificates_[0].threshold

    @property
    def threshold_(self) -> float | npt.NDArray[np.float64]:
        """The threshold(s) in force: ``threshold`` in threshold mode; the certified one in
        promise mode (``inf`` — nothing automatic — while uncertified); a (k,) array with
        ``per_class``."""
        if self.promise and self.per_class and self.certificates_:
            return self._thresholds(len(self.certificates_))
        return self._thresholds(0)

    @property
    def certified_(self) -> bool:
        """Whether any automatic decision is possible under the promise."""
        return any(c.certified for c in self.certificates_)

    @property
    def labels_needed_(self) -> int:
        """More error-free accepted labels needed to certify (summed over uncertified
        classes with ``per_class``; 0 in threshold mode or once certified)."""
        if not self.promise:
            return 0
        assert self.target_error is not None
        if not self.certificates_:
            return min_accepted(self.target_error, self.delta)
        if self.per_class:
            return sum(c.labels_needed for c in self.certificates_)
        return self.certificates_[0].labels_needed

    def state(self) -> dict[str, Any]:
        """JSON-ready calibration state; rebuild with :meth:`from_state`.

        Holds the mode, the promise, the temperature and the certificates (thresholds,
        n, errors, p-values). Rules, audit rate, stop switch and the novelty detector are
        policy or artifacts the caller stores elsewhere and passes back.
        """
        return {
            "version": 2,
            "threshold": self.threshold,
            "target_error": self.target_error,
            "delta": self.delta,
            "per_class": self.per_class,
            "temperature": self.temperature,
            "delta_sampling": self.delta_sampling,
            "certificates": [c.to_dict() for c in self.certificates_],
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        *,
        audit_rate: float = 0.02,
        stopped: bool = False,
        rules: Sequence[Mapping[str, Any] | Rule] = (),
        novelty: NoveltyDetector | None = None,
        grid: npt.ArrayLike | None = None,
    ) -> Gate:
        """A gate with the calibration of :meth:`state` and the given policy parts.

        >>> g = Gate(target_error=0.02)
        >>> Gate.from_state(g.state()).route(np.array([[1.0, 0.0]])).reason.tolist()
        ['uncertified']
        """
        gate = cls(
            float(state.get("threshold", 0.9)),
            target_error=state.get("target_error"),
            delta=float(state.get("delta", 0.1)),
            audit_rate=audit_rate,
            stopped=stopped,
            per_class=bool(state.get("per_class", False)),
            temperature=state.get("temperature"),
            novelty=novelty,
            rules=rules,
            grid=grid,
            delta_sampling=float(state.get("delta_sampling", 0.5)),
        )
        gate.certificates_ = tuple(Certificate.from_dict(dict(c))
                                   for c in state.get("certificates", []))
        return gate

    # ------------------------------------------------------------------ score
    def score(self, proba: npt.ArrayLike) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Predicted class (n,) and routing score (n,) of ``proba`` (n, k)."""
        return max_confidence(proba, self.temperature)

    def fit_temperature(self, proba: npt.ArrayLike, y: npt.ArrayLike) -> Gate:
        """Fit the score's temperature on held-out labels (not the certification labels)."""
        self.temperature = fit_temperature(proba, y)
        return self

    def _filters(
        self, n: int, label: npt.NDArray[np.int64], conf: npt.NDArray[np.float64],
        X: npt.ArrayLike | None, meta: Records | None, data: Records | None,
        labels: Sequence[str] | None,
    ) -> tuple[npt.NDArray[np.bool_] | None, npt.NDArray[np.float64] | None]:
        """Rule matches (r, n) and novelty scores (n,), each None when not configured."""
        nov: npt.NDArray[np.float64] | None = None
        if self.novelty is not None:
            if X is None:
                raise ValueError("this gate has a novelty detector: pass X (n, d) features")
            nov = self.novelty.score(X)
            if nov.shape != (n,):
                raise ValueError(f"X has {nov.shape[0]} rows for {n} predictions")
        if not self.rules:
            return None, nov
        pred: dict[str, npt.ArrayLike] = {"label_index": label, "confidence": conf}
        if labels is not None:
            names = np.asarray(list(labels))
            if label.size and label.max() >= names.size:
                raise ValueError(f"{names.size} class names for {label.max() + 1}+ classes")
            pred["label"] = names[label]
        else:
            pred["label"] = label
        if nov is not None:
            pred["novelty"] = nov
        return match_rules(self.rules, n, meta=meta, data=data, prediction=pred), nov

    # ------------------------------------------------------------ calibration
    def calibrate(
        self,
        proba: npt.ArrayLike,
        y: npt.ArrayLike,
        *,
        inclusion_prob: npt.ArrayLike | None = None,
        selected: npt.ArrayLike | None = None,
        X: npt.ArrayLike | None = None,
        meta: Records | None = None,
        data: Records | None = None,
        labels: Sequence[str] | None = None,
        temperature_fraction: float | None = None,
        random_state: Seed = None,
    ) -> Gate:
        """Certify the threshold(s) on labeled items; sets :attr:`certificates_`.

        Parameters
        ----------
        proba : (n, k) class probabilities of the calibration items.
        y : (n,) int true classes; -1 where there is no label (only with
            ``inclusion_prob``).
        inclusion_prob : (n,) known probabilities that each item got a label, when the
            items are the loop's own stream (every routed item of a window, labeled or
            not); see :func:`certify_sampled` for the validity argument. ``None``: the
            items are an i.i.d. sample, all labeled, independently of their scores.
        selected : (n,) bool, items chosen for a label (pending ones count as errors).
        X, meta, data, labels : features, meta and data records and class names, to apply
            the gate's novelty check and rules: only items that would reach the threshold
            (not novel, no rule) are used, so the promise covers exactly the items that
            can be accepted. Both filters ignore the labels, so the kept items are an
            i.i.d. sample of that population (novelty: an item exactly at the novelty
            threshold is left out too).
        temperature_fraction : if set, this random share of the items fits the
            temperature and the rest certifies (the certified score must not depend on
            the certification labels).
        random_state : drives the temperature split and any thinning.

        Returns
        -------
        self
        """
        self._check()
        if self.target_error is None:
            raise ValueError("calibrate needs a promise: Gate(target_error=..., delta=...)")
        arr = np.asarray(proba, dtype=np.float64)
        yy = np.asarray(y).ravel()
        if arr.ndim != 2 or yy.shape != (arr.shape[0],):
            raise ValueError(f"proba must be (n, k) and y (n,), got {arr.shape}, {yy.shape}")
        problems = proba_problems(arr, arr.shape[1])
        if problems:
            row, msg = problems[0]
            raise ValueError(f"proba row {row}: {msg}")
        n, k = arr.shape
        yy = yy.astype(np.int64)
        if np.any(yy >= k) or np.any(yy < -1):
            raise ValueError(f"y must hold classes 0..{k - 1} (or -1 for no label)")
        if inclusion_prob is None and np.any(yy < 0):
            raise ValueError("unlabeled items (y == -1) need their inclusion_prob")
        rng = np.random.default_rng(random_state)
        use = np.ones(n, dtype=bool)
        if temperature_fraction is not None:
            if not 0.0 < temperature_fraction < 1.0:
                raise ValueError("temperature_fraction must be in (0, 1)")
            tune = np.asarray(rng.random(n) < temperature_fraction, dtype=bool)
            lab = tune & (yy >= 0)
            self.temperature = fit_temperature(arr[lab], yy[lab])
            use = np.logical_not(tune)
        label, conf = self.score(arr)
        matched, nov = self._filters(n, label, conf, X, meta, data, labels)
        if matched is not None:
            use &= ~matched.any(axis=0)
        if nov is not None and self.novelty is not None:
            use &= nov < self.novelty.threshold_
        err = np.where(yy >= 0, (yy != label).astype(np.int64), -1)
        eps, dlt = self.target_error, self.delta
        if self.per_class:
            self.certificates_ = certify_per_class(
                conf[use], label[use], err[use] if inclusion_prob is not None
                else err[use].astype(bool), k, target_error=eps, delta=dlt, grid=self.grid,
                inclusion_prob=None if inclusion_prob is None
                else np.asarray(inclusion_prob, dtype=np.float64).ravel()[use],
                selected=None if selected is None else np.asarray(selected, bool).ravel()[use],
                delta_sampling=self.delta_sampling, random_state=rng,
            )
        elif inclusion_prob is None:
            self.certificates_ = (certify(conf[use], err[use].astype(bool), target_error=eps,
                                          delta=dlt, grid=self.grid),)
        else:
            pi = np.asarray(inclusion_prob, dtype=np.float64).ravel()
            if pi.shape != (n,):
                raise ValueError(f"inclusion_prob must have shape ({n},)")
            sel = None if selected is None else np.asarray(selected, dtype=bool).ravel()[use]
            self.certificates_ = (certify_sampled(
                conf[use], err[use], pi[use], selected=sel, target_error=eps, delta=dlt,
                delta_sampling=self.delta_sampling, grid=self.grid, random_state=rng,
            ),)
        return self

    # ---------------------------------------------------------------- routing
    def route(
        self,
        proba: npt.ArrayLike,
        *,
        X: npt.ArrayLike | None = None,
        meta: Records | None = None,
        data: Records | None = None,
        labels: Sequence[str] | None = None,
        random_state: Seed = None,
        validate: bool = True,
    ) -> RoutedBatch:
        """Route each row of ``proba`` (shape (n, k)) in one vectorised pass.

        Parameters
        ----------
        proba : (n, k) class probabilities.
        X : (n, d) features, required when the gate has a novelty detector.
        meta, data : n records each, for rules (``None``: those fields are missing).
        labels : the k class names, for rules on ``prediction.label``.
        random_state : drives the audit sampling.
        validate : check that every row is a probability vector (skip when the caller
            already did).

        Returns
        -------
        RoutedBatch
        """
        self._check()
        arr = np.asarray(proba, dtype=np.float64)
        if arr.ndim != 2:
            raise ValueError(f"proba must be 2-D (n, k), got shape {arr.shape}")
        if validate:
            problems = proba_problems(arr, arr.shape[1])
            if problems:
                row, msg = problems[0]
                raise ValueError(f"proba row {row}: {msg}")
        n, k = arr.shape
        label, conf = self.score(arr)
        rng = np.random.default_rng(random_state)
        draws = rng.random(n)

        th = self._thresholds(k)
        human: npt.NDArray[np.int16] | np.int16
        if isinstance(th, np.ndarray):
            item_th = th[label]
            auto = conf >= item_th
            human = np.where(np.isinf(item_th), _UNCERT, _UNCERTAIN).astype(np.int16)
        else:
            auto = conf >= th
            human = np.int16(_UNCERT if self.promise and math.isinf(th) else _UNCERTAIN)
        route = np.where(auto, _AUTO, _REVIEW).astype(np.int8)
        reason = np.where(auto, np.int16(_CONFIDENT), human).astype(np.int16)

        table = list(_BASE_REASONS)
        matched, nov = (None, None)
        if self.rules or self.novelty is not None:
            matched, nov = self._filters(n, label, conf, X, meta, data, labels)
        if matched is not None:
            codes = {r.name: len(_BASE_REASONS) + i for i, r in enumerate(self.rules)}
            table += [r.reason for r in self.rules]
            for want in (_REVIEW, None):  # review rules first, expert rules override
                for i in range(len(self.rules) - 1, -1, -1):
                    rule = self.rules[i]
                    is_expert = rule.route == Route.EXPERT.value
                    if (want == _REVIEW) == is_expert:
                        continue
                    hit = matched[i]
                    route[hit] = _EXPERT if is_expert else _REVIEW
                    reason[hit] = codes[rule.name]
                if want == _REVIEW and nov is not None and self.novelty is not None:
                    novel = nov > self.novelty.threshold_
                    route[novel] = _EXPERT
                    reason[novel] = _NOVEL
        elif nov is not None and self.novelty is not None:
            novel = nov > self.novelty.threshold_
            route[novel] = _EXPERT
            reason[novel] = _NOVEL

        if self.stopped:
            route[route == _AUTO] = _REVIEW
            reason[:] = _STOPPED
            audited = np.zeros(n, dtype=bool)
        else:
            is_auto = route == _AUTO
            audited = is_auto & (draws < self.audit_rate)
            reason[audited] = _AUDIT
        inclusion = np.where(route == _AUTO, self.audit_rate, 1.0)
        reasons = np.array(table)
        return RoutedBatch(
            route=_ROUTES.take(route),
            audited=audited,
            reason=reasons.take(reason),
            label=label,
            confidence=conf,
            inclusion_prob=inclusion,
            novelty=nov,
        )
