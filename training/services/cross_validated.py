"""The cross-validated estimate the model pages show beside a small holdout: every labeled item predicted by a head
trained on the other folds, the head a version trains (training.ml.heads.cross_val_head), with n and 95 % intervals.

The label-error search computes it after each new version (training.services.label_errors): single-label projects
get out-of-fold accuracy and macro-F1 and the estimated accuracy on the open images (training.ml.open_accuracy);
multi-label projects, which the search itself does not judge, get the figures their holdout shows (subset and
Hamming accuracy, macro- and micro-F1), at the threshold a version is evaluated at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from labeling.constants import Progress
from labeling.models import Project
from training.constants import project_cache_dir
from training.models import RunMode
from training.services.rounds import round_config
from training.services.snapshot import LabelSnapshot, label_snapshot

# The cross-validated estimate needs a couple of labels per fold and two classes; below that it is not reported.
CROSS_VALIDATED_MIN_LABELS = 10
# Nor is it while more than this share of the labels sit in classes with fewer labels than folds. With 2 to 4 labels
# per class each fold trains without half or more of a class's examples, and the estimate reads far below the model it
# stands for, even with the version's own head (bench/cv_estimate.py, digits, 3 draws: 0.43 against 0.65 at 2 per
# class, 0.68 against 0.77 at 3). From 5 per class (stratified folds) it is within 3 points (0.82 against 0.85 at 5,
# 0.88 / 0.90 at 10, 0.93 / 0.92 at 20, 5 draws). A new project's first versions show why there is no estimate instead
# of a figure 20 points low.
CROSS_VALIDATED_MAX_THIN_SHARE = 0.1
# Each fold's head self-trains on at most this many open items (a seeded sample of those already embedded), as a
# version's head does on the whole pool: without that, and with the search's plain logistic regression, the estimate
# read 20 points below the model on the digits at 5 labels per class (bench/cv_estimate.py).
CROSS_VALIDATED_POOL_MAX = 5000


def fold_stage(at: int, folds: int, repeats: int, what: str = "") -> str:
    """A label-error search's stage while `at` of its folds x `repeats` fits are done: the fold now running, as the
    page's bar and the command's say it ("cross-validating 12 classes: fold 3 of 5 (split 1 of 3)")."""
    stage = f"cross-validating{what}: fold {at % folds + 1} of {folds}"
    return stage if repeats == 1 else f"{stage} (split {at // folds + 1} of {repeats})"


def estimate_stage(fold: int, folds: int) -> str:
    """The search's stage while the cross-validated estimate's fold `fold` (from 1) of `folds` runs, as the page's
    bar and the command's say it ("cross-validated estimate: fold 2 of 5")."""
    return f"cross-validated estimate: fold {fold} of {folds}"


def estimate_folds(n: int, folds: int) -> int:
    """How many folds the estimate over `n` labels asks cross_val_head for (as it clamps `folds`)."""
    return max(2, min(folds, n))


def _thin_share(labels: np.ndarray, folds: int) -> float:
    """The share of labels whose class has fewer than `folds` labels (0 with no labels)."""
    labels = np.asarray(labels, dtype=np.int64)
    return float((np.bincount(labels)[labels] < folds).mean()) if len(labels) else 0.0


def single_label_estimate(
    features: np.ndarray, labels: np.ndarray, names: list[str], *, folds: int, seed: int, project: Project,
    snap: LabelSnapshot, on_fold: Callable[[int, int], None] | None = None,
) -> dict | None:  # fmt: skip
    """Out-of-fold accuracy and macro-F1 over every labeled item (the model pages' cross-validated estimate), with
    n and 95 % intervals. Each fold trains the head a version trains (training.ml.heads.cross_val_head): the
    project's L2, self-trained on a sample of the pool (pool_sample) as a version is on the whole pool.
    `on_fold(done, total)` after each fold's head (cross_val_head's), for the search's bar."""
    from training.ml.evaluate import prediction_summary
    from training.ml.heads import cross_val_head
    from training.ml.open_accuracy import open_accuracy

    if len(labels) < CROSS_VALIDATED_MIN_LABELS or len(np.unique(labels)) < 2:
        return None
    if _thin_share(labels, folds) > CROSS_VALIDATED_MAX_THIN_SHARE:
        return None
    pool = pool_sample(project=project, snap=snap, seed=seed)  # only once the estimate will be made
    cv = cross_val_head(features, labels, len(names), folds=folds, seed=seed, l2=pool.l2, unlabeled=pool.features,
                        on_fold=on_fold)  # fmt: skip
    out = {**prediction_summary(labels, cv.probs.argmax(axis=1), names), "folds": folds, "pool": pool.size}
    if cv.unlabeled_confidence is not None:
        out["open_images"] = {**open_accuracy(cv.probs, labels, cv.unlabeled_confidence, seed=seed), "of": pool.of}
    return out


@dataclass(frozen=True)
class PoolSample:
    """What the cross-validated estimate's heads train with besides the labels: the project's head L2, and the
    embeddings of up to CROSS_VALIDATED_POOL_MAX open items to self-train on (None when the rounds do not)."""

    l2: float | None
    features: np.ndarray | None
    of: int = 0  # open items in the snapshot (the sample is drawn from those already embedded)

    @property
    def size(self) -> int:
        return 0 if self.features is None else len(self.features)


