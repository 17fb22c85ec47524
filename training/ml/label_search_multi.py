"""The label-error search in a multi-label project, apart from Django: a label is one yes/no decision per class.

Each class with at least MIN_LABELS_PER_CLASS labeled items carrying it and as many without it is judged on its own,
as a two-class search (training.ml.label_search.judge): the class's out-of-sample probability from a cross-validated
logistic regression (cross_val_present_probs), the agreement gate against always answering the class's more common
state, confident learning, and the backing of the 10 most similar labeled images (the share of them that carry the
class; one neighbour table serves every class). A suspect is one decision the model and the neighbours contradict: a
class given that they find absent, or a class not given that they find present. training.services.label_errors runs
it on a project; bench/label_errors_multi.py measures its false alarms and the errors it finds.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from training.ml.confident import calibrated_joint, confident_joint, standardized_fold
from training.ml.label_search import MIN_LABELS_PER_CLASS, agreement_needed, judge
from training.ml.neighbours import NeighbourSupport

# A class is judged only where its out-of-sample model gets both states mostly right: the mean of the shares of items
# with and without the class that it decides rightly (balanced accuracy at 0.5) must reach this, besides the
# single-label gate on plain agreement (a class present in 18 % of the items passes that by answering "absent" nearly
# always). bench/label_errors_multi.py, digits mosaics, 1,000 items, 2 seeds, per-class heads weighted to balance the
# two states: with every label right, 0.9 listed 4 false suspects (judging 2 classes of 10 a seed), 0.85 listed 29
# (3 to 4 classes) and no gate 62 (5 classes); with 5 % of the items one decision wrong, 61 % of the suspects were
# wrong decisions at 0.9 (recall 70 %), 33 % at 0.85 and 25 % without. On CIFAR-10 mosaics no class reached it
# (unweighted heads with the plain gate alone listed 67 suspects, 4 % of them real). The bench's own run (3 seeds):
# 0.17 false suspects per 100 items, 59 % of the suspects real, 63 % of the judged classes' wrong decisions found,
# and the estimated share of wrong decisions within its interval of the true one in every seed.
MIN_BALANCED_ACCURACY = 0.9


@dataclass(frozen=True)
class ClassVerdict:
    """One judged class: the out-of-sample agreement with its given yes/no decisions, and the gate it had to pass."""

    cls: int
    agreement: float
    needed: float
    balanced: float  # balanced accuracy of the out-of-sample decisions (MIN_BALANCED_ACCURACY)
    estimated_errors: int  # wrong decisions of this class, from its calibrated confident joint (0 when weak)

    @property
    def weak(self) -> bool:
        return self.agreement < self.needed or self.balanced_weak

    @property
    def balanced_weak(self) -> bool:
        return self.balanced < MIN_BALANCED_ACCURACY


@dataclass(frozen=True)
class Suspect:
    """A decision to review: item `row` (index into the inputs), class `cls` given (True) or not given (False), the
    model's probability that the class is present, and the share of the item's nearest labeled neighbours with it."""

    row: int
    cls: int
    given: bool
    p_present: float
    near_present: float

    @property
    def score(self) -> float:
        """1 - the model's probability for the given decision (as a single-label suspect's score)."""
        return self.p_present if not self.given else 1.0 - self.p_present


@dataclass(frozen=True)
class MultiJudgement:
    verdicts: list[ClassVerdict]  # one per judged class
    suspects: list[Suspect]  # most suspicious first
    agreement: float  # share of the decisions of the classes that passed the gate that the model agrees with
    decisions: int  # decisions of the classes that passed the gate (items x classes)
    estimated_errors: int  # wrong decisions among those, summed over the classes' calibrated joints
    support: NeighbourSupport  # the neighbour table the classes shared (rows computed on demand)

    @property
    def strong(self) -> list[int]:
        return [v.cls for v in self.verdicts if not v.weak]


def judged_classes(targets: np.ndarray, minimum: int = MIN_LABELS_PER_CLASS) -> np.ndarray:
    """Classes with at least `minimum` items carrying them and `minimum` without them."""
    targets = np.asarray(targets, dtype=bool)
    present = targets.sum(axis=0)
    return np.nonzero((present >= minimum) & (len(targets) - present >= minimum))[0]


def cross_val_present_probs(
    features: np.ndarray,
    targets: np.ndarray,
    classes: np.ndarray,
    *,
    folds: int = 5,
    C: float = 0.003,
    seed: int = 0,
    repeats: int = 1,
    max_iter: int = 500,
    on_fold: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """[n, len(classes)]: each item's out-of-sample probability that each class is present, from K-fold
    cross-validation (shuffled folds shared by every class) of one L2-regularised logistic regression per class on
    features standardised inside the fold, the two states weighted to balance (a rare class is not drowned by its
    absences), averaged over `repeats` fold splits. A class whose training part holds only one state gets that
    state's share. `on_fold(done, total)` after each fold's fits (folds x repeats in all)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold
    from threadpoolctl import threadpool_limits

    features = np.asarray(features, dtype=np.float32)
    targets = np.asarray(targets, dtype=bool)[:, classes]
    n = len(features)
    if n < 2:
        raise ValueError("need at least two labeled examples")
    out = np.zeros((n, len(classes)), dtype=np.float64)
    # One BLAS thread, as in training.ml.confident.cross_val_pred_probs: many small fits.
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        splits = max(2, min(folds, n))
        for r in range(repeats):
            splitter = KFold(n_splits=splits, shuffle=True, random_state=seed + r)
            for f, (train_idx, test_idx) in enumerate(splitter.split(features)):
                train, mean, std = standardized_fold(features, train_idx)
                test = (features[test_idx] - mean) / std
                for j in range(len(classes)):
                    y = targets[train_idx, j]
                    if y.all() or not y.any():
                        out[test_idx, j] += float(y.mean())
                        continue
                    model = LogisticRegression(C=C, max_iter=max_iter, class_weight="balanced").fit(train, y)
                    out[test_idx, j] += model.predict_proba(test)[:, 1]
                if on_fold is not None:
                    on_fold(r * splits + f + 1, repeats * splits)
    return out / repeats


