"""Holdout metrics: accuracy, F1 (per class, macro, micro), confusion matrix, ROC-AUC, calibration (ECE with
reliability bins) and per-level accuracy for hierarchical taxonomies. scikit-learn does the counting.

Every headline number carries its n and a 95 % interval (`intervals` in the metrics dict): Wilson for a
proportion of items (accuracy, subset accuracy), a seeded bootstrap over the evaluated items for the rest
(macro- and micro-F1, ROC-AUC, ECE, Hamming accuracy), which bounds nothing below MIN_BOOTSTRAP_N (20) items: there
those have no interval (training/ml/intervals.py says why). Macro averages run over the classes present in the
evaluation set; `no_support` names the classes that had no item there.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from stats.proportions import wilson_interval
from training.ml.export_files import MULTI_LABEL_THRESHOLD
from training.ml.intervals import (
    ECE_BINS,
    auc_affordable,
    auc_stat,
    bootstrap_entries,
    bootstrap_intervals,
    ece_stat,
    interval_entry,
    intervals_block,
    macro_f1_stat,
    mean_stat,
    micro_f1_stat,
    single_label_macro_f1_stat,
)


def _onehot(targets: Sequence[Sequence[int]], num_classes: int) -> np.ndarray:
    y = np.zeros((len(targets), num_classes), dtype=np.int64)
    for i, ls in enumerate(targets):
        y[i, list(ls)] = 1
    return y


def calibration(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> tuple[float | None, list[dict]]:
    """Expected calibration error over equal-width confidence bins, and the bins for a reliability diagram."""
    n = len(confidence)
    if n == 0:
        return None, []
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin i holds (edges[i], edges[i+1]]; confidence 0 goes to the first bin.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    ece = 0.0
    out = []
    for i in range(bins):
        mask = which == i
        count = int(mask.sum())
        if count == 0:
            out.append({"lower": float(edges[i]), "upper": float(edges[i + 1]), "conf": None, "acc": None, "count": 0})
            continue
        conf, acc = float(confidence[mask].mean()), float(correct[mask].mean())
        ece += count / n * abs(acc - conf)
        out.append({"lower": float(edges[i]), "upper": float(edges[i + 1]), "conf": conf, "acc": acc, "count": count})
    return float(ece), out


def _normalize_targets(targets: Any, multi_label: bool) -> list[list[int]]:
    out = []
    for t in targets:
        if isinstance(t, (int, np.integer)):
            out.append([int(t)])
        else:
            out.append([int(v) for v in t])
    if not multi_label and any(len(t) != 1 for t in out):
        raise ValueError("single-label evaluation needs exactly one class per item")
    return out


def evaluate(
    probs: np.ndarray,
    targets: Any,
    class_names: Sequence[str],
    multi_label: bool = False,
    hierarchy: dict[int, list[int]] | None = None,
    threshold: float = MULTI_LABEL_THRESHOLD,
) -> dict[str, Any]:
    """Metrics of predictions `probs` [n, C] against `targets` (class index per item, or index lists).

    Keys are always present; a metric that the data cannot define (nothing held out, a single class for
    ROC-AUC) is None."""
    probs = np.asarray(probs, dtype=np.float64)
    c = len(class_names)
    tl = _normalize_targets(targets, multi_label)
    n = len(tl)
    if n and probs.shape != (n, c):
        raise ValueError(f"probs shape {probs.shape} does not match {n} targets x {c} classes")
    labels = list(range(c))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        if multi_label:
            return _evaluate_multi(probs, tl, class_names, threshold) if n else _empty(class_names, multi_label)
        if n == 0:
            return _empty(class_names, multi_label)
        y = np.array([t[0] for t in tl])
        pred = probs.argmax(axis=1)
        prec, rec, f1, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
        present = np.unique(y)
        roc = None
        if len(present) >= 2:
            try:
                if c == 2:
                    roc = float(roc_auc_score(y, probs[:, 1]))
                elif len(present) == c:
                    roc = float(roc_auc_score(y, probs / probs.sum(1, keepdims=True), multi_class="ovr", labels=labels))
                else:  # OvR over the classes that occur, one binary AUC each
                    roc = float(np.mean([roc_auc_score(y == k, probs[:, k]) for k in present]))
            except ValueError:
                roc = None
        confidence = probs.max(axis=1)
        ece, bins = calibration(confidence, pred == y)
        truth = np.eye(c, dtype=np.int64)[y]
        correct = int((pred == y).sum())
        auc_classes = [1] if c == 2 else list(present)
        statistics = {
            "macro_f1": single_label_macro_f1_stat(y, pred, c),
            "ece": ece_stat(confidence, pred == y),
        }
        if roc is not None and auc_affordable(n, len(auc_classes)):
            statistics["roc_auc"] = auc_stat(truth, probs, auc_classes)
        # Macro over the classes present in the holdout: a class with no holdout item has no F1 to average
        # (counting it as 0 would punish the model for what the holdout lacks).
        macro = float(f1_score(y, pred, average="macro", labels=present, zero_division=0))
        wilson = wilson_interval(correct, n)
        boot = bootstrap_entries(bootstrap_intervals(statistics, n), n)
        intervals = intervals_block(n, accuracy=interval_entry(wilson, "wilson"), **boot)
        result = {
            "n": n,
            "multi_label": False,
            "accuracy": correct / n,
            "macro_f1": macro,
            "macro_classes": [class_names[k] for k in present],
            "no_support": [name for k, name in enumerate(class_names) if k not in set(present.tolist())],
            "intervals": intervals,
            "per_class": _per_class(class_names, prec, rec, f1, support, np.bincount(pred, minlength=c)),
            "confusion_matrix": confusion_matrix(y, pred, labels=labels).tolist(),
            "roc_auc": roc,
            "ece": ece,
            "reliability": bins,
        }
        if hierarchy:
            result["per_level_accuracy"] = _per_level(y, pred, hierarchy)
        return result


def _per_class(names: Sequence[str], prec, rec, f1, support, predicted) -> dict[str, dict]:
    """Per-class figures; a class with no evaluated item has no recall or F1 (None, shown as n/a, not 0), and no
    precision either unless the model predicted it."""
    return {
        name: {
            "precision": float(prec[i]) if support[i] or predicted[i] else None,
            "recall": float(rec[i]) if support[i] else None,
            "f1": float(f1[i]) if support[i] else None,
            "support": int(support[i]),
        }
        for i, name in enumerate(names)
    }


def _per_level(y: np.ndarray, pred: np.ndarray, hierarchy: dict[int, list[int]]) -> list[dict]:
    """Accuracy at each taxonomy depth: a prediction is right at depth d when its ancestor at d is the truth's."""

    def path(k: int) -> list[int]:
        return [*hierarchy.get(int(k), []), int(k)]

    paths_true = [path(k) for k in y]
    paths_pred = [path(k) for k in pred]
    depth = max(len(p) for p in paths_true)
    levels = []
    for d in range(depth):
        rows = [(t[d], p[d] if d < len(p) else None) for t, p in zip(paths_true, paths_pred, strict=True) if d < len(t)]
        levels.append({"level": d, "accuracy": float(np.mean([a == b for a, b in rows])), "n": len(rows)})
    return levels


