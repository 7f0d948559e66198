"""The project's built-in models: items' ``data`` to model input, fitting, class
probabilities aligned with the project's labels, and safe persistence with skops.

A project has ``k`` labels; a model may have seen only some of them in training. Its
:meth:`TrainedModel.predict_proba` always answers with ``k`` columns, one per label
index, and gives probability 0 to a label it never saw.

>>> import numpy as np
>>> data = [{"x": 0.0}, {"x": 1.0}, {"x": 9.0}, {"x": 10.0, "note": True}]
>>> model = fit_model("tabular", data, np.array([0, 0, 2, 2]), n_classes=3)
>>> model.features, model.classes
(['note', 'x'], [0, 2])
>>> proba = model.predict_proba([{"x": 0.5}, {"x": None, "note": False}, {"x": 9.5}])
>>> proba.shape, bool(np.allclose(proba.sum(axis=1), 1.0)), proba[:, 1].tolist()
((3, 3), True, [0.0, 0.0, 0.0])
>>> proba.argmax(axis=1).tolist()
[0, 0, 2]
>>> again = TrainedModel.from_bytes(model.to_bytes())
>>> bool(np.array_equal(again.predict_proba(data), model.predict_proba(data)))
True
"""

from __future__ import annotations

import importlib
import math
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import skops.io as sio
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from loopwise.domain import InputKind
from loopwise.errors import InvalidInput

FloatArray = npt.NDArray[np.float64]

BUILTIN_KINDS: tuple[str, ...] = (InputKind.TABULAR.value, InputKind.TEXT.value)
"""Input kinds the built-in models cover."""

HGB_MIN_SAMPLES = 2000
"""From this many training rows on, the default tabular model is gradient boosting."""

_FORMAT = "loopwise.trained_model/1"
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.")
_MAX_LISTED_ERRORS = 100


def _check_kind(kind: str) -> str:
    """``kind`` as a plain ``str`` if the built-in models cover it, else InvalidInput."""
    if isinstance(kind, str) and kind in BUILTIN_KINDS:
        return str(InputKind(kind).value)
    raise InvalidInput(
        f"input kind {kind!r} has no built-in model: built-in models cover tabular and text; "
        "for images (or anything else) send probabilities with the items"
    )


def _raise_all(problems: list[dict[str, Any]]) -> None:
    """Raise one InvalidInput listing ``problems`` (``loc``/``msg`` dicts), if any."""
    if not problems:
        return
    first = problems[0]["msg"]
    more = len(problems) - 1
    message = first if more == 0 else f"{first} (and {more} more problem{'s' * (more > 1)})"
    raise InvalidInput(message, errors=problems[:_MAX_LISTED_ERRORS])


def tabular_features(data: Sequence[Mapping[str, Any]]) -> list[str]:
    """The sorted union of the keys of ``data``'s rows: the feature order fixed at fit.

    Parameters
    ----------
    data : sequence of n mappings
        Items' ``data``.

    Returns
    -------
    list of str
        Every key found in any row, sorted.
    """
    keys: set[str] = set()
    for i, row in enumerate(data):
        if not isinstance(row, Mapping):
            raise InvalidInput(
                f"row {i}: data must be an object of field -> value, got {type(row).__name__}",
                errors=[{"loc": [i, "data"], "msg": "must be an object"}],
            )
        for key in row:
            if not isinstance(key, str):
                raise InvalidInput(
                    f"row {i}: field names must be strings, got {key!r}",
                    errors=[{"loc": [i, "data"], "msg": f"field name {key!r} is not a string"}],
                )
            keys.add(key)
    return sorted(keys)


def _number(value: Any) -> float | None:
    """``value`` as a float (None -> NaN, bool -> 0/1); None if it is not a number."""
    if value is None:
        return math.nan
    if isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, int | float | np.integer | np.floating):
        try:
            number = float(value)
        except OverflowError:
            return None
        return None if math.isinf(number) else number
    return None


_PLAIN_VALUES = frozenset({float, int, bool, type(None)})


