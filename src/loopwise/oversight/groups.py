"""Per-group metrics of predictions, reviewers' answers, final decisions and routing.

:func:`group_metrics` takes one row per item (or per answer): the true label (may be
missing), the label under study (``y_pred``: the model's prediction, a reviewer's answer or
the final decision) and one or more sensitive attributes; optionally whether the row was
routed to review, the model's own label (for overrides), audit flags with their inclusion
probabilities (for the error of automatic decisions), and sample weights.

Rates, for the binary question "is the label ``positive``?" (each with a Wilson interval;
weighted rates at the effective sample size of their linearised variance, see
:func:`effective_n`):

=============================  ===========================================================
``selection_rate``             predicted positive / all rows
``base_rate``                  true positive / labelled rows
``tpr``, ``fnr``               predicted positive, negative / true positive rows
``fpr``, ``tnr``               predicted positive, negative / true negative rows
``ppv``                        true positive / predicted positive labelled rows
``accuracy``                   ``y_true == y_pred`` / labelled rows (every class)
``balanced_accuracy``          ``(tpr + tnr) / 2``; interval by MOVER from the two Wilson
                               intervals
``review_rate``                ``reviewed`` / all rows
``override_rate``              ``y_pred != model_pred`` / reviewed rows
``override_to_positive_rate``  model said negative, person positive / reviewed rows the
                               model called negative (``override_to_negative_rate``: the
                               mirror)
``auto_error``                 ``y_true != y_pred`` over audited labelled rows, weighted by
                               ``1 / inclusion`` (Hájek estimator of the error of automatic
                               decisions)
=============================  ===========================================================

A rate whose denominator is 0 is undefined: ``nan`` with a reason, never 0. Rows with a
missing true label (``None``, ``nan``) count in ``n`` and in the label-free rates only.
Missing attribute values (``None``, ``nan``, ``""``) form the group ``"unknown"``, which is
reported. A group with fewer than ``min_n`` rows, or (when labels are given) fewer than
``min_class`` true positives or true negatives, is marked ``insufficient``.

Every attribute is broken down alone and in every intersection with the others
(``"sex & race"``, groups ``"F & B"``); ``report.by_group`` and ``report.disparities`` are
those of the finest one (the single attribute when there is one), as in fairlearn.

>>> y_true = [1, 1, 0, 0, 1, 0, 1, 0]
>>> y_pred = [1, 0, 0, 0, 1, 1, 1, 1]
>>> rep = group_metrics(y_true, y_pred, ["a", "a", "a", "a", "b", "b", "b", "b"])
>>> rep.by_group["a"].n, rep.by_group["a"].selection_rate.estimate, rep.by_group["b"].tpr.estimate
(4, 0.25, 1.0)
>>> round(rep.disparities["demographic_parity_difference"].value.estimate, 2)
0.75
>>> rep.by_group["a"].insufficient, rep.by_group["a"].notes[0]
(True, 'n = 4 < 30')
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from loopwise.oversight.disparities import Comparison, Disparity, compare, four_fifths, summarise
from loopwise.oversight.intervals import Interval, effective_n, undefined, wilson, z_value

UNKNOWN = "unknown"
MIN_N = 30
MIN_CLASS = 10

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


@dataclass(frozen=True)
class GroupStats:
    """One group: its size, label and prediction counts, rates and sufficiency.

    Rates are in ``rates`` and also readable as attributes (``stats.tpr``).
    ``known`` is False for a group whose attribute value is missing (``"unknown"``).
    """

    group: str
    n: int
    label_counts: dict[str, int]
    prediction_counts: dict[str, int]
    rates: dict[str, Interval]
    insufficient: bool
    notes: tuple[str, ...] = ()
    known: bool = True

    def __getattr__(self, name: str) -> Interval:
        rates = self.__dict__.get("rates")
        if rates is None or name not in rates:
            raise AttributeError(f"{type(self).__name__!s} has no rate {name!r}")
        result: Interval = rates[name]
        return result

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``nan`` → ``None``)."""
        return {
            "group": self.group,
            "n": self.n,
            "known": self.known,
            "insufficient": self.insufficient,
            "notes": list(self.notes),
            "label_counts": dict(self.label_counts),
            "prediction_counts": dict(self.prediction_counts),
            "rates": {k: v.to_dict() for k, v in self.rates.items()},
        }


