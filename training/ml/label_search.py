"""The label-error search's rules, apart from Django: which labels it judges, the agreement its out-of-sample model
must reach before it judges any, and which disagreements it shows (training.ml.confident does the confident
learning). training.services.label_errors runs it on a project; bench/label_errors_queue.py measures the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.ml.confident import LabelIssues, find_label_issues, suspects
from training.ml.neighbours import NeighbourSupport

# Fewer labels per class than this and the cross-validated model mostly flags its own mistakes: on digits
# (Lite0, 64 px) with every label correct, 10 labels per class flagged 9-14 % of them, 20 per class 4-7 %,
# 40 per class 2-3 %, all 180 per class about 1 %.
MIN_LABELS_PER_CLASS = 20
# Below this out-of-sample agreement with the given labels, most disagreements are the model's errors.
MIN_AGREEMENT = 0.5
# ... and it must close this share of the gap between chance (the largest class's share) and full agreement.
CHANCE_GAP = 0.25
# A near tie between the given class and the model's is no disagreement to show a reviewer.
TIE_MARGIN = 0.02
# Nor is a lean: the model must find its class at least MIN_ODDS times as probable as the given one, or all of the
# label's nearest labeled images (training.ml.neighbours) carry the model's class and none the given one (on a few
# dozen labels the strong L2 keeps every probability soft: a red image labeled blue read 0.61 against 0.39, odds 1.6,
# with its 10 neighbours all red; on the sets below that second way lists nothing more). Labels the queue
# asked for are the images the cross-validated model is least sure of, and there it leans against many right labels.
# bench/label_errors_queue.py's sets (digits, 3 seeds; every label right, then 5 % wrong), without -> with the rule:
# queue-picked, false suspects at 200 / 400 / 800 labels 16 / 23 / 15 -> 3 / 2 / 14, precision at 400 / 800 54 / 70 %
# -> 84 / 84 %, recall 58 / 75 % -> 52 / 73 %; random picks, false suspects 2 / 10 / 8 -> 0 / 7 / 7. CIFAR-10 (10k
# pool, 2 seeds), 800 random labels: 99 false suspects -> 43, precision 31 -> 52 %, recall 52 -> 51 %. The 14 left at
# 800 queue labels are digits a person could read either way (a 9 drawn as a 3, a 7 as a 5). Odds 3 kept more of
# them (8 at 400), odds 10 lost recall (33 % at 400).
MIN_ODDS = 5.0
# Its cross-validation: repeated over REPEATS fold splits and averaged (cross_val_pred_probs), while labels x classes
# stays under REPEAT_BUDGET (the fits grow with both; beyond it one split is used).
REPEATS = 3
REPEAT_BUDGET = 200_000
# Strong L2 on standardised embeddings: best out-of-sample accuracy on CIFAR-10 Lite0 features (bench/label_errors.py).
DEFAULT_C = 0.003


@dataclass(frozen=True)
class Judgement:
    """What the label-error search concludes from out-of-sample probabilities (judge)."""

    agreement: float  # share of labels the out-of-sample model agrees with
    needed: float  # the agreement it must reach to judge (agreement_needed)
    support: NeighbourSupport | None  # when judged with the neighbours' backing and not weak (rows on demand)
    issues: LabelIssues | None  # None when weak
    listed: np.ndarray  # the suspects to show, near ties dropped (empty when weak)

    @property
    def weak(self) -> bool:
        return self.agreement < self.needed


def agreement_needed(labels: np.ndarray) -> float:
    """The out-of-sample agreement the search needs: MIN_AGREEMENT, and CHANCE_GAP of the way from chance (always
    answering the largest class) to full agreement. With two look-alike classes a model at 50 % "disagrees" with
    half the labels by a coin flip."""
    labels = np.asarray(labels, dtype=np.int64)
    chance = float(np.bincount(labels).max() / len(labels)) if len(labels) else 1.0
    return max(MIN_AGREEMENT, chance + CHANCE_GAP * (1.0 - chance))


def judge(
    features: np.ndarray, labels: np.ndarray, pred_probs: np.ndarray, *, backed: bool = True, support=None
) -> Judgement:
    """The search on labels of the judged classes (each with at least MIN_LABELS_PER_CLASS, renumbered 0..k-1) and
    their out-of-sample probabilities: the agreement gate, then confident learning with (by default) the
    neighbours' backing, then the suspects a reviewer sees, without near ties (TIE_MARGIN). `support` replaces the
    neighbours computed from `features` and `labels` (the multi-label search shares one table across classes)."""
    labels = np.asarray(labels, dtype=np.int64)
    pred_probs = np.asarray(pred_probs, dtype=np.float64)
    predicted = pred_probs.argmax(axis=1)
    agreement = float((predicted == labels).mean()) if len(labels) else 0.0
    needed = agreement_needed(labels)
    if agreement < needed:
        return Judgement(agreement, needed, None, None, np.zeros(0, dtype=np.int64))
    if not backed:
        support = None
    elif support is None:
        support = NeighbourSupport(features, labels, pred_probs.shape[1])
    issues = find_label_issues(labels, pred_probs, support=support)
    rows = suspects(issues, labels)
    model, given = pred_probs[rows, predicted[rows]], pred_probs[rows, labels[rows]]
    clear = model >= MIN_ODDS * given
    if support is not None and len(rows):
        # ... or every one of the nearest labeled images carries the model's class and none the given one
        near = support[rows]
        clear |= (near[np.arange(len(rows)), predicted[rows]] >= 1.0) & (near[np.arange(len(rows)), labels[rows]] == 0)
    shown = (model - given > TIE_MARGIN) & clear
    return Judgement(agreement, needed, support, issues, rows[shown].astype(np.int64))
