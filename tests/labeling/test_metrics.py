"""Agreement and calibration metrics against scikit-learn, textbook values and a hand-computed ECE."""

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from labeling import metrics

A = [0, 1, 2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 1, 1]
B = [0, 1, 2, 1, 1, 0, 2, 1, 2, 2, 0, 0, 1, 2]


def test_cohen_kappa_matches_scikit_learn():
    assert metrics.cohen_kappa(A, B) == pytest.approx(cohen_kappa_score(A, B))
    assert metrics.cohen_kappa(A, A) == pytest.approx(1.0)


def test_cohen_kappa_is_undefined_without_variation_or_items():
    assert metrics.cohen_kappa([1, 1, 1], [1, 1, 1]) is None
    assert metrics.cohen_kappa([], []) is None
    with pytest.raises(ValueError):
        metrics.cohen_kappa([1], [1, 2])


# Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories -> kappa = 0.210.
FLEISS_TABLE = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)


def test_fleiss_kappa_textbook_value():
    assert metrics.fleiss_kappa(FLEISS_TABLE) == pytest.approx(0.210, abs=5e-4)


def test_fleiss_kappa_perfect_and_undefined():
    assert metrics.fleiss_kappa(np.array([[3, 0], [0, 3], [3, 0]])) == pytest.approx(1.0)
    assert metrics.fleiss_kappa(np.array([[3, 0], [3, 0]])) is None  # one category only
    assert metrics.fleiss_kappa(np.array([[1, 0], [0, 1]])) is None  # nobody rated twice


# Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders, 12 units, missing data;
# nominal alpha = 0.743.
N = None
KRIPPENDORFF_UNITS = list(
    zip(
        [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
        [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
        strict=True,
    )
)


def test_krippendorff_alpha_nominal_textbook_value():
    counts, categories = metrics.counts_from_ratings(KRIPPENDORFF_UNITS)
    assert categories == [1, 2, 3, 4, 5]
    assert metrics.krippendorff_alpha_nominal(counts) == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_alpha_two_coders_no_missing_close_to_kappa_family():
    counts, _ = metrics.counts_from_ratings(list(zip(A, B, strict=True)))
    alpha = metrics.krippendorff_alpha_nominal(counts)
    # For two coders without missing data alpha = Scott's pi corrected by (n-1)/n; it sits near Fleiss' kappa.
    n = 2 * len(A)
    assert alpha == pytest.approx(1 - (n - 1) / n * (1 - metrics.fleiss_kappa(counts)), abs=1e-9)


def test_per_class_agreement_is_one_vs_rest():
    rows = metrics.per_class_agreement(FLEISS_TABLE)
    assert len(rows) == 5
    binary = np.stack([FLEISS_TABLE[:, 4], FLEISS_TABLE.sum(axis=1) - FLEISS_TABLE[:, 4]], axis=1)
    assert rows[4].kappa == pytest.approx(metrics.fleiss_kappa(binary))
    assert rows[4].ratings == FLEISS_TABLE[:, 4].sum()
    # Subject 1: all 14 raters chose category 5, so category 5 has the highest specific agreement.
    assert max(rows, key=lambda r: r.specific_agreement).index == 4


def test_expected_calibration_error_hand_computed():
    # 5 bins of width 0.2. Bin [0, .2]: conf .15, wrong -> |0 - .15| = .15 (1 item)
    # bin (.4, .6]: conf .55, wrong -> .55 (1); bin (.6, .8]: conf .75/.65, one right -> |.5 - .7| = .2 (2)
    # bin (.8, 1]: conf .95/.85, both right -> |1 - .9| = .1 (2). ECE = (.15 + .55 + 2*.2 + 2*.1) / 6 = 0.216667
    ece, bins = metrics.expected_calibration_error([0.95, 0.85, 0.75, 0.65, 0.55, 0.15], [1, 1, 0, 1, 0, 0], 5)
    assert ece == pytest.approx(1.3 / 6)
    assert [b.count for b in bins] == [1, 0, 1, 2, 2]
    assert bins[1].accuracy is None
    assert bins[3].accuracy == pytest.approx(0.5)
    assert bins[3].confidence == pytest.approx(0.7)


def test_perfectly_calibrated_model_has_zero_ece():
    ece, _ = metrics.expected_calibration_error([1.0, 1.0, 0.5, 0.5], [1, 1, 1, 0], 10)
    assert ece == pytest.approx(0.0)


def test_classification_summary_matches_scikit_learn():
    labels = [0, 1, 2, 3]  # class 3 never occurs: zero support, excluded from macro-F1
    summary = metrics.classification_summary(A, B, labels)
    assert summary["accuracy"] == pytest.approx(accuracy_score(A, B))
    assert summary["macro_f1"] == pytest.approx(f1_score(A, B, average="macro"))
    assert summary["confusion_matrix"] == confusion_matrix(A, B, labels=labels).tolist()
    _p, r, f, _s = precision_recall_fscore_support(A, B, labels=labels, zero_division=0)
    assert [row["f1"] for row in summary["per_class"]] == pytest.approx(list(f))
    assert [row["recall"] for row in summary["per_class"]] == pytest.approx(list(r))
    assert summary["per_class"][3]["support"] == 0


def test_roc_auc_macro_matches_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    logits = rng.normal(size=(60, 3)) + 1.5 * np.eye(3)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = roc_auc_score(y, probs, multi_class="ovr", average="macro")
    assert metrics.roc_auc_macro(y, probs, [0, 1, 2]) == pytest.approx(expected)
    assert metrics.roc_auc_macro([1, 1], probs[:2], [0, 1, 2]) is None
