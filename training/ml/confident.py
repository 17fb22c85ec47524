"""Confident learning (Northcutt et al., 2021) on out-of-sample predicted probabilities, in plain numpy.

Given labels y (n,) and out-of-sample probabilities P (n, k):
- per-class thresholds t_j = mean of P[:, j] over the examples *labeled* j (the class's mean self-confidence);
- the confident joint C[i, j] counts examples labeled i whose probability clears t_j for some class j, assigned
  to the class with the highest probability among those that clear their threshold;
- off-diagonal entries of C are confidently mislabeled; the calibrated joint (rows rescaled to the given-label
  counts) estimates how many labels are wrong, which sizes the review list;
- every example is ranked by self-confidence P[n, y_n] (lowest first) or normalized margin
  P[n, y_n] - max_{j != y_n} P[n, j];
- the review list (`suspects`) is the first max(flagged, estimated errors) of that ranking among the examples
  whose most probable class is not the given one: a label the model agrees with is never a suspect;
- `error_share_interval` puts a bootstrap interval around the estimated share of wrong labels (never narrower than
  the binomial interval of the count: no error in 105 labels is not "0 % to 0 %");
- with `support` (training.ml.neighbours: the classes of each example's nearest labeled neighbours), a disagreement
  counts only where those neighbours back it (`backs`). Labels the queue asked for are the images the model was
  least sure of, and there a cross-validated model disagrees with many right labels.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from training.ml.columns import column_stats
from training.ml.intervals import widened_to_binomial

RANKINGS = ("self_confidence", "normalized_margin")
# A disagreement is shown (and counted as a probable error) only where the example's 10 nearest other labeled
# examples (training.ml.neighbours) back it: at least MIN_SUPPORT of them carry the model's class and at most
# MAX_GIVEN_SUPPORT the given one. bench/label_errors_queue.py, digits, 3 seeds. Labels asked for by the queue (the
# product's strategy), every one right:
# 18 / 21 / 12 suspects at 200 / 400 / 800 labels with the check, against 72 / 139 / 54 without. With 5 % wrong, the
# share of suspects that are real errors is 21 / 47 / 75 % (without: 10 / 26 / 61 %), recall 50 / 51 / 80 % (75 / 93 /
# 91 %). Labels drawn at random: 2 / 10 / 8 false suspects (11 / 35 / 28), precision 75 / 75 / 83 % (30 / 64 / 72 %).
# templates/labeling/review_label_errors.html states the rule.
MIN_SUPPORT = 0.5
MAX_GIVEN_SUPPORT = 0.2


def _check(labels: np.ndarray, pred_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels, dtype=np.int64)
    pred_probs = np.asarray(pred_probs, dtype=np.float64)
    if pred_probs.ndim != 2 or labels.ndim != 1 or len(labels) != len(pred_probs):
        raise ValueError("labels must be (n,) and pred_probs (n, k) with the same n")
    if len(labels) and (labels.min() < 0 or labels.max() >= pred_probs.shape[1]):
        raise ValueError("labels must index columns of pred_probs")
    return labels, pred_probs


def per_class_thresholds(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """t_j = mean P[:, j] over examples labeled j; classes with no examples get +inf (never confidently chosen)."""
    labels, pred_probs = _check(labels, pred_probs)
    k = pred_probs.shape[1]
    sums = np.zeros(k)
    np.add.at(sums, labels, pred_probs[np.arange(len(labels)), labels])
    counts = np.bincount(labels, minlength=k).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        thresholds = np.where(counts > 0, sums / np.maximum(counts, 1), np.inf)
    return thresholds


def confident_assignments(labels: np.ndarray, pred_probs: np.ndarray, thresholds: np.ndarray | None = None):
    """For every example, the class it confidently belongs to (or -1 when no class clears its threshold)."""
    labels, pred_probs = _check(labels, pred_probs)
    if thresholds is None:
        thresholds = per_class_thresholds(labels, pred_probs)
    # Small tolerance so that an example sitting exactly on its class's mean is counted.
    above = pred_probs >= thresholds[None, :] - 1e-12
    masked = np.where(above, pred_probs, -np.inf)
    assigned = masked.argmax(axis=1)
    assigned[~above.any(axis=1)] = -1
    return assigned


def backs(support: np.ndarray, given: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Per example: do its neighbours back `other` against the `given` label? At least MIN_SUPPORT of them carry
    `other` and at most MAX_GIVEN_SUPPORT the given class."""
    rows = np.arange(len(given))
    return (support[rows, other] >= MIN_SUPPORT) & (support[rows, given] <= MAX_GIVEN_SUPPORT)