@dataclass(frozen=True)
class Breakdown:
    """The groups of one attribute (or intersection), the disparities between them, each
    against ``reference``, and the four-fifths verdict of each group's selection rate."""

    attribute: str
    reference: str
    by_group: dict[str, GroupStats]
    disparities: dict[str, Disparity]
    versus_reference: dict[str, dict[str, Comparison]]
    four_fifths: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``nan`` → ``None``)."""
        return {
            "attribute": self.attribute,
            "reference": self.reference,
            "groups": {g: s.to_dict() for g, s in self.by_group.items()},
            "disparities": {k: d.to_dict() for k, d in self.disparities.items()},
            "versus_reference": {
                m: {g: c.to_dict() for g, c in by.items()}
                for m, by in self.versus_reference.items()
            },
            "four_fifths": dict(self.four_fifths),
        }


@dataclass(frozen=True)
class GroupReport:
    """Result of :func:`group_metrics`: ``overall``, and a :class:`Breakdown` per attribute
    and intersection in ``attributes``; ``finest`` names the breakdown that ``by_group``
    and ``disparities`` show."""

    overall: GroupStats
    attributes: dict[str, Breakdown]
    finest: str
    positive: str
    level: float
    min_n: int
    min_class: int

    @property
    def by_group(self) -> dict[str, GroupStats]:
        """Per group of the finest breakdown."""
        return self.attributes[self.finest].by_group

    @property
    def disparities(self) -> dict[str, Disparity]:
        """Disparities of the finest breakdown."""
        return self.attributes[self.finest].disparities

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``nan`` → ``None``); ``json.dumps(..., allow_nan=False)`` works."""
        return {
            "positive": self.positive,
            "level": self.level,
            "min_n": self.min_n,
            "min_class": self.min_class,
            "finest": self.finest,
            "overall": self.overall.to_dict(),
            "attributes": {a: b.to_dict() for a, b in self.attributes.items()},
        }


# ----------------------------------------------------------------------------- inputs
def missing_mask(values: npt.ArrayLike) -> BoolArray:
    """True where a value is missing: ``None``, ``nan``, ``NaT``, pandas' ``NA``, or a
    blank string.

    >>> missing_mask(np.array(["a", "", None, float("nan"), 0], dtype=object)).tolist()
    [False, True, True, True, False]
    """
    a = np.asarray(values)
    if a.dtype.kind == "f":
        return np.asarray(np.isnan(a), dtype=bool)
    if a.dtype.kind in "US":
        return np.asarray(np.char.strip(a.astype(str)) == "", dtype=bool)
    if a.dtype.kind != "O":
        return np.zeros(a.shape, dtype=bool)
    return np.fromiter((_is_missing(v) for v in a.ravel()), dtype=bool, count=a.size).reshape(
        a.shape
    )


def _is_missing(v: object) -> bool:
    if v is None:
        return True
    if isinstance(v, str):
        return v.strip() == ""
    try:
        return bool(v != v)  # nan, NaT
    except TypeError:  # pandas.NA: its comparisons are NA, whose truth is ambiguous
        return True


def _as_text(
    values: npt.NDArray[Any], missing: BoolArray, *, labels: bool = False
) -> npt.NDArray[np.str_]:
    """Values as strings, integral floats without ``.0`` (and, for ``labels``, booleans
    as ``"0"`` / ``"1"``, so that ``True`` matches ``positive=1``); missing → ``"unknown"``.
    """
    out = np.full(values.shape, UNKNOWN, dtype=object)
    ok = ~missing
    v = values[ok]
    if v.dtype.kind == "O":
        out[ok] = [_text(x, labels) for x in v.tolist()]
    else:
        if (v.dtype.kind == "b" and labels) or (v.dtype.kind == "f" and np.all(v == np.round(v))):
            v = v.astype(np.int64)
        out[ok] = v.astype(str)
    return out.astype(str)