def balanced_accuracy(given: np.ndarray, decided: np.ndarray) -> float:
    """The mean of the shares of items with and without the class whose decision matches (0 when a state is empty)."""
    given, decided = np.asarray(given, dtype=bool), np.asarray(decided, dtype=bool)
    if given.all() or not given.any():
        return 0.0
    return float(((decided & given).sum() / given.sum() + (~decided & ~given).sum() / (~given).sum()) / 2)


class _ClassSupport:
    """The neighbours' backing of one class as a two-class table (column 0: without it, 1: with it), for judge."""

    def __init__(self, table: NeighbourSupport, cls: int):
        self.table, self.cls = table, cls

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, rows) -> np.ndarray:
        share = self.table[rows][:, self.cls]
        return np.stack([1.0 - share, share], axis=1)


def judge_multi_label(
    features: np.ndarray, targets: np.ndarray, present: np.ndarray, classes: np.ndarray
) -> MultiJudgement:
    """The search over the judged `classes` (columns of the 0/1 `targets`; `present` holds their out-of-sample
    probabilities in the same order): each class judged as a two-class search, the suspects of the classes that
    pass their gate, most suspicious first."""
    targets = np.asarray(targets, dtype=bool)
    table = NeighbourSupport(features, targets.astype(np.float32), targets.shape[1])
    verdicts, suspects = [], []
    agreeing = decisions = errors = 0
    for j, cls in enumerate(classes):
        y = targets[:, cls].astype(np.int64)
        p = np.clip(present[:, j], 0.0, 1.0)
        balanced = balanced_accuracy(y.astype(bool), p >= 0.5)
        if balanced < MIN_BALANCED_ACCURACY:
            agreement = float(((p >= 0.5) == y.astype(bool)).mean()) if len(y) else 0.0
            verdicts.append(ClassVerdict(int(cls), agreement, agreement_needed(y), balanced, 0))
            continue
        verdict = judge(features, y, np.stack([1.0 - p, p], axis=1), support=_ClassSupport(table, int(cls)))
        estimated = 0 if verdict.weak else verdict.issues.estimated_errors
        verdicts.append(ClassVerdict(int(cls), verdict.agreement, verdict.needed, balanced, estimated))
        if verdict.weak:
            continue
        agreeing += round(verdict.agreement * len(y))
        decisions += len(y)
        errors += estimated
        near = table[verdict.listed][:, cls] if len(verdict.listed) else np.zeros(0)
        suspects += [
            Suspect(int(i), int(cls), bool(y[i]), float(p[i]), float(s))
            for i, s in zip(verdict.listed, near, strict=True)
        ]
    suspects.sort(key=lambda s: (-s.score, s.row, s.cls))
    return MultiJudgement(verdicts, suspects, agreeing / decisions if decisions else 0.0, decisions, errors, table)


def decision_error_interval(
    targets: np.ndarray,
    present: np.ndarray,
    classes: np.ndarray,
    judgement: MultiJudgement,
    *,
    rounds: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """A percentile bootstrap interval, over items, of the share of wrong decisions in the classes that passed their
    gate (`present` has a column per entry of `classes`, as judge_multi_label took them): each resample recomputes
    every class's thresholds and calibrated joint, with the same neighbours' backing."""
    targets = np.asarray(targets, dtype=bool)
    n = len(targets)
    strong = set(judgement.strong)
    columns = [j for j, cls in enumerate(classes) if int(cls) in strong]
    classes = [int(classes[j]) for j in columns]
    support = judgement.support
    if n == 0 or not classes:
        return 0.0, 1.0
    rng = np.random.default_rng(seed)
    shares = np.empty(rounds)
    for r in range(rounds):
        pick = rng.integers(0, n, n)
        wrong = 0.0
        for cls, col in zip(classes, columns, strict=True):
            y = targets[pick, cls].astype(np.int64)
            p = np.clip(present[pick, col], 0.0, 1.0)
            joint = confident_joint(y, np.stack([1.0 - p, p], axis=1), support=_ClassSupport(support, cls), rows=pick)
            calibrated = calibrated_joint(joint, y)
            wrong += calibrated.sum() - np.trace(calibrated)
        shares[r] = wrong / (n * len(classes))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(shares, [tail, 100 - tail])
    return float(max(0.0, low)), float(min(1.0, high))