def _backed_assignments(labels, pred_probs, support, thresholds=None, rows=None) -> np.ndarray:
    """confident_assignments, where an off-diagonal assignment that the neighbours do not back counts for the given
    label instead. `support` is indexed by example (an array, or a NeighbourSupport that computes the rows asked
    for); `rows` maps these examples to its rows (a bootstrap resample)."""
    assigned = confident_assignments(labels, pred_probs, thresholds)
    if support is not None:
        off = np.nonzero((assigned >= 0) & (assigned != labels))[0]
        looked_up = support[off if rows is None else np.asarray(rows)[off]]
        unbacked = off[~backs(looked_up, labels[off], assigned[off])]
        assigned[unbacked] = labels[unbacked]
    return assigned


def confident_joint(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    thresholds: np.ndarray | None = None,
    *,
    support=None,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """C[i, j]: examples labeled i that confidently belong to j (uncalibrated); with `support`, an off-diagonal
    entry needs the neighbours' backing (see _backed_assignments)."""
    labels, pred_probs = _check(labels, pred_probs)
    k = pred_probs.shape[1]
    assigned = _backed_assignments(labels, pred_probs, support, thresholds, rows)
    keep = assigned >= 0
    joint = np.zeros((k, k), dtype=np.int64)
    np.add.at(joint, (labels[keep], assigned[keep]), 1)
    return joint


def calibrated_joint(joint: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Rescale each row of the confident joint to the number of examples given that label (the paper's
    calibration), so the joint sums to n and its off-diagonal estimates how many labels are wrong."""
    labels = np.asarray(labels, dtype=np.int64)
    given = np.bincount(labels, minlength=joint.shape[0]).astype(float)
    rows = joint.sum(axis=1, keepdims=True).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(rows > 0, joint / np.maximum(rows, 1) * given[:, None], 0.0)
    return scaled


def estimated_error_count(joint: np.ndarray, labels: np.ndarray) -> int:
    """Estimated number of label errors: the off-diagonal mass of the calibrated confident joint."""
    calibrated = calibrated_joint(joint, labels)
    return round(float(calibrated.sum() - np.trace(calibrated)))


def self_confidence(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    labels, pred_probs = _check(labels, pred_probs)
    return pred_probs[np.arange(len(labels)), labels]


def normalized_margin(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """P[y] - max_{j != y} P[j], in [-1, 1]; low means the model prefers another class."""
    labels, pred_probs = _check(labels, pred_probs)
    rows = np.arange(len(labels))
    own = pred_probs[rows, labels]
    others = pred_probs.copy()
    others[rows, labels] = -np.inf
    return own - others.max(axis=1)


def quality_scores(labels: np.ndarray, pred_probs: np.ndarray, ranking: str = "self_confidence") -> np.ndarray:
    """Label quality in [0, 1] (1 = the model fully agrees with the given label)."""
    if ranking == "self_confidence":
        return self_confidence(labels, pred_probs)
    if ranking == "normalized_margin":
        return (normalized_margin(labels, pred_probs) + 1) / 2
    raise ValueError(f"ranking must be one of {RANKINGS}")


@dataclass(frozen=True)
class LabelIssues:
    """Suspected label errors (indices into the inputs) and a full ranking of every example."""

    issue_indices: np.ndarray  # flagged by the off-diagonal confident joint, most suspicious first
    estimated_errors: int  # off-diagonal mass of the calibrated joint: how many labels are probably wrong
    ranking: np.ndarray  # every example, lowest label quality first
    quality: np.ndarray  # per example, in input order; low = suspicious
    suggested: np.ndarray  # per example: the confidently assigned class, or -1
    thresholds: np.ndarray
    joint: np.ndarray
    predicted: np.ndarray  # per example: the most probable class (argmax of the out-of-sample probabilities)
    backed: np.ndarray  # per example: its nearest labeled neighbours back the predicted class (all True without them)


def find_label_issues(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    ranking: str = "self_confidence",
    *,
    support=None,
) -> LabelIssues:
    """Confident learning: flag the off-diagonal of the confident joint, estimate how many labels are wrong from
    the calibrated joint, and rank every example by `ranking` (lowest label quality first). With `support`
    (training.ml.neighbours), only disagreements the neighbours back count: in the joint, the estimate and `backed`.

    The ranking is over all examples, not only the flagged ones: on noisy real data (CIFAR-10 embeddings) a flipped
    label often clears no class threshold at all, so restricting the ranking to the flagged set loses recall at a
    fixed review budget, while the self-confidence order still puts it near the top.
    """
    labels, pred_probs = _check(labels, pred_probs)
    thresholds = per_class_thresholds(labels, pred_probs)
    assigned = _backed_assignments(labels, pred_probs, support, thresholds)
    k = pred_probs.shape[1]
    joint = np.zeros((k, k), dtype=np.int64)
    keep = assigned >= 0
    np.add.at(joint, (labels[keep], assigned[keep]), 1)
    quality = quality_scores(labels, pred_probs, ranking)
    flagged = keep & (assigned != labels)
    # Stable order: lowest quality first, ties by index.
    order = np.lexsort((np.arange(len(labels)), quality))
    issues = order[flagged[order]]
    predicted = pred_probs.argmax(axis=1)
    return LabelIssues(
        issue_indices=issues,
        estimated_errors=estimated_error_count(joint, labels),
        ranking=order,
        quality=quality,
        suggested=assigned,
        thresholds=thresholds,
        joint=joint,
        predicted=predicted,
        backed=np.ones(len(labels), dtype=bool)
        if support is None
        else _backed_disagreements(support, labels, predicted),
    )


def _backed_disagreements(support, labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """backs() for the examples whose most probable class is not their label (False elsewhere: the review list only
    looks at those, and a lazy `support` computes only their rows)."""
    out = np.zeros(len(labels), dtype=bool)
    disagree = np.nonzero(predicted != labels)[0]
    if len(disagree):
        out[disagree] = backs(support[disagree], labels[disagree], predicted[disagree])
    return out


def recall_at_fraction(ranking: np.ndarray, true_errors: np.ndarray, fraction: float = 0.10) -> tuple[float, float]:
    """(recall, precision) of the first `fraction` of a ranking against a boolean mask of true errors."""
    true_errors = np.asarray(true_errors, dtype=bool)
    budget = max(1, round(fraction * len(true_errors)))
    top = np.asarray(ranking)[:budget]
    hits = int(true_errors[top].sum())
    total = int(true_errors.sum())
    return (hits / total if total else 0.0), hits / budget


def cross_val_pred_probs(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int | None = None,
    folds: int = 5,
    C: float = 1.0,
    seed: int = 0,
    max_iter: int = 500,
    repeats: int = 1,
    on_fold: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Out-of-sample probabilities from K-fold cross-validation of an L2-regularised logistic-regression head.

    Features are standardised inside each fold (fit on the training part only). Folds are stratified whenever the
    largest class has at least `folds` examples (a smaller class is spread as far as it goes), else plain shuffled
    K-fold; a class absent from a training fold gets probability 0 in that fold's predictions. Stratified rather
    than plain folds once any class is small: with the strong L2, a fold's class shares decide its predictions, and
    plain folds make them the opposite of the test part's (demo digits, 6 labels in each of 9 classes and 1 in a
    tenth, 5 draws: out-of-fold accuracy 0.59 plain, 0.68 stratified; the head trained on those labels scores 0.77 on
    the other images). With `repeats` > 1 the probabilities are averaged over that many different fold splits
    (seeds seed, seed + 1, ...), which steadies them: on all-correct digits 3 repeats listed 16 labels instead of
    20, with the same recall of injected errors.

    `on_fold(done, total)` after each fold's fit: fold_count(n, folds) x `repeats` in all, `done` counting from 1.
    """
    if repeats > 1:
        k = fold_count(len(labels), folds)
        runs = [
            cross_val_pred_probs(
                features, labels, n_classes, folds, C, seed + r, max_iter,
                on_fold=None if on_fold is None else (lambda d, _t, r=r: on_fold(r * k + d, repeats * k)),
            )
            for r in range(repeats)
        ]  # fmt: skip
        return np.mean(runs, axis=0)
    from sklearn.model_selection import KFold, StratifiedKFold
    from threadpoolctl import threadpool_limits

    features = np.asarray(features, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    n_classes = int(n_classes if n_classes is not None else labels.max() + 1)
    n = len(labels)
    if n < 2:
        raise ValueError("need at least two labeled examples")
    folds = fold_count(n, folds)
    counts = np.bincount(labels, minlength=n_classes)
    present = counts[counts > 0]
    if present.max() >= folds:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    out = np.zeros((n, n_classes), dtype=np.float64)
    # One BLAS thread: these fits are small, and on a busy 2-core worker the default thread pool spun for 10x
    # longer (1,440 x 1,280 digits embeddings: 2.8 s per fit with the pool, 0.21 s on one thread).
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        # "The least populated class in y has only k members": expected, see above.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        _fit_folds(splitter, features, labels, out, C, max_iter, on_fold)
    return out


def fold_count(n: int, folds: int) -> int:
    """The folds cross_val_pred_probs makes of `n` labeled examples when asked for `folds`."""
    return max(2, min(folds, n))


def _fit_folds(
    splitter, features: np.ndarray, labels: np.ndarray, out: np.ndarray, C: float, max_iter: int, on_fold=None
) -> None:
    from sklearn.linear_model import LogisticRegression

    total = splitter.get_n_splits()
    for f, (train_idx, test_idx) in enumerate(splitter.split(features, labels), start=1):
        y_train = labels[train_idx]
        seen = np.unique(y_train)
        if len(seen) == 1:
            out[np.ix_(test_idx, seen)] = 1.0
        else:
            train, mean, std = standardized_fold(features, train_idx)
            model = LogisticRegression(C=C, max_iter=max_iter).fit(train, y_train)
            del train  # before the test part is scaled: one copy at a time
            out[np.ix_(test_idx, model.classes_)] = model.predict_proba((features[test_idx] - mean) / std)
        if on_fold is not None:
            on_fold(f, total)


def standardized_fold(features: np.ndarray, train_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(training part, mean, std): the fold's training part standardised in place (the one copy of it) with its own
    column means and deviations, which then scale the test part; a constant column is left unscaled, as
    StandardScaler does."""
    train = features[train_idx]
    mean, std = column_stats(train)
    std[std < 10 * np.finfo(np.float64).eps] = 1.0
    mean, std = mean.astype(train.dtype), std.astype(train.dtype)
    train -= mean
    train /= std
    return train, mean, std


def suspects(issues: LabelIssues, labels: np.ndarray) -> np.ndarray:
    """The review list: among the examples whose most probable class is not their given label (and, with neighbour
    support, is backed by the neighbours), the first max(flagged, estimated errors) of the ranking.

    The calibrated joint says how many labels are probably wrong; the ranking says which. An example the model
    agrees with is never listed, however low its self-confidence: a reviewer shown "given 1, model says 1" learns
    nothing, and on digits such rows were the padding that turned the list into false alarms.
    """
    labels = np.asarray(labels, dtype=np.int64)
    count = max(len(issues.issue_indices), issues.estimated_errors)
    order = issues.ranking
    disagree = order[(issues.predicted[order] != labels[order]) & issues.backed[order]]
    return disagree[:count]


def error_share_interval(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    *,
    level: float = 0.95,
    rounds: int = 200,
    seed: int = 0,
    support=None,
) -> tuple[float, float, float]:
    """(estimated share of wrong labels, low, high): the calibrated confident joint's off-diagonal share, with a
    percentile bootstrap interval over the examples (thresholds and joint recomputed on each resample).

    The interval covers the sampling of the labeled set, not the variation of the cross-validated model.
    """
    labels, pred_probs = _check(labels, pred_probs)
    n = len(labels)
    if n == 0:
        return 0.0, 0.0, 1.0
    share = estimated_error_count(confident_joint(labels, pred_probs, support=support), labels)
    share /= n
    rng = np.random.default_rng(seed)
    shares = np.empty(rounds)
    for r in range(rounds):
        pick = rng.integers(0, n, n)
        y, p = labels[pick], pred_probs[pick]
        joint = confident_joint(y, p, support=support, rows=pick)
        calibrated = calibrated_joint(joint, y)
        shares[r] = (calibrated.sum() - np.trace(calibrated)) / n
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(shares, [tail, 100 - tail])
    low, high = widened_to_binomial(share, float(low), float(high), n)
    return float(share), float(max(0.0, min(low, share))), float(min(1.0, max(high, share)))
