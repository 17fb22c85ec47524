"""Holdout metrics against scikit-learn and a hand-computed calibration error."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from training.ml.evaluate import calibration, evaluate

NAMES = ["cat", "dog", "fox"]


def test_single_label_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1, 1, 1], size=60)
    y = rng.integers(0, 3, size=60)
    m = evaluate(probs, y.tolist(), NAMES)
    pred = probs.argmax(1)
    assert m["n"] == 60
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, probs, multi_class="ovr"))
    assert m["per_class"]["dog"]["support"] == int((y == 1).sum())
    assert np.array(m["confusion_matrix"]).sum() == 60
    assert np.array(m["confusion_matrix"])[0, 0] == int(((y == 0) & (pred == 0)).sum())
    assert sum(b["count"] for b in m["reliability"]) == 60


def test_ece_by_hand():
    # two bins in use: 0.95 (2 items, 1 right) and 0.55 (2 items, 2 right)
    conf = np.array([0.95, 0.95, 0.55, 0.55])
    correct = np.array([1, 0, 1, 1])
    ece, bins = calibration(conf, correct)
    # |0.5 - 0.95| * 2/4 + |1.0 - 0.55| * 2/4
    assert ece == pytest.approx(0.45)
    used = [b for b in bins if b["count"]]
    assert [(b["conf"], b["acc"], b["count"]) for b in used] == [(0.55, 1.0, 2), (0.95, 0.5, 2)]
    assert len(bins) == 15


def test_roc_auc_is_none_when_only_one_class_is_held_out():
    probs = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1]])
    m = evaluate(probs, [0, 0], NAMES)
    assert m["roc_auc"] is None
    assert m["accuracy"] == 1.0


def test_empty_holdout_gives_none_not_an_error():
    m = evaluate(np.zeros((0, 3)), [], NAMES)
    assert m["n"] == 0
    assert m["accuracy"] is None


def test_multi_label_metrics():
    probs = np.array([[0.9, 0.8, 0.1], [0.2, 0.7, 0.6], [0.6, 0.1, 0.2]])
    targets = [[0, 1], [1], [0, 2]]
    m = evaluate(probs, targets, NAMES, multi_label=True)
    y = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 1]])
    pred = (probs >= 0.5).astype(int)
    assert m["subset_accuracy"] == pytest.approx(1 / 3)
    assert m["micro_f1"] == pytest.approx(f1_score(y, pred, average="micro"))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
    assert m["per_class"]["fox"]["recall"] == 0.0


def test_per_level_accuracy_for_a_hierarchy():
    # classes 0,1 are under parent 3 ("mammal"), class 2 under parent 4; parents are classes too
    names = ["cat", "dog", "eagle", "mammal", "bird"]
    hierarchy = {0: [3], 1: [3], 2: [4]}
    probs = np.eye(5)[[1, 0, 2]] * 0.9 + 0.02  # predicts dog, cat, eagle
    m = evaluate(probs, [0, 0, 2], names, hierarchy=hierarchy)
    levels = {lv["level"]: lv["accuracy"] for lv in m["per_level_accuracy"]}
    assert levels[0] == 1.0  # every parent right
    assert levels[1] == pytest.approx(2 / 3)  # the dog/cat mix-up is wrong at the leaf