def hamming_all_absent(y: np.ndarray) -> float | None:
    """The Hamming accuracy of predicting no class at all on the multi-hot labels `y` (items x classes):
    1 - (mean classes per item) / classes. None without items or classes."""
    y = np.asarray(y)
    if y.ndim != 2 or y.size == 0:
        return None
    return float(1.0 - y.mean())


def _evaluate_multi(probs: np.ndarray, tl: list[list[int]], class_names: Sequence[str], threshold: float) -> dict:
    c = len(class_names)
    y = _onehot(tl, c)
    pred = (probs >= threshold).astype(np.int64)
    prec, rec, f1, support = precision_recall_fscore_support(
        y, pred, average=None, labels=list(range(c)), zero_division=0
    )
    aucs = []
    for k in range(c):
        if 0 < y[:, k].sum() < len(y):
            aucs.append(roc_auc_score(y[:, k], probs[:, k]))
    # Calibration of each (item, label) decision: confidence of the predicted side.
    conf = np.where(pred == 1, probs, 1 - probs).ravel()
    ece, bins = calibration(conf, (pred == y).ravel())
    n = len(tl)
    present = np.nonzero(y.sum(axis=0) > 0)[0]
    exact = int((pred == y).all(axis=1).sum())
    macro = float(f1_score(y[:, present], pred[:, present], average="macro", zero_division=0)) if len(present) else None
    statistics = {
        "hamming_accuracy": mean_stat((pred == y).mean(axis=1)),
        "micro_f1": micro_f1_stat(y, pred),
    }
    if macro is not None:
        statistics["macro_f1"] = macro_f1_stat(y, pred)
    hamming, micro = float((pred == y).mean()), float(f1_score(y, pred, average="micro", zero_division=0))
    wilson = wilson_interval(exact, n)
    boot = bootstrap_entries(bootstrap_intervals(statistics, n), n)
    intervals = intervals_block(
        n, accuracy=interval_entry(wilson, "wilson"), subset_accuracy=interval_entry(wilson, "wilson"), **boot
    )
    return {
        "n": n,
        "multi_label": True,
        "accuracy": exact / n,  # subset accuracy: every label of the item right
        "subset_accuracy": exact / n,
        "hamming_accuracy": hamming,
        # What answering "absent" for every class scores on the same items: with few classes per item, Hamming
        # accuracy sits near 1 whatever the model does, so the pages show it beside this baseline.
        "hamming_all_absent": hamming_all_absent(y),
        "micro_f1": micro,
        # Macro over the labels that occur in the evaluation set (see the single-label case).
        "macro_f1": macro,
        "macro_classes": [class_names[k] for k in present],
        "no_support": [name for k, name in enumerate(class_names) if k not in set(present.tolist())],
        "intervals": intervals,
        "per_class": _per_class(class_names, prec, rec, f1, support, pred.sum(axis=0)),
        "confusion_matrix": None,
        "roc_auc": float(np.mean(aucs)) if aucs else None,
        "ece": ece,
        "reliability": bins,
        "threshold": threshold,
    }


