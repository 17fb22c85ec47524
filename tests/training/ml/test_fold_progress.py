"""The cross-validations' fold loops report each fold (on_fold): the label-error search's bar moves fold by fold."""

from __future__ import annotations

import numpy as np
import pytest

from training.ml.confident import cross_val_pred_probs
from training.ml.heads import cross_val_head


def _blobs(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    return (rng.normal(size=(n, 4)) + labels[:, None] * 3).astype(np.float32), labels


@pytest.mark.parametrize(("folds", "repeats"), [(5, 1), (4, 3), (100, 1)])
def test_search_cross_validation_reports_each_fold_in_order(folds, repeats):
    # Given labeled features, asked for `folds` folds over `repeats` fold splits (100 folds of 60 items: 60 folds)
    features, labels = _blobs()
    calls = []

    # When the search's cross-validation runs
    probs = cross_val_pred_probs(
        features, labels, n_classes=3, folds=folds, C=0.1, repeats=repeats, on_fold=lambda d, t: calls.append((d, t))
    )

    # Then it reported once per fold fitted, counting up to the total, which never changes
    total = min(folds, len(labels)) * repeats
    assert calls == [(d, total) for d in range(1, total + 1)]
    assert probs.shape == (60, 3)


def test_search_cross_validation_without_on_fold_gives_the_same_probabilities():
    features, labels = _blobs()
    heard = cross_val_pred_probs(features, labels, n_classes=3, folds=5, C=0.1, repeats=2, on_fold=lambda d, t: None)
    silent = cross_val_pred_probs(features, labels, n_classes=3, folds=5, C=0.1, repeats=2)
    np.testing.assert_array_equal(heard, silent)


def test_estimate_cross_validation_reports_each_fold_in_order():
    # Given labeled features and a small pool to self-train on
    features, labels = _blobs()
    pool, _ = _blobs(seed=1)
    calls = []

    # When the estimate's cross-validation (the head a version trains) runs
    cv = cross_val_head(features, labels, 3, folds=5, unlabeled=pool, on_fold=lambda d, t: calls.append((d, t)))

    # Then it reported each of the 5 folds, in order
    assert calls == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
    assert cv.probs.shape == (60, 3)
