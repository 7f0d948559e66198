"""Tests of loopwise.learning.models: featurizing, fitting, aligned probabilities, skops."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.datasets import dump_svmlight_file, load_breast_cancer, load_digits
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from loopwise.domain import InputKind
from loopwise.errors import InvalidInput
from loopwise.learning import (
    TrainedModel,
    default_estimator,
    featurize,
    fit_model,
    tabular_features,
)


def _rows(X: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    return [{n: float(v) for n, v in zip(names, row, strict=True)} for row in X]


def _two_blobs(n: int, seed: int = 0) -> tuple[list[dict[str, Any]], np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(size=(n, 2)) + 3.0 * y[:, None]
    return _rows(X, ["a", "b"]), y


# --- featurize -----------------------------------------------------------------------


def test_tabular_features_is_sorted_union() -> None:
    assert tabular_features([{"b": 1}, {"a": 2, "c": None}, {}]) == ["a", "b", "c"]
    assert tabular_features([]) == []


def test_featurize_tabular_missing_none_bool_extra_keys() -> None:
    data = [
        {"x": 1, "flag": True, "extra": "ignored"},
        {"x": None, "flag": False},
        {"flag": np.bool_(True), "y": np.int64(7)},
        {"x": 2.5, "y": np.float32(0.5)},
    ]
    X = featurize("tabular", data, ["x", "y", "flag"])
    assert isinstance(X, np.ndarray)
    assert X.dtype == np.float64 and X.shape == (4, 3)
    expected = np.array(
        [[1, np.nan, 1], [np.nan, np.nan, 0], [np.nan, 7, 1], [2.5, 0.5, np.nan]],
        dtype=np.float64,
    )
    np.testing.assert_array_equal(X, expected)


def test_featurize_tabular_plain_json_values_at_once() -> None:
    """The values JSON brings (numbers, booleans, null, missing) take the vectorised path
    and give what the row-by-row rules give; big integers too."""
    data = [{"x": 1, "y": True, "z": None}, {"x": -0.5, "z": 2**70}, {"y": False, "z": 3}]
    X = featurize("tabular", data, ["x", "y", "z"])
    expected = [[1.0, 1.0, np.nan], [-0.5, np.nan, float(2**70)], [np.nan, 0.0, 3.0]]
    np.testing.assert_array_equal(X, np.array(expected))
    assert featurize("tabular", [], ["x"]).shape == (0, 1)  # type: ignore[union-attr]
    with pytest.raises(InvalidInput, match="row 0, field 'x'"):
        featurize("tabular", [{"x": 10**400}], ["x"])


def test_featurize_tabular_without_features_uses_keys_of_data() -> None:
    X = featurize("tabular", [{"b": 1, "a": 2}], None)
    np.testing.assert_array_equal(X, [[2.0, 1.0]])


@pytest.mark.parametrize("bad", ["3.2", [1, 2], {"v": 1}, math.inf, -math.inf])
def test_featurize_bad_value_names_row_and_field(bad: Any) -> None:
    data = [{"age": 30, "score": 1.0}, {"age": 40, "score": 2.0}, {"age": bad, "score": 3.0}]
    with pytest.raises(InvalidInput) as info:
        featurize("tabular", data, ["age", "score"])
    assert "row 2" in str(info.value)
    assert "'age'" in str(info.value)
    assert info.value.errors == [{"loc": [2, "data", "age"], "msg": info.value.errors[0]["msg"]}]


def test_featurize_lists_every_bad_value() -> None:
    data = [{"a": "x", "b": 1}, {"a": 1, "b": [2]}]
    with pytest.raises(InvalidInput) as info:
        featurize("tabular", data, ["a", "b"])
    assert [e["loc"] for e in info.value.errors] == [[0, "data", "a"], [1, "data", "b"]]
    assert "1 more problem" in str(info.value)


def test_featurize_text() -> None:
    assert featurize(InputKind.TEXT, [{"text": "hi"}, {"text": "", "x": 1}], None) == ["hi", ""]
    with pytest.raises(InvalidInput, match=r"row 1, field 'text': must be a string"):
        featurize("text", [{"text": "ok"}, {"text": 3}], None)
    with pytest.raises(InvalidInput, match=r"row 0, field 'text': missing"):
        featurize("text", [{"body": "no text"}], None)


def test_featurize_rejects_a_row_that_is_not_an_object() -> None:
    with pytest.raises(InvalidInput, match="row 1"):
        featurize("tabular", [{"a": 1}, [1, 2]], ["a"])  # type: ignore[list-item]


# --- default_estimator ---------------------------------------------------------------


def test_default_estimator_by_kind_and_size() -> None:
    small = default_estimator("tabular", 1999)
    assert isinstance(small, Pipeline)
    assert isinstance(small.steps[-1][1], LogisticRegression)
    assert isinstance(default_estimator("tabular", 2000), HistGradientBoostingClassifier)
    text = default_estimator("text", 10)
    assert isinstance(text, Pipeline)
    assert text.steps[0][1].get_params()["ngram_range"] == (1, 2)


@pytest.mark.parametrize("kind", ["image", "audio"])
def test_default_estimator_refuses_other_kinds(kind: str) -> None:
    with pytest.raises(InvalidInput) as info:
        default_estimator(kind, 100)
    assert "tabular and text" in str(info.value)
    assert "probabilities" in str(info.value)


# --- fit_model / predict_proba -------------------------------------------------------


def test_missing_class_gets_zero_column_and_rows_sum_to_one() -> None:
    data, y01 = _two_blobs(60)
    y = np.where(y01 == 0, 0, 2)  # k = 3, label 1 never seen
    model = fit_model("tabular", data, y, n_classes=3)
    assert model.classes == [0, 2]
    assert model.features == ["a", "b"]
    proba = model.predict_proba(data)
    assert proba.shape == (60, 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.all(proba[:, 1] == 0.0)
    # columns are label indices: the argmax recovers the 0/2 labels
    assert np.mean(proba.argmax(axis=1) == y) > 0.9
    assert model.predict_proba([]).shape == (0, 3)


@settings(max_examples=25, deadline=None)
@given(
    k=st.integers(2, 6),
    data=st.data(),
)
def test_columns_align_with_seen_classes(k: int, data: st.DataObject) -> None:
    seen = sorted(data.draw(st.sets(st.integers(0, k - 1), min_size=2, max_size=k)))
    rng = np.random.default_rng(len(seen) * 31 + k)
    y = np.repeat(seen, 5)
    X = rng.normal(size=(len(y), 3)) + y[:, None]
    model = fit_model("tabular", _rows(X, ["p", "q", "r"]), y, n_classes=k)
    proba = model.predict_proba(_rows(rng.normal(size=(7, 3)), ["p", "q", "r"]))
    assert model.classes == seen
    assert proba.shape == (7, k)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    unseen = [c for c in range(k) if c not in seen]
    assert np.all(proba[:, unseen] == 0.0)
    assert np.all(proba[:, seen] > 0.0)


def test_tabular_with_missing_values_and_bools() -> None:
    rng = np.random.default_rng(1)
    y = np.arange(80) % 2
    data: list[dict[str, Any]] = []
    for i, label in enumerate(y):
        row: dict[str, Any] = {"flag": bool(label) if i % 5 else None, "v": rng.normal() + label}
        if i % 7 == 0:
            del row["v"]
        data.append(row)
    data[3]["never_numeric"] = None  # a column with no values at all
    model = fit_model("tabular", data, y, n_classes=2)
    assert model.features == ["flag", "never_numeric", "v"]
    proba = model.predict_proba([{"flag": True}, {"flag": False, "v": None}, {}])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert proba[0, 1] > 0.5 > proba[1, 1]


def test_tabular_fit_rejects_bad_values_by_row_and_field() -> None:
    data, y = _two_blobs(10)
    data[4]["b"] = "seven"
    with pytest.raises(InvalidInput, match=r"row 4, field 'b'"):
        fit_model("tabular", data, y, n_classes=2)


def test_text_model_learns_a_separable_corpus() -> None:
    rng = np.random.default_rng(0)
    sport = ["goal", "match", "striker", "referee", "league", "penalty", "keeper", "stadium"]
    food = ["recipe", "oven", "garlic", "simmer", "flour", "butter", "skillet", "basil"]
    common = ["the", "a", "today", "really", "we", "very", "and", "then"]

    def sentence(words: list[str]) -> str:
        picks = list(rng.choice(words, 3)) + list(rng.choice(common, 4))
        return " ".join(rng.permutation(picks))

    y = np.arange(200) % 2
    data = [{"text": sentence(food if label else sport)} for label in y]
    model = fit_model("text", data[:120], y[:120], n_classes=2)
    assert model.features is None and model.kind == "text"
    proba = model.predict_proba(data[120:])
    accuracy = float(np.mean(proba.argmax(axis=1) == y[120:]))
    assert accuracy > 0.9


def test_breast_cancer_default_tabular_model() -> None:
    ds = load_breast_cancer()
    data = _rows(ds.data, list(ds.feature_names))
    train, test, y_train, y_test = train_test_split(
        data, ds.target, test_size=0.3, random_state=0, stratify=ds.target
    )
    model = fit_model("tabular", train, y_train, n_classes=2)
    assert isinstance(model.estimator, Pipeline)
    accuracy = float(np.mean(model.predict_proba(test).argmax(axis=1) == y_test))
    assert accuracy > 0.9


@pytest.mark.slow
def test_digits_gradient_boosting_path() -> None:
    ds = load_digits()
    names = [f"px{i}" for i in range(ds.data.shape[1])]
    X_train, X_test, y_train, y_test = train_test_split(
        ds.data, ds.target, test_size=0.25, random_state=0, stratify=ds.target
    )
    rng = np.random.default_rng(0)
    # the training set stacked with a jittered copy: >= 2000 rows, the default path is HGB
    X_big = np.vstack([X_train, X_train + rng.normal(0, 0.5, X_train.shape)])
    y_big = np.concatenate([y_train, y_train])
    assert len(y_big) >= 2000
    # one OpenMP thread: on small shared machines HGB's threads spin and get ~10x slower
    with threadpool_limits(limits=1, user_api="openmp"):
        model = fit_model("tabular", _rows(X_big, names), y_big, n_classes=10)
    assert isinstance(model.estimator, HistGradientBoostingClassifier)
    assert model.estimator.random_state == 0
    accuracy = float(np.mean(model.predict_proba(_rows(X_test, names)).argmax(1) == y_test))
    assert accuracy > 0.9


def test_user_estimator_is_cloned_and_seeded() -> None:
    data, y = _two_blobs(60)
    user = RandomForestClassifier(n_estimators=15)
    first = fit_model("tabular", data, y, n_classes=2, estimator=user)
    second = fit_model("tabular", data, y, n_classes=2, estimator=user)
    with pytest.raises(NotFittedError):
        check_is_fitted(user)
    assert user.random_state is None
    assert first.estimator is not user and first.estimator.random_state == 0
    probe, _ = _two_blobs(30, seed=5)
    np.testing.assert_array_equal(first.predict_proba(probe), second.predict_proba(probe))


def test_random_state_reaches_pipeline_steps_and_none_leaves_it() -> None:
    data, y = _two_blobs(40)
    pipe = make_pipeline(RandomForestClassifier(n_estimators=5, random_state=7))
    seeded = fit_model("tabular", data, y, n_classes=2, estimator=pipe, random_state=3)
    assert seeded.estimator.steps[0][1].random_state == 3
    kept = fit_model("tabular", data, y, n_classes=2, estimator=pipe, random_state=None)
    assert kept.estimator.steps[0][1].random_state == 7


def test_estimator_without_predict_proba_is_refused() -> None:
    from sklearn.svm import LinearSVC

    data, y = _two_blobs(20)
    with pytest.raises(InvalidInput, match="predict_proba"):
        fit_model("tabular", data, y, n_classes=2, estimator=LinearSVC())


def test_single_class_training_is_refused() -> None:
    data, _ = _two_blobs(10)
    with pytest.raises(InvalidInput, match="training needs at least two classes, got only 1"):
        fit_model("tabular", data, np.ones(10, dtype=int), n_classes=3)


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (np.array([0, 1, 0]), "4 rows but y has 3"),
        (np.array([0, 1, 3, 0]), r"row 2: label index 3 is outside 0\.\.2"),
        (np.array([0, -1, 1, 0]), "row 1"),
        (np.array([0.0, 1.0, 1.0, 0.0]), "integer"),
    ],
)
def test_bad_labels_are_refused(y: np.ndarray, match: str) -> None:
    data, _ = _two_blobs(4)
    with pytest.raises(InvalidInput, match=match):
        fit_model("tabular", data, y, n_classes=3)


def test_fit_refuses_image_and_empty_tabular() -> None:
    with pytest.raises(InvalidInput, match="tabular and text"):
        fit_model("image", [{"url": "a"}, {"url": "b"}], np.array([0, 1]), n_classes=2)
    with pytest.raises(InvalidInput, match="no fields"):
        fit_model("tabular", [{}, {}], np.array([0, 1]), n_classes=2)


# --- persistence ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tabular", "text", "forest"])
def test_bytes_round_trip_gives_identical_probabilities(kind: str) -> None:
    if kind == "text":
        data: list[dict[str, Any]] = [
            {"text": t} for t in ["good fine great", "bad awful poor"] * 6
        ]
        y = np.array([0, 2] * 6)
        model = fit_model("text", data, y, n_classes=3)
    else:
        data, y = _two_blobs(50)
        forest = RandomForestClassifier(n_estimators=5) if kind == "forest" else None
        model = fit_model("tabular", data, y, n_classes=2, estimator=forest)
    loaded = TrainedModel.from_bytes(model.to_bytes())
    assert (loaded.kind, loaded.n_classes, loaded.features, loaded.classes) == (
        model.kind,
        model.n_classes,
        model.features,
        model.classes,
    )
    np.testing.assert_array_equal(loaded.predict_proba(data), model.predict_proba(data))


def test_round_trip_of_the_gradient_boosting_model() -> None:
    data, y = _two_blobs(60)
    model = fit_model(
        "tabular", data, y, n_classes=2, estimator=default_estimator("tabular", 10_000)
    )
    loaded = TrainedModel.from_bytes(model.to_bytes())
    np.testing.assert_array_equal(loaded.predict_proba(data), model.predict_proba(data))


def negate(X: np.ndarray) -> np.ndarray:
    """A user function: a model that calls it must not be loaded."""
    return -X


class Doubler(TransformerMixin, BaseEstimator):
    """A user class: a model that holds it must not be loaded."""

    def fit(self, X: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, X: Any) -> Any:
        return 2 * np.asarray(X)


class Constant(ClassifierMixin, BaseEstimator):
    """A user classifier without sklearn's name."""

    def fit(self, X: Any, y: Any) -> Constant:
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.full((len(X), len(self.classes_)), 1.0 / len(self.classes_))