def _featurize_tabular(data: Sequence[Mapping[str, Any]], features: list[str]) -> FloatArray:
    if all(isinstance(row, Mapping) for row in data):
        # The common case at once: plain numbers, booleans and None (numpy makes None NaN).
        values = [[row.get(name) for name in features] for row in data]
        if {type(v) for row in values for v in row} <= _PLAIN_VALUES:
            try:
                X = np.array(values, dtype=np.float64).reshape(len(data), len(features))
            except OverflowError:  # an integer beyond float's range
                pass
            else:
                if not np.isinf(X).any():
                    return X
    # Row by row, naming every value that is not a number.
    X = np.full((len(data), len(features)), np.nan, dtype=np.float64)
    problems: list[dict[str, Any]] = []
    for i, row in enumerate(data):
        if not isinstance(row, Mapping):
            msg = f"data must be an object of field -> value, got {type(row).__name__}"
            problems.append({"loc": [i, "data"], "msg": f"row {i}: {msg}"})
            continue
        for j, name in enumerate(features):
            value = row.get(name)
            number = _number(value)
            if number is None:
                shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
                msg = (
                    f"row {i}, field {name!r}: must be a finite number, true/false or null, "
                    f"got {type(value).__name__} {shown}"
                )
                problems.append({"loc": [i, "data", name], "msg": msg})
            else:
                X[i, j] = number
    _raise_all(problems)
    return X


def _featurize_text(data: Sequence[Mapping[str, Any]]) -> list[str]:
    texts: list[str] = []
    problems: list[dict[str, Any]] = []
    for i, row in enumerate(data):
        value = row.get("text") if isinstance(row, Mapping) else None
        if isinstance(value, str):
            texts.append(value)
        elif not isinstance(row, Mapping) or "text" not in row:
            problems.append({"loc": [i, "data", "text"], "msg": f"row {i}, field 'text': missing"})
        else:
            msg = f"row {i}, field 'text': must be a string, got {type(value).__name__}"
            problems.append({"loc": [i, "data", "text"], "msg": msg})
    _raise_all(problems)
    return texts


def featurize(
    kind: str, data: Sequence[Mapping[str, Any]], features: list[str] | None
) -> FloatArray | list[str]:
    """Turn items' ``data`` into model input.

    Parameters
    ----------
    kind : {"tabular", "text"}
        The project's input kind.
    data : sequence of n mappings
        Items' ``data``. Tabular: field -> number, bool or None; keys not in
        ``features`` are ignored. Text: ``{"text": str, ...}``.
    features : list of d str, or None
        Tabular: the column order fixed at fit (None: :func:`tabular_features` of
        ``data``). Text: ignored.

    Returns
    -------
    ndarray of shape (n, d), float64, or list of n str
        Tabular: a missing field or None is NaN, a bool is 0/1. Text: each row's text.

    Raises
    ------
    InvalidInput
        A value of the wrong type (string, list, object, infinity); the message names
        the row index and the field, ``errors`` lists every problem.
    """
    kind = _check_kind(kind)
    if kind == InputKind.TEXT:
        return _featurize_text(data)
    return _featurize_tabular(data, tabular_features(data) if features is None else features)


def default_estimator(kind: str, n_samples: int) -> Any:
    """The built-in, unfitted estimator for ``kind`` and a training set of ``n_samples``.

    Tabular: below 2000 rows, median imputation, scaling and logistic regression;
    from 2000 rows on, histogram gradient boosting (it handles NaN itself). Text:
    TF-IDF of words and word pairs, then logistic regression.

    Raises
    ------
    InvalidInput
        ``kind`` is not tabular or text (images: send probabilities).
    """
    kind = _check_kind(kind)
    if kind == InputKind.TEXT:
        return Pipeline(
            [
                ("tfidf", TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1)),
                ("clf", LogisticRegression(max_iter=2000, C=4.0)),
            ]
        )
    if n_samples < HGB_MIN_SAMPLES:
        return Pipeline(
            [
                ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                ("scale", StandardScaler()),
                ("clf", LogisticRegression(max_iter=2000)),
            ]
        )
    return HistGradientBoostingClassifier()


def _seed(estimator: Any, random_state: int) -> None:
    """Set every ``random_state`` parameter of ``estimator`` (and its steps) in place."""
    get_params = getattr(estimator, "get_params", None)
    if get_params is None:
        return
    keys = [k for k in get_params(deep=True) if k == "random_state" or k.endswith("__random_state")]
    if keys:
        estimator.set_params(**dict.fromkeys(keys, random_state))