def _text(x: object, labels: bool) -> str:
    if isinstance(x, bool | np.bool_) and labels:
        return str(int(x))
    if isinstance(x, float | np.floating) and float(x).is_integer():
        return str(int(x))
    return str(x)


def sensitive_columns(sensitive: Any, n: int) -> dict[str, npt.NDArray[np.str_]]:
    """Attribute name → values as strings (missing → ``"unknown"``).

    ``sensitive``: a 1-D array (named by its ``name`` if it has one, else ``"group"``), a
    mapping name → 1-D array, a 2-D array (columns ``attr0``, ``attr1``, ...), or a
    DataFrame-like object with ``columns``.
    """
    if isinstance(sensitive, Mapping):
        raw = {str(k): np.asarray(v) for k, v in sensitive.items()}
    elif hasattr(sensitive, "columns"):
        raw = {str(c): np.asarray(sensitive[c]) for c in sensitive.columns}
    else:
        a = np.asarray(sensitive)
        if a.ndim == 1:
            name = getattr(sensitive, "name", None)
            raw = {str(name) if name is not None else "group": a}
        elif a.ndim == 2:
            raw = {f"attr{j}": a[:, j] for j in range(a.shape[1])}
        else:
            raise ValueError(f"sensitive must be 1-D or 2-D, got shape {a.shape}")
    if not raw:
        raise ValueError("sensitive has no attribute")
    out = {}
    for name, col in raw.items():
        if col.shape != (n,):
            raise ValueError(f"sensitive attribute {name!r} has shape {col.shape}, expected ({n},)")
        out[name] = _as_text(col, missing_mask(col))
    return out


# ------------------------------------------------------------------------------ rates
@dataclass(frozen=True)
class _Spec:
    """A rate: weighted share of ``num`` rows among ``den`` rows; ``empty`` says why it
    is undefined when there is no ``den`` row."""

    num: BoolArray
    den: BoolArray
    weight: FloatArray
    empty: str


def _specs(
    *,
    truth: BoolArray | None,
    labelled: BoolArray,
    correct: BoolArray,
    pred_pos: BoolArray,
    weight: FloatArray,
    reviewed: BoolArray | None,
    model_pos: BoolArray | None,
    changed: BoolArray | None,
    audited: BoolArray | None,
    inclusion: FloatArray | None,
) -> dict[str, _Spec]:
    every = np.ones(pred_pos.shape, dtype=bool)
    s = {"selection_rate": _Spec(pred_pos, every, weight, "no rows")}
    if truth is not None:
        pos = truth
        neg = labelled & ~pos
        s["base_rate"] = _Spec(pos, labelled, weight, "no labelled rows")
        s["tpr"] = _Spec(pos & pred_pos, pos, weight, "no true positives (P = 0)")
        s["fnr"] = _Spec(pos & ~pred_pos, pos, weight, "no true positives (P = 0)")
        s["fpr"] = _Spec(neg & pred_pos, neg, weight, "no true negatives (N = 0)")
        s["tnr"] = _Spec(neg & ~pred_pos, neg, weight, "no true negatives (N = 0)")
        s["ppv"] = _Spec(
            pos & pred_pos, labelled & pred_pos, weight, "no labelled predicted positives"
        )
        s["accuracy"] = _Spec(labelled & correct, labelled, weight, "no labelled rows")
    if reviewed is not None:
        s["review_rate"] = _Spec(reviewed, every, weight, "no rows")
    if changed is not None and model_pos is not None:
        rev = every if reviewed is None else reviewed
        s["override_rate"] = _Spec(rev & changed, rev, weight, "no reviewed rows")
        s["override_to_positive_rate"] = _Spec(
            rev & ~model_pos & pred_pos,
            rev & ~model_pos,
            weight,
            "no reviewed rows the model called negative",
        )
        s["override_to_negative_rate"] = _Spec(
            rev & model_pos & ~pred_pos,
            rev & model_pos,
            weight,
            "no reviewed rows the model called positive",
        )
    if audited is not None and inclusion is not None:
        den = audited & labelled
        s["auto_error"] = _Spec(den & ~correct, den, weight / inclusion, "no labelled audits")
    return s


