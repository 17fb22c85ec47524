"""Inter-annotator agreement metrics on plain arrays (numpy; scikit-learn where it already implements them).

No Django here: the quality selectors feed these functions arrays and render the results. (A model's calibration
error is computed once, by training.ml.evaluate.calibration, and stored in the version's metrics.)
scikit-learn is imported inside the functions that need it so that importing this module stays cheap.

Conventions: a *count matrix* has one row per item and one column per category; cell (i, j) is how many raters
put item i in category j. Items rated by fewer than two raters carry no agreement information and are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _nan_to_none(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def cohen_kappa(a: Sequence, b: Sequence) -> float | None:
    """Cohen's kappa of two raters over the same items (scikit-learn); None when undefined.

    Undefined means no items, or both raters used one and the same category throughout (chance agreement is 1).
    """
    if len(a) != len(b):
        raise ValueError("Both raters must rate the same items.")
    if len(a) == 0:
        return None
    from sklearn.metrics import cohen_kappa_score

    if len(set(a) | set(b)) == 1:
        return None
    return _nan_to_none(cohen_kappa_score(list(a), list(b)))


def counts_from_ratings(ratings: Sequence[Sequence], categories: Sequence | None = None) -> tuple[np.ndarray, list]:
    """Turn per-item lists of ratings (None = missing) into a count matrix and its category order."""
    if categories is None:
        categories = sorted({r for unit in ratings for r in unit if r is not None}, key=str)
    index = {c: j for j, c in enumerate(categories)}
    counts = np.zeros((len(ratings), len(categories)), dtype=float)
    for i, unit in enumerate(ratings):
        for r in unit:
            if r is not None:
                counts[i, index[r]] += 1
    return counts, list(categories)


def fleiss_kappa(counts: np.ndarray) -> float | None:
    """Fleiss' kappa of a count matrix (items x categories).

    Items may have different numbers of raters (the usual generalisation: each item's observed agreement uses its
    own rater count; category shares pool all ratings). Items with fewer than two ratings are dropped.
    Returns None when undefined (no usable items, or every rating in one category).
    """
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2:
        raise ValueError("counts must be a 2-D items x categories matrix")
    n_i = counts.sum(axis=1)
    counts, n_i = counts[n_i >= 2], n_i[n_i >= 2]
    if len(counts) == 0:
        return None
    p_item = ((counts * (counts - 1)).sum(axis=1)) / (n_i * (n_i - 1))
    p_bar = p_item.mean()
    p_j = counts.sum(axis=0) / n_i.sum()
    p_e = float((p_j**2).sum())
    if math.isclose(p_e, 1.0):
        return None
    return float((p_bar - p_e) / (1 - p_e))


def krippendorff_alpha_nominal(counts: np.ndarray) -> float | None:
    """Krippendorff's alpha for nominal data from a count matrix (units x values); missing ratings are just absent.

    Built from the coincidence matrix: alpha = 1 - (n - 1) * sum_{c!=k} o_ck / sum_{c!=k} n_c n_k, where only units
    with at least two values are pairable. Returns None when undefined (fewer than two pairable values, or no
    variation at all).
    """
    counts = np.asarray(counts, dtype=float)
    m_u = counts.sum(axis=1)
    counts, m_u = counts[m_u >= 2], m_u[m_u >= 2]
    if len(counts) == 0:
        return None
    # Coincidences o_ck = sum_u (n_uc n_uk - [c == k] n_uc) / (m_u - 1).
    weighted = counts / (m_u - 1)[:, None]
    coincidence = weighted.T @ counts - np.diag(weighted.sum(axis=0))
    n_c = coincidence.sum(axis=1)
    n = n_c.sum()
    if n <= 1:
        return None
    observed_disagreement = coincidence.sum() - np.trace(coincidence)
    expected_disagreement = (n_c.sum() ** 2 - (n_c**2).sum()) / (n - 1)
    if math.isclose(expected_disagreement, 0.0):
        return None
    return float(1 - observed_disagreement / expected_disagreement)


def specific_agreement(counts: np.ndarray, j: int) -> float | None:
    """Proportion of specific (positive) agreement for category j: of all rater pairs where one said j,
    the share where the other said j too. None when nobody used j on a multiply-rated item."""
    counts = np.asarray(counts, dtype=float)
    n_i = counts.sum(axis=1)
    keep = n_i >= 2
    c, n_i = counts[keep, j], n_i[keep]
    denominator = float((c * (n_i - 1)).sum())
    if denominator == 0:
        return None
    return float((c * (c - 1)).sum() / denominator)