def _classes_of(estimator: Any, n_classes: int) -> list[int]:
    """``estimator.classes_`` as label indices; InvalidInput if they are not in 0..k-1."""
    raw = getattr(estimator, "classes_", None)
    if raw is None:
        raise InvalidInput("the fitted estimator has no classes_ attribute")
    values = np.asarray(raw)
    ok = values.ndim == 1 and (np.issubdtype(values.dtype, np.integer) or values.size == 0)
    if not ok or values.size < 2 or values.min() < 0 or values.max() >= n_classes:
        raise InvalidInput(
            f"estimator.classes_ must be label indices in 0..{n_classes - 1}, got {raw!r}"
        )
    return [int(c) for c in values]


def _check_labels(y: Any, n_rows: int, n_classes: int) -> npt.NDArray[np.int64]:
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer):
        raise InvalidInput(f"n_classes must be a whole number, got {n_classes!r}")
    if n_classes < 2:
        raise InvalidInput(f"a project needs at least two labels, got n_classes={n_classes}")
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise InvalidInput(f"y must be one label index per row, got shape {labels.shape}")
    if len(labels) != n_rows:
        raise InvalidInput(f"data has {n_rows} rows but y has {len(labels)} labels")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise InvalidInput(f"y must hold integer label indices, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if bad.size:
        i = int(bad[0])
        raise InvalidInput(
            f"row {i}: label index {int(labels[i])} is outside 0..{n_classes - 1}",
            errors=[
                {"loc": [int(j), "label"], "msg": f"label index {int(labels[j])} out of range"}
                for j in bad[:_MAX_LISTED_ERRORS]
            ],
        )
    present = np.unique(labels)
    if present.size == 0:
        raise InvalidInput("training needs at least two classes, got no labelled rows")
    if present.size == 1:
        raise InvalidInput(f"training needs at least two classes, got only {int(present[0])}")
    return labels


def fit_model(
    kind: str,
    data: Sequence[Mapping[str, Any]],
    y: npt.ArrayLike,
    n_classes: int,
    *,
    estimator: Any | None = None,
    random_state: int | None = 0,
) -> TrainedModel:
    """Fit a model on items' ``data`` and their label indices.

    Parameters
    ----------
    kind : {"tabular", "text"}
        The project's input kind.
    data : sequence of n mappings
        Items' ``data`` (see :func:`featurize`).
    y : array-like of shape (n,), int
        Label indices in ``0..n_classes-1``; at least two distinct ones.
    n_classes : int
        The project's number of labels ``k``.
    estimator : estimator with ``predict_proba``, optional
        Cloned before fitting (the instance passed stays unfitted); None:
        :func:`default_estimator`.
    random_state : int or None, default 0
        Set on every ``random_state`` parameter of the estimator and its steps; None
        leaves them as they are.

    Returns
    -------
    TrainedModel

    Raises
    ------
    InvalidInput
        Bad data or labels, fewer than two classes, an estimator without
        ``predict_proba``.
    """
    kind = _check_kind(kind)
    labels = _check_labels(y, len(data), n_classes)
    features = tabular_features(data) if kind == InputKind.TABULAR else None
    if features is not None and not features:
        raise InvalidInput("tabular training data has no fields")
    X = featurize(kind, data, features)
    if estimator is None:
        model = default_estimator(kind, len(data))
    else:
        model = clone(estimator, safe=False)
    if not hasattr(model, "predict_proba"):
        raise InvalidInput(
            f"estimator {type(model).__name__} has no predict_proba; loopwise needs class "
            "probabilities"
        )
    if random_state is not None:
        _seed(model, random_state)
    model.fit(X, labels)
    return TrainedModel(
        estimator=model,
        kind=kind,
        n_classes=int(n_classes),
        features=features,
        classes=_classes_of(model, int(n_classes)),
    )


def _is_trusted_type(name: str) -> bool:
    """Whether ``name`` (as skops reports it) is a class from scikit-learn, numpy or scipy.

    Functions are not trusted even there (``FunctionTransformer`` could call, say, a
    function that writes files); numpy ufuncs are trusted by skops itself.
    """
    if not name.startswith(_TRUSTED_PREFIXES):
        return False
    parts = name.split(".")
    if any(not p.isidentifier() or p == "conftest" for p in parts):
        return False
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        except Exception:  # a module that fails to import is not trusted
            return False
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return isinstance(obj, type)
    return False


@dataclass
class TrainedModel:
    """A fitted model and what it needs to score items of its project.

    Attributes
    ----------
    estimator : fitted estimator with ``predict_proba``
    kind : {"tabular", "text"}
    n_classes : int
        The project's number of labels ``k``.
    features : list of str or None
        Tabular: the column order fixed at fit. Text: None.
    classes : list of int
        The label indices the estimator saw (``estimator.classes_``), a subset of
        ``0..k-1``.
    """

    estimator: Any
    kind: str
    n_classes: int
    features: list[str] | None
    classes: list[int]

    def predict_proba(self, data: Sequence[Mapping[str, Any]]) -> FloatArray:
        """Class probabilities of items' ``data``.

        Parameters
        ----------
        data : sequence of n mappings

        Returns
        -------
        ndarray of shape (n, k), float64
            Column ``j`` is label index ``j``; rows sum to 1; a label absent from
            training has probability 0.
        """
        out = np.zeros((len(data), self.n_classes), dtype=np.float64)
        if len(data) == 0:
            return out
        X = featurize(self.kind, data, self.features)
        proba = np.asarray(self.estimator.predict_proba(X), dtype=np.float64)
        if proba.shape != (len(data), len(self.classes)):
            raise InvalidInput(
                f"estimator returned probabilities of shape {proba.shape}, expected "
                f"({len(data)}, {len(self.classes)})"
            )
        out[:, self.classes] = np.clip(proba, 0.0, None)
        total = out.sum(axis=1, keepdims=True)
        np.divide(out, total, out=out, where=total > 0)
        return out

    def to_bytes(self) -> bytes:
        """The model as a skops artifact (the estimator and the metadata above)."""
        payload = {
            "format": _FORMAT,
            "estimator": self.estimator,
            "kind": str(self.kind),
            "n_classes": int(self.n_classes),
            "features": None if self.features is None else [str(f) for f in self.features],
            "classes": [int(c) for c in self.classes],
        }
        return bytes(sio.dumps(payload, compression=zipfile.ZIP_DEFLATED))

    @classmethod
    def from_bytes(cls, blob: bytes) -> TrainedModel:
        """Load an artifact written by :meth:`to_bytes`, never unpickling.

        Only types skops trusts by default and classes from scikit-learn, numpy and
        scipy are loaded.

        Raises
        ------
        InvalidInput
            The artifact is unreadable, holds any other type or function (named in
            the message), or its metadata is inconsistent.
        """
        try:
            untrusted = sio.get_untrusted_types(data=blob)
        except Exception as exc:
            raise InvalidInput(f"model artifact is not a readable skops file: {exc}") from exc
        refused = sorted(t for t in untrusted if not _is_trusted_type(t))
        if refused:
            raise InvalidInput(
                f"model artifact holds untrusted types: {', '.join(refused)}; only "
                "scikit-learn, numpy and scipy classes are loaded"
            )
        try:
            payload = sio.loads(blob, trusted=list(untrusted))
        except Exception as exc:
            raise InvalidInput(f"model artifact could not be loaded: {exc}") from exc
        return cls._from_payload(payload)

    @classmethod
    def _from_payload(cls, payload: Any) -> TrainedModel:
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise InvalidInput(f"model artifact is not a {_FORMAT} artifact")
        kind, n_classes = payload.get("kind"), payload.get("n_classes")
        features, classes = payload.get("features"), payload.get("classes")
        estimator = payload.get("estimator")
        if kind not in BUILTIN_KINDS:
            raise InvalidInput(f"model artifact: unknown kind {kind!r}")
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
            raise InvalidInput(f"model artifact: bad n_classes {n_classes!r}")
        if kind == InputKind.TABULAR:
            ok = isinstance(features, list) and all(isinstance(f, str) for f in features)
            if not ok:
                raise InvalidInput("model artifact: tabular model without a feature list")
        elif features is not None:
            raise InvalidInput("model artifact: a text model has no feature list")
        if not hasattr(estimator, "predict_proba"):
            raise InvalidInput("model artifact: the estimator has no predict_proba")
        if classes != _classes_of(estimator, n_classes):
            raise InvalidInput("model artifact: classes do not match the estimator's classes_")
        return cls(
            estimator=estimator,
            kind=str(kind),
            n_classes=n_classes,
            features=features,
            classes=classes,
        )
