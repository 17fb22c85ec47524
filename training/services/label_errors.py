"""Find suspected label errors in a project: cached embeddings -> K-fold out-of-sample probabilities ->
confident learning -> ReviewTask rows (reason label_error) ranked by score.

Runs inside a Celery task or a command (it imports torch through training.ml.embeddings when embeddings are
missing from the feature store). Probabilities come from 5-fold cross-validation of an L2-regularised
logistic-regression head on standardised embeddings, averaged over REPEATS fold splits
(training.ml.confident.cross_val_pred_probs), so every label is judged by a model that never saw it. A label is
a suspect only where that model's most probable class is another one and the label's most similar labeled images
back it (training.ml.confident.backs). A multi-label project's labels are judged one class decision at a time
(training.services.label_errors_multi).
Items whose label a reviewer already set (source review) still train the folds but are never flagged. Each search is
stored (training.models.LabelErrorSearch) with the estimated share of wrong labels and its bootstrap interval.
While the holdout is small, the search also reports the cross-validated estimate over every labeled item, with n and
95 % intervals (`cross_validated` in its result, which the progress Job stores): the
model pages show it beside the holdout's figures. That estimate (training.services.cross_validated) cross-validates
the head a version trains, not the search's logistic regression, which is tuned to rank labels.

Two searches can run at once (each new version queues one, and two `default` workers take them), and the older can
end last. A search that ends after one started later has ended keeps its own results (its LabelErrorSearch, its
version's estimate) but leaves the open suspects to that newer search, which judged newer labels: the suspects a
reviewer works are always those of the newest search started (labeling.selectors.training_seam
.latest_label_error_search, which the review page headlines). The rule goes by start, not by the active version: a
search judges the labels as they are, whichever version is active, so after going back to an older version a new
search's suspects are still the ones worth working.
"""

from __future__ import annotations

import time
from datetime import datetime

import numpy as np
from django.db import transaction
from django.utils import timezone

from labeling.constants import Progress
from labeling.models import Job, LabelSource, Project, ResolvedLabel
from labeling.selectors.training_seam import label_error_search_starts
from labeling.services import jobs as job_services
from labeling.services.reviews import review_tasks_label_errors_set
from training.ml.intervals import SMALL_HOLDOUT
from training.ml.label_search import DEFAULT_C, MIN_LABELS_PER_CLASS, REPEAT_BUDGET, REPEATS
from training.models import LabelErrorStatus
from training.services.cross_validated import (
    CROSS_VALIDATED_MIN_LABELS,
    estimate_folds,
    estimate_stage,
    fold_stage,
    labeled_embeddings,
    single_label_estimate,
)
from training.services.label_errors_multi import multi_label_search
from training.services.progress_gate import ProgressGate
from training.services.snapshot import label_snapshot

__all__ = ["label_errors_find", "labeled_embeddings"]


class _SearchProgress:
    """The search's Progress: the command's bar (`also`) hears every call; the job row is written when the
    ProgressGate says (label change, stage end, else at most every progress_gate.WRITE_INTERVAL seconds: the
    embeddings report every batch). Each cross-validation fold has its own label, so those writes number folds x
    fold splits."""

    clock = staticmethod(time.monotonic)

    def __init__(self, job: Job | None, also: Progress | None):
        self.job, self.also = job, also
        # Reads self.clock on every report, so a test may swap the clock after construction.
        self.gate = ProgressGate(clock=lambda: self.clock())

    def __call__(self, done: int, total: int, message: str = "") -> None:
        if self.job is not None and self.gate.due(message, done, total):
            job_services.job_progress(job=self.job, done=done, total=total, message=message)
        if self.also is not None:
            self.also(done, total, message)


def _estimate_folds(progress: Progress, first: int, steps: int):
    """The cross-validated estimate's on_fold: one bar step per fold from step `first` of `steps`, naming the fold
    that runs next; the last fold's end is the next stage's start."""

    def on_fold(done: int, total: int) -> None:
        if done < total:
            progress(min(first + done, steps - 1), steps, estimate_stage(done + 1, total))

    return on_fold


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


