"""Find suspected label errors in a project: cached embeddings -> K-fold out-of-sample probabilities ->
confident learning -> ReviewTask rows (reason label_error) ranked by score.

Runs inside a Celery task or a command (it imports torch through training.ml.embeddings when embeddings are
missing from the feature store). Probabilities come from 5-fold cross-validation of an L2-regularised
logistic-regression head on standardised embeddings (training.ml.confident.cross_val_pred_probs), so every
label is judged by a model that never saw it. Single-label projects only: a multi-label project is reported as
skipped. Items whose label a reviewer already set (source review) still train the folds but are never flagged.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from django.db.models import Max

from labeling.models import Job, LabelSource, Project, ResolvedLabel
from labeling.services import jobs as job_services
from labeling.services.reviews import live_annotations, review_tasks_label_errors_set
from training.services.rounds import round_config
from training.services.runs import project_cache_dir
from training.services.snapshot import label_snapshot

MIN_LABELS = 20
# Strong L2 on standardised embeddings: best out-of-sample accuracy on CIFAR-10 Lite0 features (bench/label_errors.py).
DEFAULT_C = 0.003

Progress = Callable[[int, int, str], None]


def labeled_embeddings(*, project: Project, progress: Progress | None = None):
    """(item ids, features [n, d], label indices, class order) for every single-label resolved item.

    Embeddings missing from the project's feature store are computed (and cached) first.
    """
    from training.ml.embeddings import EmbeddingStore

    snap = label_snapshot(project=project)
    rows = [(item_id, path, idx) for item_id, path, idx in (*snap.train, *snap.holdout) if len(idx) == 1]
    ids = [item_id for item_id, _, _ in rows]
    paths = [path for _, path, _ in rows]
    labels = np.array([idx[0] for _, _, idx in rows], dtype=np.int64)
    cfg = round_config(project=project, classes=snap.classes, mode="head")
    store = EmbeddingStore(project_cache_dir(project))
    if ids:
        store.compute(ids, paths, cfg, progress=(lambda d, t: progress(d, t, "embeddings")) if progress else None)
    features = store.get(ids, cfg) if ids else np.zeros((0, 0), dtype=np.float32)
    return ids, features, labels, snap.classes


def label_errors_find(
    *, project: Project, job: Job | None = None, folds: int = 5, C: float = DEFAULT_C, seed: int = 0
) -> dict:
    """Rank the project's labels by how likely they are wrong and (re)write the open label-error review tasks."""
    from training.ml.confident import cross_val_pred_probs, find_label_issues, suspects

    started = time.monotonic()

    def progress(done: int, total: int, stage: str) -> None:
        if job is not None:
            job_services.job_progress(job=job, done=done, total=total, message=stage)

    if project.is_multi_label:
        return {"status": "skipped", "reason": "label-error search supports single-label projects only"}
    ids, features, labels, classes = labeled_embeddings(project=project, progress=progress)
    present = np.unique(labels)
    if len(ids) < MIN_LABELS or len(present) < 2:
        return {
            "status": "skipped",
            "reason": f"needs at least {MIN_LABELS} labels in 2+ classes (has {len(ids)} in {len(present)})",
        }
    progress(0, 1, "cross-validation")
    probs = cross_val_pred_probs(features, labels, n_classes=len(classes.ids), folds=folds, C=C, seed=seed)
    issues = find_label_issues(labels, probs)
    progress(1, 1, "writing review tasks")

    flagged = [int(i) for i in suspects(issues)]
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
    scores = {
        ids[i]: (latest.get(ids[i]), round(float(1.0 - issues.quality[i]), 6))
        for i in flagged
        if ids[i] not in reviewed
    }
    open_count = review_tasks_label_errors_set(project=project, scores=scores)
    return {
        "status": "ok",
        "labels": len(ids),
        "suspects": open_count,
        "flagged": len(flagged),
        "estimated_errors": issues.estimated_errors,
        "already_reviewed": len(flagged) - open_count,
        "seconds": round(time.monotonic() - started, 2),
    }
