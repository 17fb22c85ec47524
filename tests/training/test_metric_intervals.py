"""Holdout metrics that say how sure they are (training/ml/evaluate.py, training/ml/intervals.py), against answers
worked by hand: Wilson intervals, macro averages over the classes present, bootstrap intervals that hold the point
estimate and narrow as the holdout grows."""

from __future__ import annotations

import numpy as np
import pytest

from stats.proportions import wilson_interval
from training.ml.evaluate import evaluate, prediction_summary
from training.ml.intervals import headline

NAMES = ["a", "b", "c", "d"]
# Eight holdout items, class d absent from the holdout but predicted once.
Y = [0, 0, 0, 1, 1, 2, 2, 2]
PRED = [0, 0, 1, 1, 0, 2, 2, 3]


def probs_for(pred: list[int], classes: int = 4, top: float = 0.7) -> np.ndarray:
    out = np.full((len(pred), classes), (1 - top) / (classes - 1))
    out[np.arange(len(pred)), pred] = top
    return out


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        # p = 5/8, z = 1.96: centre (p + z²/2n) / (1 + z²/n) = 0.58445, half-width 0.27871
        (5, 8, 0.3057, 0.8632),
        (8, 10, 0.4902, 0.9433),
        # all right on a tiny holdout is not "1.000 ± 0": the upper end is 1, the lower end far below
        (24, 24, 0.8620, 1.0),
        # none right: [0, z² / (n + z²)]
        (0, 5, 0.0, 0.4345),
    ],
)
def test_wilson_interval_matches_the_hand_computed_answer(successes, n, low, high):
    assert wilson_interval(successes, n) == pytest.approx((low, high), abs=1e-4)


def test_macro_f1_averages_the_classes_present_and_names_the_absent_one():
    # Given a fixed set of predictions where class d has no holdout item (but is predicted once)
    m = evaluate(probs_for(PRED), Y, NAMES)

    # Then accuracy is 5/8 with its Wilson interval, and macro-F1 averages a, b and c only:
    # F1(a) = 2*2 / (3 + 3) = 2/3, F1(b) = 2*1 / (2 + 2) = 1/2, F1(c) = 2*2 / (3 + 2) = 4/5
    assert m["n"] == 8
    assert m["accuracy"] == pytest.approx(0.625)
    assert (m["intervals"]["accuracy"]["low"], m["intervals"]["accuracy"]["high"]) == pytest.approx(
        (0.3057, 0.8632), abs=1e-4
    )
    assert m["intervals"]["accuracy"]["method"] == "wilson"
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1 / 2 + 4 / 5) / 3)  # 0.6556; counting d as 0 gave 0.4917
    assert m["macro_classes"] == ["a", "b", "c"]
    assert m["no_support"] == ["d"]
    # d has no recall or F1 to speak of (n/a, not 0); its one prediction was wrong, so its precision is 0
    assert m["per_class"]["d"] == {"precision": 0.0, "recall": None, "f1": None, "support": 0}
    # The confusion matrix still shows the prediction of d.
    assert m["confusion_matrix"][2][3] == 1


def test_every_headline_figure_carries_n_and_an_interval_that_holds_it():
    m = evaluate(probs_for(PRED * 3), Y * 3, NAMES)  # 24 items: a bootstrap needs 20 (MIN_BOOTSTRAP_N)
    rows = headline(m)
    assert [r["key"] for r in rows] == ["accuracy", "macro_f1", "roc_auc", "ece"]
    for row in rows:
        assert row["n"] == 24
        assert row["level"] == 0.95
        assert row["low"] <= row["value"] <= row["high"], row
        assert row["method"] in ("wilson", "bootstrap")


def test_bootstrap_interval_holds_the_estimate_narrows_with_n_and_is_seeded():
    widths = []
    for copies in (3, 10, 100):  # 24, 80 and 800 items (a bootstrap needs 20: MIN_BOOTSTRAP_N)
        m = evaluate(probs_for(PRED * copies), Y * copies, NAMES)
        low, high = m["intervals"]["macro_f1"]["low"], m["intervals"]["macro_f1"]["high"]
        assert low <= m["macro_f1"] <= high
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    assert widths[2] < 0.1  # 800 items: a few points either way
    again = evaluate(probs_for(PRED * 10), Y * 10, NAMES)["intervals"]["macro_f1"]
    assert again == evaluate(probs_for(PRED * 10), Y * 10, NAMES)["intervals"]["macro_f1"]