def _store(
    *, project: Project, began: datetime, started: float, scores: dict[int, float], **fields
) -> tuple[dict, set[int]]:
    """Write the open suspects (`scores`: item id -> score; {} withdraws them) and store the search, both under the
    project's row lock, so that of two searches ending at once one writes after the other has stored. A search that
    started at `began`, where one started after it has already been stored, leaves the open suspects as that one
    wrote them and stores its own (its summary names that search, `superseded_by`). `fields["suspects"]` (the
    suspects' details) keeps the items still open to a reviewer. Returns the summary and those items."""
    with transaction.atomic():
        job_services.project_lock(project_id=project.pk)
        starts = label_error_search_starts(project_id=project.pk, ended_since=began)
        newer = max(((start, pk) for pk, start in starts.items() if start > began), default=None)
        if newer is None:
            opened = review_tasks_label_errors_set(project=project, scores=scores)  # settled items are left out
        else:  # as review_tasks_label_errors_set would leave them, without writing
            settled = ResolvedLabel.objects.filter(item_id__in=list(scores), source=LabelSource.REVIEW)
            opened = set(scores) - set(settled.values_list("item_id", flat=True))
        if "suspects" in fields:
            fields["suspects"] = {key: row for key, row in fields["suspects"].items() if int(key) in opened}
            fields["flagged"] = len(opened)
        summary = _record(project=project, started=started, **fields)
    if newer is not None:
        summary["superseded_by"] = newer[1]
    return summary, opened


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
    store the search (LabelErrorSearch) that the page headlines; a search that ends after a newer one leaves the
    open tasks to it (_store). The search starts when its `job` started (now without one).

    Only classes with at least MIN_LABELS_PER_CLASS labels are judged (their labels, and only them as the
    model's alternatives); with fewer than two such classes, or a cross-validated model that agrees with too few
    of the labels (training.ml.label_search.judge), nothing is flagged and the open suspects are withdrawn: the
    page says why. Progress goes to the `job` (the page's bar) and to `on_progress` (the command's), fold by fold
    through the cross-validation ("cross-validating: fold 3 of 5"); _SearchProgress says how often the job is written.
    """
    from training.ml.confident import cross_val_pred_probs, error_share_interval, fold_count
    from training.ml.label_search import judge

    started = time.monotonic()
    began = job.started_at if job is not None and job.started_at is not None else timezone.now()
    progress = _SearchProgress(job, on_progress)

    snap = label_snapshot(project=project)
    if project.is_multi_label:
        outcome = multi_label_search(project=project, snap=snap, folds=folds, C=C, seed=seed, progress=progress)
        scores, decisions = outcome.pop("scores", {}), outcome.pop("decisions_flagged", None)
        summary, opened = _store(project=project, began=began, started=started, scores=scores, **outcome)
        if summary["status"] != LabelErrorStatus.OK:
            return summary
        return {
            **summary,
            "decisions_flagged": decisions,
            "already_reviewed": len(scores) - len(opened),
            "suspects": len(opened),
            "estimated_share": round(outcome["estimated_share"], 4),
            "share_interval": [round(outcome["share_low"], 4), round(outcome["share_high"], 4)],
            "agreement": round(outcome["agreement"], 4),
            "not_checked": len(outcome["not_checked"]),
            "weak_classes": len(outcome["weak_classes"]),
        }
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
        cross_validated = None
        if counts.sum() >= CROSS_VALIDATED_MIN_LABELS and (counts > 0).sum() >= 2:
            # Too few to judge labels, but a new project's small holdout needs this estimate most.
            _, features, labels, _ = labeled_embeddings(project=project, progress=progress, snap=snap)
            n = estimate_folds(len(labels), folds)
            progress(0, n, estimate_stage(1, n))
            cross_validated = single_label_estimate(
                features, labels, classes.names, folds=folds, seed=seed, project=project, snap=snap,
                on_fold=_estimate_folds(progress, 0, n),
            )  # fmt: skip
        return _store(
            cross_validated=cross_validated,
            project=project,
            began=began,
            scores={},  # the open suspects are withdrawn
            started=started,
            status=LabelErrorStatus.TOO_FEW,
            reason=f"Too few labels to judge: the search needs at least {MIN_LABELS_PER_CLASS} labels in each of "
            f"two or more classes, and {len(judged)} class{'' if len(judged) == 1 else 'es'} of "
            f"{int((counts > 0).sum())} labeled ha{'s' if len(judged) == 1 else 've'} that many.",
            labels=int(counts.sum()),
            not_checked=not_checked,
        )[0]
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

    repeats = REPEATS if len(y) * len(judged) <= REPEAT_BUDGET else 1
    # Over every labeled item, with the head a version trains: only while the holdout is small enough for the pages
    # to show the estimate.
    estimate = len(snap.holdout) < SMALL_HOLDOUT
    # The page's bar moves one step per fold of each fold split, then one per fold of the estimate (on a small
    # project most of the search's time: its heads self-train on the pool), and one for the judging.
    k = fold_count(len(y), folds)
    fits = k * repeats
    estimate_steps = estimate_folds(len(all_labels), folds) if estimate else 0
    steps = fits + estimate_steps + 1

    def fold_done(r: int):
        def on_fold(done: int, _total: int) -> None:
            if r * k + done < fits:  # the last fold's end is the next stage's start
                progress(r * k + done, steps, fold_stage(r * k + done, k, repeats))

        return on_fold

    progress(0, steps, fold_stage(0, k, repeats))
    runs = []
    for r in range(repeats):  # as cross_val_pred_probs(repeats=...) averages them: one fold split per call
        runs.append(
            cross_val_pred_probs(
                features, y, n_classes=len(judged), folds=folds, C=C, seed=seed + r, on_fold=fold_done(r)
            )
        )
    probs = runs[0] if repeats == 1 else np.mean(runs, axis=0)
    del runs
    predicted = probs.argmax(axis=1)
    cross_validated = None
    if estimate:
        progress(fits, steps, estimate_stage(1, estimate_steps))
        cross_validated = single_label_estimate(
            all_features, all_labels, classes.names, folds=folds, seed=seed, project=project, snap=snap,
            on_fold=_estimate_folds(progress, fits, steps),
        )  # fmt: skip
    progress(steps - 1, steps, "judging labels")
    # The agreement gate, then confident learning where the label's nearest labeled neighbours back a disagreement
    # (training.ml.label_search.judge).
    verdict = judge(features, y, probs)
    agreement = verdict.agreement
    if verdict.weak:
        return _store(
            project=project,
            began=began,
            scores={},  # the open suspects are withdrawn
            started=started,
            status=LabelErrorStatus.WEAK,
            cross_validated=cross_validated,
            reason=f"The model is too weak to judge labels yet: out of sample it agrees with only "
            f"{agreement:.0%} of them (the search needs {verdict.needed:.0%} here). Label more, then search again.",
            labels=len(ids),
            not_checked=not_checked,
            agreement=agreement,
        )[0]
    support, issues = verdict.support, verdict.issues
    share, low, high = error_share_interval(y, probs, seed=seed, support=support)
    flagged = [int(i) for i in verdict.listed]
    near = support[np.asarray(flagged, dtype=np.int64)]  # rows the search already computed
    scores, details = {}, {}
    for j, i in enumerate(flagged):
        item_id = ids[i]
        scores[item_id] = round(float(1.0 - issues.quality[i]), 6)
        details[str(item_id)] = [
            class_ids[y[i]],
            class_ids[predicted[i]],
            round(float(probs[i, predicted[i]]), 4),
            round(float(probs[i, y[i]]), 4),
            round(float(near[j, predicted[i]]), 2),
            round(float(near[j, y[i]]), 2),
        ]
    summary, opened = _store(
        project=project,
        began=began,
        scores=scores,
        started=started,
        status=LabelErrorStatus.OK,
        cross_validated=cross_validated,
        labels=len(ids),
        not_checked=not_checked,
        agreement=agreement,
        estimated_share=share,
        share_low=low,
        share_high=high,
        suspects=details,
    )
    open_count = len(opened)
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
