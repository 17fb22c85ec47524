"""Label quality writes: queue the label-error search, the follow-ups of a new model version, and store a version's
per-item predictions on the holdout (the confusion-cell drill-down), and open a review task for an item a reviewer
picks from that drill-down. The search itself is services/label_errors.py.

Tasks are sent by name through labeling.services.dispatch; torch is imported inside holdout_predictions_write only.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import Max
from django.utils import timezone

from labeling.models import Job, JobKind, JobStatus, Project, ResolvedLabel, ReviewTask, ReviewTaskReason
from labeling.services.dispatch import task_send, task_send_on_commit
from labeling.services.jobs import job_create, job_finish
from labeling.services.reviews import live_annotations, review_task_open, review_tasks_refresh
from training.constants import project_cache_dir
from training.models import ModelVersion, Prediction, RunMode
from training.selectors.quality import class_order_of_version, open_review_tasks
from training.services.artifacts import version_checkpoint_dir
from training.services.rounds import predictions_write, round_config
from training.services.snapshot import label_snapshot

logger = logging.getLogger(__name__)

STALE_QUEUED = timedelta(minutes=30)  # a search queued longer than this never reached a worker


def label_errors_job_enqueue(*, project: Project, created_by=None, new_version: bool = False) -> Job:
    """Create the progress Job and send the search after commit; a search already queued or running is reused.
    After a `new_version` only a queued one is: a search already running judges with the version before, and its
    cross-validated estimate would be that version's (training.selectors.figures.cross_validated_estimate), so the
    new version would show none until the next round."""
    in_flight = [JobStatus.QUEUED] if new_version else [JobStatus.QUEUED, JobStatus.RUNNING]
    running = Job.objects.filter(project=project, kind=JobKind.LABEL_ERRORS, status__in=in_flight).first()
    if (
        running is not None
        and running.status == JobStatus.QUEUED
        and running.created_at < timezone.now() - STALE_QUEUED
    ):
        # Queued this long and never started: its message was lost (a broker outage before sends failed jobs).
        job_finish(job=running, error="No worker picked this search up; it was asked for again.")
        running = None
    if running is not None:
        running.coalesced = True  # the API answers 200 with the search already under way
        return running
    job = job_create(project=project, kind=JobKind.LABEL_ERRORS, created_by=created_by)
    # A broker outage fails the job with its reason (never a queued job nothing will run): the next click retries.
    task_send_on_commit("training.tasks.label_errors_find_task", project.pk, job.pk, job_id=job.pk)
    return job


def pool_score_job_enqueue(*, project: Project, created_by=None, version: ModelVersion | None = None) -> Job:
    """Re-score the pool with `version` (its number in the job's params), else with the version active when the job
    runs: a SCORE Job the model page polls, its task sent after commit (a broker outage ends the job failed with
    BROKER_DOWN, never a job nothing runs)."""
    params = {"version": version.number} if version is not None else None
    job = job_create(project=project, kind=JobKind.SCORE, created_by=created_by, params=params)
    task_send_on_commit("training.tasks.training_score_task", project.pk, job.pk, job_id=job.pk)
    return job


def holdout_predictions_request(*, project: Project, version: ModelVersion) -> bool:
    """Ask a worker to store the version's per-item holdout predictions; False when the broker is unreachable."""
    return task_send("training.tasks.holdout_predictions_task", project.pk, version.number)


def holdout_predictions_write(*, project: Project, version_number: int) -> dict:
    """Score the labeled holdout with one version and store Prediction rows (upsert). Worker/command only."""
    from training.ml.pipeline import score_pool

    version = ModelVersion.objects.filter(project=project, number=version_number).first()
    if version is None:
        return {"status": "skipped", "reason": f"no version {version_number}"}
    snap = label_snapshot(project=project)
    pool = [(item_id, path) for item_id, path, _ in snap.holdout]
    if not pool:
        return {"status": "ok", "scored": 0}
    cfg = round_config(project=project, classes=class_order_of_version(version), mode=RunMode.HEAD, seed=version.number)
    checkpoint = version_checkpoint_dir(version=version)
    scored = score_pool(checkpoint, pool, project_cache_dir(project), cfg, None)
    ids, probs, uncertainty = scored.pool_ids, scored.pool_probs, scored.pool_uncertainty
    ids = [int(i) for i in (ids.tolist() if hasattr(ids, "tolist") else ids)]
    predictions_write(version=version, ids=ids, probs=probs, uncertainty=uncertainty, upsert=True)
    return {"status": "ok", "scored": len(ids), "version": version.number}


def label_errors_after_run(*, project_id: int, version_number: int | None = None) -> None:
    """Hook for the training round after a version is saved: refresh feeds, search for label errors, and
    predict the holdout for the drill-down. Never raises (a broker outage must not fail a run)."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return
    try:
        review_tasks_refresh(project=project)
    except Exception:
        logger.exception("review refresh after a run of project %s failed", project_id)
    label_errors_job_enqueue(project=project, new_version=True)
    if version_number is not None:
        task_send_on_commit("training.tasks.holdout_predictions_task", project_id, version_number)


def confusion_item_review_open(*, project: Project, version: ModelVersion, item_id: int) -> ReviewTask | None:
    """The open review task in which a reviewer judges `item_id`, picked from the confusion drill-down of `version`:
    the item's open task if it has one, else a new task on its latest live annotation (scored with the version's
    confidence): "Model contradicts" where the version predicts a class the label lacks, an "Audit sample" where
    it agrees (a cell on the diagonal: nothing contradicts the label there). None, and nothing written, for an item
    of another project or one the version has no prediction of."""
    prediction = Prediction.objects.filter(model_version=version, item_id=item_id, item__project=project).first()
    if prediction is None or version.project_id != project.pk:
        return None
    existing = open_review_tasks(project=project, item_ids=[item_id]).get(item_id)
    if existing is not None:
        return existing
    latest = live_annotations(project=project).filter(item_id=item_id).aggregate(last=Max("id"))["last"]
    labeled = ResolvedLabel.objects.filter(item_id=item_id, classes=prediction.predicted_class_id).exists()
    reason = ReviewTaskReason.SAMPLE if labeled else ReviewTaskReason.MODEL
    return review_task_open(
        project=project, item=item_id, reason=reason, annotation=latest, score=prediction.confidence
    )