def _rates(spec: _Spec, codes: IntArray, n_groups: int, level: float) -> list[Interval]:
    """Wilson interval of each group's (weighted) rate; see :func:`effective_n`."""
    w, num, den = spec.weight, spec.num, spec.den

    def total(mask: BoolArray, weights: FloatArray | None) -> FloatArray:
        counts = np.bincount(codes[mask], weights=weights, minlength=n_groups)
        out: FloatArray = counts.astype(np.float64)
        return out

    rows, k1, d1 = total(den, None), total(num, w[num]), total(den, w[den])
    unit = bool(np.all(w[den] == 1))
    if not unit:
        k2, d2 = total(num, w[num] ** 2), total(den, w[den] ** 2)
    out = []
    for g in range(n_groups):
        if d1[g] <= 0:
            out.append(undefined(0.0, spec.empty, level))
        elif unit:
            out.append(wilson(float(k1[g]), float(d1[g]), level))
        else:
            n_eff = effective_n(float(k1[g]), float(d1[g]), float(k2[g]), float(d2[g]), rows[g])
            out.append(wilson(float(k1[g] / d1[g]) * n_eff, n_eff, level))
    return out


def _balanced(tpr: Interval, tnr: Interval, n: float) -> Interval:
    """``(tpr + tnr) / 2`` with the MOVER interval of a sum of independent rates."""
    if math.isnan(tpr.estimate) or math.isnan(tnr.estimate):
        return undefined(n, "needs both true positives and true negatives", tpr.level)
    s = tpr.estimate + tnr.estimate
    low = s - math.hypot(tpr.estimate - tpr.low, tnr.estimate - tnr.low)
    high = s + math.hypot(tpr.high - tpr.estimate, tnr.high - tnr.estimate)
    return Interval(s / 2, low / 2, high / 2, n, tpr.level)


def _counts(
    codes: IntArray, n_groups: int, values: npt.NDArray[np.str_], mask: BoolArray
) -> list[dict[str, int]]:
    labels, inv = np.unique(values[mask], return_inverse=True)
    k = len(labels)
    c = np.bincount(codes[mask] * k + inv, minlength=n_groups * k).reshape(n_groups, k)
    return [{str(labels[j]): int(c[g, j]) for j in range(k) if c[g, j]} for g in range(n_groups)]


# --------------------------------------------------------------------------- the report
def _as_1d(name: str, values: npt.ArrayLike | None, n: int, dtype: Any = None) -> Any:
    if values is None:
        return None
    a = np.asarray(values, dtype=dtype)
    if a.ndim == 0 and dtype is np.float64:
        a = np.full(n, float(a))
    if a.shape != (n,):
        raise ValueError(f"{name} has shape {a.shape}, expected ({n},)")
    return a


