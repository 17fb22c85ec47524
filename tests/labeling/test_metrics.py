"""Agreement metrics against scikit-learn and textbook values."""

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

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
