"""Real data that ships inside installed packages (no network)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def breast_cancer_records(
    random_state: int | None = 0,
) -> tuple[list[dict[str, Any]], npt.NDArray[np.int64], list[str]]:
    """scikit-learn's breast-cancer diagnosis data (569 real cases, 30 features from
    images of fine-needle aspirates) as loopwise records, shuffled.

    Returns ``(records, y, labels)``: records with ``external_id`` and ``data``; ``y`` the
    true label index of each; ``labels`` = ``["malignant", "benign"]``.

    >>> records, y, labels = breast_cancer_records()
    >>> len(records), labels, int(y.sum())
    (569, ['malignant', 'benign'], 357)
    """
    from sklearn.datasets import load_breast_cancer

    ds = load_breast_cancer()
    order = np.random.default_rng(random_state).permutation(len(ds.target))
    names = [str(n).replace(" ", "_") for n in ds.feature_names]
    records = [
        {"external_id": f"case-{i}",
         "data": {n: float(v) for n, v in zip(names, ds.data[i], strict=True)}}
        for i in order
    ]
    return records, ds.target[order].astype(np.int64), [str(t) for t in ds.target_names]


def digits_records(
    random_state: int | None = 0,
) -> tuple[list[dict[str, Any]], npt.NDArray[np.int64], list[str]]:
    """scikit-learn's handwritten digits (1,797 real 8x8 scans, 10 classes) as loopwise
    records, shuffled: enough items for the gate to certify a promise.

    >>> records, y, labels = digits_records()
    >>> len(records), labels[:3], len(records[0]["data"])
    (1797, ['0', '1', '2'], 64)
    """
    from sklearn.datasets import load_digits

    ds = load_digits()
    order = np.random.default_rng(random_state).permutation(len(ds.target))
    names = [f"px{r}{c}" for r in range(8) for c in range(8)]
    records = [
        {"external_id": f"scan-{i}",
         "data": {n: float(v) for n, v in zip(names, ds.data[i], strict=True)}}
        for i in order
    ]
    return records, ds.target[order].astype(np.int64), [str(t) for t in ds.target_names]


DATASETS = {"breast-cancer": breast_cancer_records, "digits": digits_records}
"""The demo's real datasets, by name."""