def prediction_summary(y: np.ndarray, pred: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy and macro-F1 (over the classes present in y) of hard single-label predictions, with n and 95 %
    intervals in the same shape as `evaluate`: the cross-validated estimate stores this."""
    y, pred = np.asarray(y, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    n, c = len(y), len(class_names)
    if n == 0:
        return {
            "n": 0,
            "accuracy": None,
            "macro_f1": None,
            "no_support": list(class_names),
            "intervals": intervals_block(0),
        }
    present = np.unique(y)
    correct = int((pred == y).sum())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        macro = float(f1_score(y, pred, average="macro", labels=present, zero_division=0))
    wilson = wilson_interval(correct, n)
    boot = bootstrap_intervals({"macro_f1": single_label_macro_f1_stat(y, pred, c)}, n)
    return {
        "n": n,
        "accuracy": correct / n,
        "macro_f1": macro,
        "no_support": [name for k, name in enumerate(class_names) if k not in set(present.tolist())],
        "intervals": intervals_block(n, accuracy=interval_entry(wilson, "wilson"), **bootstrap_entries(boot, n)),
    }


def _empty(class_names: Sequence[str], multi_label: bool) -> dict:
    c = len(class_names)
    out = {
        "n": 0,
        "multi_label": multi_label,
        "accuracy": None,
        "macro_f1": None,
        "per_class": {name: {"precision": None, "recall": None, "f1": None, "support": 0} for name in class_names},
        "confusion_matrix": None if multi_label else [[0] * c for _ in range(c)],
        "roc_auc": None,
        "ece": None,
        "reliability": [],
        "macro_classes": [],
        "no_support": list(class_names),
        "intervals": intervals_block(0),
    }
    if multi_label:
        out.update(subset_accuracy=None, hamming_accuracy=None, hamming_all_absent=None, micro_f1=None)
    return out