@pytest.mark.parametrize(
    ("estimator", "name"),
    [
        (make_pipeline(FunctionTransformer(negate), LogisticRegression()), "negate"),
        (make_pipeline(Doubler(), LogisticRegression()), "Doubler"),
        (Constant(), "Constant"),
        # a scikit-learn *function* is refused too: only classes are trusted
        (
            make_pipeline(FunctionTransformer(dump_svmlight_file), LogisticRegression()),
            "dump_svmlight_file",
        ),
    ],
)
def test_from_bytes_refuses_untrusted_types(estimator: Any, name: str) -> None:
    data, y = _two_blobs(20)
    if name == "dump_svmlight_file":  # never call it: build the model by hand
        blob = TrainedModel(estimator, "tabular", 2, ["a", "b"], [0, 1]).to_bytes()
    else:
        blob = fit_model("tabular", data, y, n_classes=2, estimator=estimator).to_bytes()
    with pytest.raises(InvalidInput) as info:
        TrainedModel.from_bytes(blob)
    assert name in str(info.value)
    assert "untrusted" in str(info.value)


def test_from_bytes_accepts_numpy_ufuncs() -> None:
    data, y = _two_blobs(20)
    pipe = make_pipeline(FunctionTransformer(np.tanh), LogisticRegression())
    model = fit_model("tabular", data, y, n_classes=2, estimator=pipe)
    loaded = TrainedModel.from_bytes(model.to_bytes())
    np.testing.assert_array_equal(loaded.predict_proba(data), model.predict_proba(data))


def test_from_bytes_refuses_garbage_and_foreign_artifacts() -> None:
    import skops.io as sio

    with pytest.raises(InvalidInput, match="not a readable skops file"):
        TrainedModel.from_bytes(b"\x80\x04not a zip")
    with pytest.raises(InvalidInput, match="not a loopwise"):
        TrainedModel.from_bytes(sio.dumps(LogisticRegression()))
    data, y = _two_blobs(20)
    model = fit_model("tabular", data, y, n_classes=2)
    model.classes = [0, 2]
    with pytest.raises(InvalidInput, match="classes"):
        TrainedModel.from_bytes(model.to_bytes())