def test_a_perfect_score_on_a_tiny_holdout_is_not_certain():
    # Six of six right: every bootstrap resample scores 1.0, which bounds nothing. The accuracy, a proportion, keeps
    # its Wilson interval [0.610, 1]; macro-F1, ROC-AUC and ECE, which the data cannot bound, get no interval rather
    # than [1, 1] or another statistic's interval (stop 55: a borrowed one read as their own)
    probs = np.full((6, 3), 0.1)
    probs[np.arange(6), [0, 0, 0, 1, 1, 1]] = 0.8
    m = evaluate(probs, [0, 0, 0, 1, 1, 1], ["a", "b", "c"])
    assert m["macro_f1"] == 1.0
    accuracy = m["intervals"]["accuracy"]
    assert (round(accuracy["low"], 4), accuracy["high"], accuracy["method"]) == (0.6097, 1.0, "wilson")
    assert "macro_f1" not in m["intervals"]
    assert "ece" not in m["intervals"]
    assert "roc_auc" not in m["intervals"]


def test_multi_label_macro_over_labels_present():
    # Label "d" never occurs in the holdout; the model never predicts it either.
    probs = np.array([[0.9, 0.8, 0.1, 0.1], [0.2, 0.7, 0.6, 0.0], [0.6, 0.1, 0.2, 0.3]])
    m = evaluate(probs, [[0, 1], [1], [0, 2]], NAMES, multi_label=True)
    # F1(a) = 1, F1(b) = 1, F1(c): one true, one wrong prediction elsewhere, the true one missed = 0
    assert m["macro_f1"] == pytest.approx(2 / 3)
    assert m["no_support"] == ["d"]
    assert m["intervals"]["subset_accuracy"]["method"] == "wilson"
    assert {r["key"] for r in headline(m)} >= {"subset_accuracy", "hamming_accuracy", "micro_f1", "macro_f1"}


def test_empty_holdout_has_no_interval_and_every_class_unsupported():
    m = evaluate(np.zeros((0, 4)), [], NAMES)
    assert m["intervals"]["n"] == 0
    assert "accuracy" not in m["intervals"]
    assert m["no_support"] == NAMES


def test_a_version_stored_before_intervals_reads_without_them():
    rows = headline({"accuracy": 0.8125, "macro_f1": 0.75, "n": 16})
    assert [(r["key"], r["value"], r["n"], r["low"], r["high"]) for r in rows] == [
        ("accuracy", 0.8125, 16, None, None),
        ("macro_f1", 0.75, 16, None, None),
    ]
    assert headline({"accuracy": "bad", "intervals": {"accuracy": {"low": "x", "high": 1}}})[0]["low"] is None


def test_cross_validated_summary_has_the_same_shape():
    s = prediction_summary(np.array(Y), np.array(PRED), NAMES)
    assert s["accuracy"] == pytest.approx(0.625)
    assert s["macro_f1"] == pytest.approx((2 / 3 + 1 / 2 + 4 / 5) / 3)
    assert s["no_support"] == ["d"]
    assert s["intervals"]["accuracy"]["low"] == pytest.approx(0.3057, abs=1e-4)


def test_a_large_holdout_bounds_what_it_can_afford_and_leaves_roc_auc_unbounded():
    # 10,000 holdout items, 100 classes: ROC-AUC's bootstrap (resamples x items x classes, 2e8 here) is over its
    # budget, so the round's evaluation gives it no interval rather than minutes of work; the cheap ones are bounded.
    # (Its time is a benchmark's to measure, not a test's: a timed assertion failed on a loaded machine.)
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(100), size=10_000)
    y = rng.integers(0, 100, 10_000)
    m = evaluate(probs, y.tolist(), [f"c{k}" for k in range(100)])
    assert "roc_auc" in m
    assert "roc_auc" not in m["intervals"]
    assert m["intervals"]["macro_f1"]["low"] <= m["macro_f1"] <= m["intervals"]["macro_f1"]["high"]