def pool_sample(*, project: Project, snap: LabelSnapshot, seed: int) -> PoolSample:
    """The cross-validated estimate's pool: a seeded sample of up to CROSS_VALIDATED_POOL_MAX open items among those
    the feature store already holds (every round embeds the whole pool, so after a round that is all of them;
    nothing is embedded for it). No pool when the project's rounds do not self-train."""
    from training.ml.embeddings import EmbeddingStore

    cfg = round_config(project=project, classes=snap.classes, mode=RunMode.HEAD)
    if not cfg.self_training or not snap.pool:
        return PoolSample(l2=cfg.head_l2, features=None)
    store = EmbeddingStore(project_cache_dir(project))
    ids = [item_id for item_id, _ in snap.pool]
    missing = set(store.missing(ids, cfg))
    cached = [item_id for item_id in ids if item_id not in missing]
    if not cached:
        return PoolSample(l2=cfg.head_l2, features=None)
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(cached), size=min(len(cached), CROSS_VALIDATED_POOL_MAX), replace=False))
    return PoolSample(l2=cfg.head_l2, features=store.get([cached[i] for i in take], cfg), of=len(ids))


def embedded_rows(project: Project, snap: LabelSnapshot, rows: list, progress: Progress | None) -> np.ndarray:
    """Features [n, d] of the snapshot rows (item id, path, class indices), computed into the project's feature
    store first where missing."""
    from training.ml.embeddings import EmbeddingStore

    ids, paths = [item_id for item_id, _, _ in rows], [path for _, path, _ in rows]
    cfg = round_config(project=project, classes=snap.classes, mode=RunMode.HEAD)
    store = EmbeddingStore(project_cache_dir(project))
    if not ids:
        return np.zeros((0, 0), dtype=np.float32)
    store.compute(ids, paths, cfg, progress=(lambda d, t: progress(d, t, "embeddings")) if progress else None)
    return store.get(ids, cfg)


def labeled_embeddings(*, project: Project, progress: Progress | None = None, snap: LabelSnapshot | None = None):
    """(item ids, features [n, d], label indices, class order) for every single-label resolved item.

    Embeddings missing from the project's feature store are computed (and cached) first.
    """
    snap = snap or label_snapshot(project=project)
    rows = [(item_id, path, idx) for item_id, path, idx in (*snap.train, *snap.holdout) if len(idx) == 1]
    labels = np.array([idx[0] for _, _, idx in rows], dtype=np.int64)
    return [item_id for item_id, _, _ in rows], embedded_rows(project, snap, rows, progress), labels, snap.classes


def multi_label_estimate(
    *, project: Project, snap: LabelSnapshot, folds: int, seed: int, progress: Progress | None = None
) -> dict | None:
    """The out-of-fold figures of a multi-label project over every labeled item (an item labeled with no class
    included): subset and Hamming accuracy, macro-F1 over the classes that occur and micro-F1, with n and 95 %
    intervals, at the version's threshold. None below CROSS_VALIDATED_MIN_LABELS items, with fewer than two classes
    in use, or while more than CROSS_VALIDATED_MAX_THIN_SHARE of the labels sit in classes with fewer labels than
    folds (as for single-label projects). A multi-label version's head does not self-train, so neither do the
    folds' (pool 0). `progress` hears the embeddings, then one step per fold ("cross-validated estimate: fold 2 of
    5")."""
    from training.ml.evaluate import evaluate
    from training.ml.heads import cross_val_head

    rows = [*snap.train, *snap.holdout]
    targets = [list(idx) for _, _, idx in rows]
    used = np.asarray([c for t in targets for c in t], dtype=np.int64)
    if (
        len(rows) < CROSS_VALIDATED_MIN_LABELS
        or len(np.unique(used)) < 2
        or _thin_share(used, folds) > (CROSS_VALIDATED_MAX_THIN_SHARE)
    ):
        return None
    features = embedded_rows(project, snap, rows, progress)
    on_fold = None
    if progress is not None:
        progress(0, estimate_folds(len(rows), folds), estimate_stage(1, estimate_folds(len(rows), folds)))

        def on_fold(done: int, total: int) -> None:
            if done < total:  # the last fold's end is the next stage's start
                progress(done, total, estimate_stage(done + 1, total))

    cfg = round_config(project=project, classes=snap.classes, mode=RunMode.HEAD)
    cv = cross_val_head(features, targets, len(snap.classes.names), folds=folds, seed=seed, l2=cfg.head_l2,
                        multi_label=True, on_fold=on_fold)  # fmt: skip
    m = evaluate(cv.probs, targets, snap.classes.names, multi_label=True)
    kept = ("n", "multi_label", "accuracy", "subset_accuracy", "hamming_accuracy", "hamming_all_absent", "macro_f1",
            "micro_f1", "no_support", "intervals", "threshold")  # fmt: skip
    return {**{k: m[k] for k in kept}, "folds": folds, "pool": 0}