def group_metrics(
    y_true: npt.ArrayLike | None,
    y_pred: npt.ArrayLike,
    sensitive: Any,
    *,
    positive: Any = 1,
    reviewed: npt.ArrayLike | None = None,
    model_pred: npt.ArrayLike | None = None,
    audited: npt.ArrayLike | None = None,
    inclusion: npt.ArrayLike | float | None = None,
    sample_weight: npt.ArrayLike | None = None,
    reference: str | Mapping[str, str] | None = None,
    level: float = 0.95,
    min_n: int = MIN_N,
    min_class: int = MIN_CLASS,
) -> GroupReport:
    """Per-group rates with Wilson intervals, and disparities between groups.

    Parameters
    ----------
    y_true : (n,) true labels, missing allowed (``None`` / ``nan``); or ``None`` when
        there are none (label-based rates are then left out).
    y_pred : (n,) the labels under study (model, reviewer or final decision).
    sensitive : (n,) array, mapping name → (n,) array, (n, a) array, or DataFrame-like.
    positive : the positive label; rates are for "label == positive" against the rest.
    reviewed : (n,) bool, routed to a person: gives ``review_rate``, and restricts the
        override rates to these rows.
    model_pred : (n,) the model's labels: with ``y_pred`` a person's label, gives the
        override rates (a person changed the model's label) and their direction.
    audited : (n,) bool, an automatic decision also sampled for review; with
        ``inclusion`` ((n,) or scalar, its probability of being sampled) gives
        ``auto_error``.
    sample_weight : (n,) non-negative weights (e.g. inverse inclusion probabilities of
        human labels); every rate becomes weighted.
    reference : the reference group of the finest breakdown (str), or attribute →
        group; default the largest known group of each breakdown.
    level : two-sided confidence level.
    min_n, min_class : sufficiency thresholds (rows; true positives and negatives).

    Returns
    -------
    GroupReport
    """
    pred = np.asarray(y_pred)
    if pred.ndim != 1:
        raise ValueError(f"y_pred must be 1-D, got shape {pred.shape}")
    n = int(pred.shape[0])
    z_value(level)  # validates level
    columns = sensitive_columns(sensitive, n)
    pos_text = str(_as_text(np.array([positive], dtype=object), np.zeros(1, bool), labels=True)[0])

    pred_missing = missing_mask(pred)
    if pred_missing.any():
        raise ValueError(f"y_pred has {int(pred_missing.sum())} missing values")
    pred_text = _as_text(pred, pred_missing, labels=True)
    pred_pos = pred_text == pos_text

    truth: BoolArray | None = None
    labelled = np.zeros(n, dtype=bool)
    correct = np.zeros(n, dtype=bool)
    true_text = np.full(n, UNKNOWN, dtype=str)
    if y_true is not None:
        t = _as_1d("y_true", y_true, n)
        labelled = ~missing_mask(t)
        true_text = _as_text(t, ~labelled, labels=True)
        truth = labelled & (true_text == pos_text)
        correct = labelled & (true_text == pred_text)
    if not pred_pos.any() and (truth is None or not truth.any()):
        raise ValueError(f"positive label {positive!r} occurs in neither y_true nor y_pred")

    weight = np.ones(n)
    if sample_weight is not None:
        weight = _as_1d("sample_weight", sample_weight, n, np.float64)
        if not np.all(np.isfinite(weight)) or np.any(weight < 0):
            raise ValueError("sample_weight must be finite and >= 0")
    rev = None if reviewed is None else _as_1d("reviewed", reviewed, n, bool)
    model_pos = changed = None
    if model_pred is not None:
        m = _as_1d("model_pred", model_pred, n)
        m_text = _as_text(m, missing_mask(m), labels=True)
        model_pos, changed = m_text == pos_text, m_text != pred_text
    aud = pi = None
    if (audited is None) != (inclusion is None):
        raise ValueError("audited and inclusion go together")
    if audited is not None:
        aud = _as_1d("audited", audited, n, bool)
        pi = _as_1d("inclusion", inclusion, n, np.float64)
        if np.any(~(pi[aud] > 0)) or np.any(pi[aud] > 1):
            raise ValueError("inclusion probabilities of audited rows must be in (0, 1]")
        pi = np.where(aud, pi, 1.0)
    specs = _specs(
        truth=truth,
        labelled=labelled,
        correct=correct,
        pred_pos=pred_pos,
        weight=weight,
        reviewed=rev,
        model_pos=model_pos,
        changed=changed,
        audited=aud,
        inclusion=pi,
    )

    def stats(codes: IntArray, names: list[str], known: list[bool]) -> list[GroupStats]:
        g = len(names)
        rates = {name: _rates(spec, codes, g, level) for name, spec in specs.items()}
        sizes = np.bincount(codes, minlength=g)
        lab = _counts(codes, g, true_text, labelled)
        prd = _counts(codes, g, pred_text, np.ones(n, dtype=bool))
        out = []
        for i in range(g):
            r = {name: rates[name][i] for name in specs}
            if truth is not None:
                r["balanced_accuracy"] = _balanced(r["tpr"], r["tnr"], float(sum(lab[i].values())))
            notes = []
            if sizes[i] < min_n:
                notes.append(f"n = {sizes[i]} < {min_n}")
            if truth is not None:
                n_pos = lab[i].get(pos_text, 0)
                n_neg = sum(lab[i].values()) - n_pos
                if n_pos < min_class:
                    notes.append(f"{n_pos} positives < {min_class}")
                if n_neg < min_class:
                    notes.append(f"{n_neg} negatives < {min_class}")
            out.append(
                GroupStats(
                    names[i], int(sizes[i]), lab[i], prd[i], r, bool(notes), tuple(notes), known[i]
                )
            )
        return out

    overall = stats(np.zeros(n, dtype=np.intp), ["all"], [True])[0]
    names = list(columns)
    finest = " & ".join(names)
    refs = {finest: reference} if isinstance(reference, str) else dict(reference or {})
    attributes: dict[str, Breakdown] = {}
    for size in range(1, len(names) + 1):
        for combo in itertools.combinations(names, size):
            attr = " & ".join(combo)
            codes, labels = _intersect([columns[c] for c in combo])
            known = [UNKNOWN not in parts for parts in labels]
            groups = stats(codes, [" & ".join(p) for p in labels], known)
            attributes[attr] = _breakdown(attr, groups, refs.pop(attr, None), level)
    if refs:
        raise ValueError(
            f"reference names unknown attributes {sorted(refs)}; attributes: {sorted(attributes)}"
        )
    return GroupReport(overall, attributes, finest, pos_text, level, min_n, min_class)


