"""Agreement and calibration metrics on plain arrays (numpy; scikit-learn where it already implements them).

No Django here: the quality selectors and the model pages feed these functions arrays and render the results.
scikit-learn is imported inside the functions that need it so that importing this module stays cheap.

Conventions: a *count matrix* has one row per item and one column per category; cell (i, j) is how many raters
put item i in category j. Items rated by fewer than two raters carry no agreement information and are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

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


def one_vs_rest_counts(counts: np.ndarray, j: int) -> np.ndarray:
    """Binary count matrix (in class j, not in class j) from a multi-category one."""
    counts = np.asarray(counts, dtype=float)
    inside = counts[:, j]
    return np.stack([inside, counts.sum(axis=1) - inside], axis=1)


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


@dataclass(frozen=True)
class ClassAgreement:
    index: int
    kappa: float | None
    alpha: float | None
    specific_agreement: float | None
    ratings: int


def per_class_agreement(counts: np.ndarray) -> list[ClassAgreement]:
    """One-vs-rest Fleiss' kappa, Krippendorff's alpha and specific agreement for every category."""
    counts = np.asarray(counts, dtype=float)
    usable = counts[counts.sum(axis=1) >= 2]
    out = []
    for j in range(counts.shape[1]):
        binary = one_vs_rest_counts(usable, j)
        out.append(
            ClassAgreement(
                index=j,
                kappa=fleiss_kappa(binary),
                alpha=krippendorff_alpha_nominal(binary),
                specific_agreement=specific_agreement(usable, j),
                ratings=int(usable[:, j].sum()),
            )
        )
    return out


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    accuracy: float | None
    confidence: float | None


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10
) -> tuple[float | None, list[ReliabilityBin]]:
    """ECE with equal-width bins on [0, 1] and the reliability bins behind it.

    A confidence c falls in bin b when lower < c <= upper (the first bin also takes c == 0).
    ECE = sum over bins of |bin| / n * |accuracy(bin) - mean confidence(bin)|.
    """
    conf = np.asarray(confidences, dtype=float)
    hit = np.asarray(correct, dtype=float)
    if conf.shape != hit.shape:
        raise ValueError("confidences and correct must have the same length")
    if n_bins < 1:
        raise ValueError("n_bins must be positive")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        mask = which == b
        count = int(mask.sum())
        if count:
            acc, mean_conf = float(hit[mask].mean()), float(conf[mask].mean())
            ece += count / len(conf) * abs(acc - mean_conf)
            bins.append(ReliabilityBin(float(edges[b]), float(edges[b + 1]), count, acc, mean_conf))
        else:
            bins.append(ReliabilityBin(float(edges[b]), float(edges[b + 1]), 0, None, None))
    return (float(ece) if len(conf) else None), bins


def classification_summary(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[int]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix (scikit-learn).

    `labels` fixes the class order of the per-class lists and the matrix rows (true) / columns (predicted).
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    labels = list(labels)
    if len(y_true) == 0:
        return {"accuracy": None, "macro_f1": None, "per_class": [], "confusion_matrix": [], "n": 0}
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = [lab for lab in labels if lab in set(y_true) or lab in set(y_pred)]
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "per_class": [
            {"label": lab, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for lab, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
        ],
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "n": len(y_true),
    }


def roc_auc_macro(y_true: Sequence[int], probabilities: np.ndarray, labels: Sequence[int]) -> float | None:
    """Macro one-vs-rest ROC-AUC over the classes present in y_true (scikit-learn); None when undefined."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y_true)
    probs = np.asarray(probabilities, dtype=float)
    labels = list(labels)
    aucs = []
    for j, lab in enumerate(labels):
        positive = y == lab
        if positive.all() or not positive.any():
            continue
        aucs.append(roc_auc_score(positive.astype(int), probs[:, j]))
    return float(np.mean(aucs)) if aucs else None
