"""Find suspected label errors in a project: cached embeddings -> K-fold out-of-sample probabilities ->
confident learning -> ReviewTask rows (reason label_error) ranked by score.

Runs inside a Celery task or a command (it imports torch through training.ml.embeddings when embeddings are
missing from the feature store). Probabilities come from 5-fold cross-validation of an L2-regularised
logistic-regression head on standardised embeddings, averaged over REPEATS fold splits
(training.ml.confident.cross_val_pred_probs), so every label is judged by a model that never saw it. A label is
a suspect only where that model's most probable class is another one and the label's most similar labeled images
back it (training.ml.confident.backs). Single-label projects only: a multi-label
project is reported as skipped. Items whose label a reviewer already set (source review) still train the folds but
are never flagged. Each search is stored (training.models.LabelErrorSearch) with the estimated share of wrong
labels and its bootstrap interval. While the holdout is small, the search also reports the out-of-fold accuracy and
macro-F1 over every labeled item, with n and 95 % intervals (`cross_validated` in its result, which the progress Job
stores): the model pages show it beside the holdout's figures. That estimate cross-validates the head a version
trains (training.ml.heads.cross_val_head), not the search's logistic regression, which is tuned to rank labels.
With it comes the estimated accuracy on the open images (`open_images`, training.ml.open_accuracy): the labels the
queue asked for are the hard images, so the out-of-fold accuracy on them reads below the model on the rest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from django.db.models import Max

from labeling.constants import Progress
from labeling.models import Job, LabelSource, Project, ResolvedLabel
from labeling.services import jobs as job_services
from labeling.services.reviews import live_annotations, review_tasks_label_errors_set
from training.constants import project_cache_dir
from training.ml.intervals import SMALL_HOLDOUT
from training.ml.label_search import DEFAULT_C, MIN_LABELS_PER_CLASS, REPEAT_BUDGET, REPEATS
from training.models import LabelErrorStatus, RunMode
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


def _thin_share(labels: np.ndarray, folds: int) -> float:
    """The share of labels whose class has fewer than `folds` labels (0 with no labels)."""
    labels = np.asarray(labels, dtype=np.int64)
    return float((np.bincount(labels)[labels] < folds).mean()) if len(labels) else 0.0


def _cross_validated(
    features: np.ndarray, labels: np.ndarray, names: list[str], *, folds: int, seed: int, project: Project,
    snap: LabelSnapshot,
) -> dict | None:  # fmt: skip
    """Out-of-fold accuracy and macro-F1 over every labeled item (the model pages' cross-validated estimate), with
    n and 95 % intervals. Each fold trains the head a version trains (training.ml.heads.cross_val_head): the
    project's L2, self-trained on a sample of the pool (pool_sample) as a version is on the whole pool."""
    from training.ml.evaluate import prediction_summary
    from training.ml.heads import cross_val_head
    from training.ml.open_accuracy import open_accuracy

    if len(labels) < CROSS_VALIDATED_MIN_LABELS or len(np.unique(labels)) < 2:
        return None
    if _thin_share(labels, folds) > CROSS_VALIDATED_MAX_THIN_SHARE:
        return None
    pool = pool_sample(project=project, snap=snap, seed=seed)  # only once the estimate will be made
    cv = cross_val_head(features, labels, len(names), folds=folds, seed=seed, l2=pool.l2, unlabeled=pool.features)
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


def labeled_embeddings(*, project: Project, progress: Progress | None = None, snap: LabelSnapshot | None = None):
    """(item ids, features [n, d], label indices, class order) for every single-label resolved item.

    Embeddings missing from the project's feature store are computed (and cached) first.
    """
    from training.ml.embeddings import EmbeddingStore

    snap = snap or label_snapshot(project=project)
    rows = [(item_id, path, idx) for item_id, path, idx in (*snap.train, *snap.holdout) if len(idx) == 1]
    ids = [item_id for item_id, _, _ in rows]
    paths = [path for _, path, _ in rows]
    labels = np.array([idx[0] for _, _, idx in rows], dtype=np.int64)
    cfg = round_config(project=project, classes=snap.classes, mode=RunMode.HEAD)
    store = EmbeddingStore(project_cache_dir(project))
    if ids:
        store.compute(ids, paths, cfg, progress=(lambda d, t: progress(d, t, "embeddings")) if progress else None)
    features = store.get(ids, cfg) if ids else np.zeros((0, 0), dtype=np.float32)
    return ids, features, labels, snap.classes


def _record(
    *, project: Project, started: float, status: str, reason: str = "", cross_validated: dict | None = None, **fields
) -> dict:
    """Store the search and return the summary the job and the task report (without the per-item details)."""
    from training.models import LabelErrorSearch

    seconds = round(time.monotonic() - started, 2)
    search = LabelErrorSearch.objects.create(
        project=project,
        status=status,
        reason=reason[:500],
        min_per_class=MIN_LABELS_PER_CLASS,
        seconds=seconds,
        **fields,
    )
    summary = {"status": status, "search": search.pk, "labels": search.labels, "seconds": seconds}
    if reason:
        summary["reason"] = reason
    if cross_validated is not None:
        summary["cross_validated"] = cross_validated
    return summary


def label_errors_find(
    *,
    project: Project,
    job: Job | None = None,
    folds: int = 5,
    C: float = DEFAULT_C,
    seed: int = 0,
    on_progress: Progress | None = None,
) -> dict:
    """Rank the project's labels by how likely they are wrong, (re)write the open label-error review tasks and
    store the search (LabelErrorSearch) that the page headlines.

    Only classes with at least MIN_LABELS_PER_CLASS labels are judged (their labels, and only them as the
    model's alternatives); with fewer than two such classes, or a cross-validated model that agrees with too few
    of the labels (training.ml.label_search.judge), nothing is flagged and the open suspects are withdrawn: the
    page says why. Progress goes to the `job` (the page's bar) and to `on_progress` (the command's).
    """
    from training.ml.confident import cross_val_pred_probs, error_share_interval
    from training.ml.label_search import judge

    started = time.monotonic()

    def progress(done: int, total: int, stage: str) -> None:
        if job is not None:
            job_services.job_progress(job=job, done=done, total=total, message=stage)
        if on_progress is not None:
            on_progress(done, total, stage)

    if project.is_multi_label:
        review_tasks_label_errors_set(project=project, scores={})
        return _record(
            project=project,
            started=started,
            status=LabelErrorStatus.SKIPPED,
            reason="The label-error search supports single-label projects only.",
        )
    snap = label_snapshot(project=project)
    classes = snap.classes
    # Counted before any embedding is computed: a project with too few labels is answered at once.
    counts = np.zeros(len(classes.ids), dtype=np.int64)
    for _, _, idx in (*snap.train, *snap.holdout):
        if len(idx) == 1:
            counts[idx[0]] += 1
    judged = np.nonzero(counts >= MIN_LABELS_PER_CLASS)[0]
    not_checked = [
        [classes.names[c], int(counts[c])] for c in np.nonzero((counts > 0) & (counts < MIN_LABELS_PER_CLASS))[0]
    ]
    if len(judged) < 2:
        review_tasks_label_errors_set(project=project, scores={})
        cross_validated = None
        if counts.sum() >= CROSS_VALIDATED_MIN_LABELS and (counts > 0).sum() >= 2:
            # Too few to judge labels, but a new project's small holdout needs this estimate most.
            _, features, labels, _ = labeled_embeddings(project=project, progress=progress, snap=snap)
            progress(0, 1, "cross-validation")
            cross_validated = _cross_validated(
                features, labels, classes.names, folds=folds, seed=seed, project=project, snap=snap
            )
        return _record(
            cross_validated=cross_validated,
            project=project,
            started=started,
            status=LabelErrorStatus.TOO_FEW,
            reason=f"Too few labels to judge: the search needs at least {MIN_LABELS_PER_CLASS} labels in each of "
            f"two or more classes, and {len(judged)} class{'' if len(judged) == 1 else 'es'} of "
            f"{int((counts > 0).sum())} labeled ha{'s' if len(judged) == 1 else 've'} that many.",
            labels=int(counts.sum()),
            not_checked=not_checked,
        )
    ids, features, labels, classes = labeled_embeddings(project=project, progress=progress, snap=snap)
    all_features, all_labels = features, labels
    # Labels of classes below the minimum are left out entirely: they neither get judged nor serve as the
    # model's alternative for another label.
    keep = np.isin(labels, judged)
    remap = np.full(len(classes.ids), -1, dtype=np.int64)
    remap[judged] = np.arange(len(judged))
    ids = [item_id for item_id, k in zip(ids, keep, strict=True) if k]
    # Indexing copies: at 100,000 x 1,280 that is 500 MB more while the cross-validation runs, for nothing when
    # every labeled class is judged.
    features, y = (features, remap[labels]) if keep.all() else (features[keep], remap[labels[keep]])
    class_ids = [classes.ids[c] for c in judged]

    progress(0, 1, "cross-validation")
    repeats = REPEATS if len(y) * len(judged) <= REPEAT_BUDGET else 1
    probs = cross_val_pred_probs(features, y, n_classes=len(judged), folds=folds, C=C, seed=seed, repeats=repeats)
    predicted = probs.argmax(axis=1)
    # Over every labeled item, with the head a version trains: only while the holdout is small enough for the pages
    # to show the estimate.
    cross_validated = None
    if len(snap.holdout) < SMALL_HOLDOUT:
        cross_validated = _cross_validated(
            all_features, all_labels, classes.names, folds=folds, seed=seed, project=project, snap=snap
        )
    # The agreement gate, then confident learning where the label's nearest labeled neighbours back a disagreement
    # (training.ml.label_search.judge).
    verdict = judge(features, y, probs)
    agreement = verdict.agreement
    if verdict.weak:
        review_tasks_label_errors_set(project=project, scores={})
        return _record(
            project=project,
            started=started,
            status=LabelErrorStatus.WEAK,
            cross_validated=cross_validated,
            reason=f"The model is too weak to judge labels yet: out of sample it agrees with only "
            f"{agreement:.0%} of them (the search needs {verdict.needed:.0%} here). Label more, then search again.",
            labels=len(ids),
            not_checked=not_checked,
            agreement=agreement,
        )
    support, issues = verdict.support, verdict.issues
    share, low, high = error_share_interval(y, probs, seed=seed, support=support)
    progress(1, 1, "writing review tasks")
    flagged = [int(i) for i in verdict.listed]
    item_ids = [ids[i] for i in flagged]
    reviewed = set(
        ResolvedLabel.objects.filter(item_id__in=item_ids, source=LabelSource.REVIEW).values_list("item_id", flat=True)
    )
    latest = dict(
        live_annotations(project=project)
        .filter(item_id__in=item_ids)
        .values("item_id")
        .annotate(last=Max("id"))
        .values_list("item_id", "last")
    )
    near = support[np.asarray(flagged, dtype=np.int64)]  # rows the search already computed
    scores, details = {}, {}
    for j, i in enumerate(flagged):
        item_id = ids[i]
        if item_id in reviewed:
            continue
        scores[item_id] = (latest.get(item_id), round(float(1.0 - issues.quality[i]), 6))
        details[str(item_id)] = [
            class_ids[y[i]],
            class_ids[predicted[i]],
            round(float(probs[i, predicted[i]]), 4),
            round(float(probs[i, y[i]]), 4),
            round(float(near[j, predicted[i]]), 2),
            round(float(near[j, y[i]]), 2),
        ]
    open_count = review_tasks_label_errors_set(project=project, scores=scores)
    summary = _record(
        project=project,
        started=started,
        status=LabelErrorStatus.OK,
        cross_validated=cross_validated,
        labels=len(ids),
        not_checked=not_checked,
        agreement=agreement,
        estimated_share=share,
        share_low=low,
        share_high=high,
        flagged=open_count,
        suspects=details,
    )
    return {
        **summary,
        "suspects": open_count,
        "flagged": len(flagged),
        "estimated_errors": issues.estimated_errors,
        "estimated_share": round(share, 4),
        "share_interval": [round(low, 4), round(high, 4)],
        "agreement": round(agreement, 4),
        "already_reviewed": len(flagged) - open_count,
        "not_checked": len(not_checked),
    }