def _intersect(cols: list[npt.NDArray[np.str_]]) -> tuple[IntArray, list[tuple[str, ...]]]:
    """Group codes 0..g-1 for the combinations of ``cols`` that occur, and their values."""
    uniques, codes = [], []
    for c in cols:
        u, inv = np.unique(c, return_inverse=True)
        uniques.append(u)
        codes.append(inv)
    flat = np.ravel_multi_index(codes, [len(u) for u in uniques]) if len(cols) > 1 else codes[0]
    present, inv = np.unique(flat, return_inverse=True)
    idx = np.unravel_index(present, [len(u) for u in uniques])
    labels = [
        tuple(str(uniques[j][idx[j][i]]) for j in range(len(cols))) for i in range(len(present))
    ]
    return inv.astype(np.intp), labels


def _breakdown(
    attr: str, groups: list[GroupStats], reference: str | None, level: float
) -> Breakdown:
    by_group = {s.group: s for s in groups}
    known = [s for s in groups if s.known] or groups
    if reference is None:
        reference = max(known, key=lambda s: s.n).group
    elif reference not in by_group:
        raise ValueError(
            f"reference group {reference!r} not among the groups of {attr!r}: {sorted(by_group)}"
        )
    ref = by_group[reference]
    metrics = list(ref.rates)
    versus = {m: {s.group: compare(m, s.rates[m], ref.rates[m]) for s in groups} for m in metrics}
    rates = {m: {s.group: s.rates[m] for s in known} for m in metrics}
    insufficient = {s.group: s.insufficient for s in groups}
    return Breakdown(
        attribute=attr,
        reference=reference,
        by_group=by_group,
        disparities=summarise(rates, insufficient, level),
        versus_reference=versus,
        four_fifths={g: four_fifths(c) for g, c in versus["selection_rate"].items()},
    )
