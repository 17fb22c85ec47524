"""Celery tasks for label quality: the label-error search, review-queue refresh, per-item holdout predictions.

torch is imported inside the service bodies only (web processes import this module to enqueue).
`label_errors_after_run(project_id=...)` is the hook the training round can call after a new version:
it refreshes the review feeds (model contradictions) and enqueues the label-error search.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from labeling.models import Job, JobKind, JobStatus, Project
from labeling.services.dispatch import task_send_on_commit
from labeling.services.jobs import job_create, job_finish, job_start
from labeling.services.reviews import review_tasks_refresh

logger = logging.getLogger(__name__)

STALE_QUEUED = timedelta(minutes=30)  # a search queued longer than this never reached a worker


def label_errors_job_enqueue(*, project: Project, created_by=None) -> Job:
    """Create the progress Job and send the search after commit; a search already queued or running is reused."""
    running = Job.objects.filter(
        project=project, kind=JobKind.LABEL_ERRORS, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]
    ).first()
    if (
        running is not None
        and running.status == JobStatus.QUEUED
        and running.created_at < timezone.now() - STALE_QUEUED
    ):
        # Queued this long and never started: its message was lost (a broker outage before sends failed jobs).
        job_finish(job=running, error="No worker picked this search up; it was asked for again.")
        running = None
    if running is not None:
        return running
    job = job_create(project=project, kind=JobKind.LABEL_ERRORS, created_by=created_by)
    # A broker outage fails the job with its reason (never a queued job nothing will run): the next click retries.
    task_send_on_commit("training.tasks_quality.label_errors_find_task", project.pk, job.pk, job_id=job.pk)
    return job


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=3600, time_limit=3700)
def label_errors_find_task(project_id: int, job_id: int | None = None) -> dict:
    """Search a project's labels for likely errors and write label_error review tasks. Idempotent."""
    from training.label_errors import label_errors_find

    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {"project": project_id, "skipped": True}
    job = Job.objects.filter(pk=job_id, project=project).first() if job_id else None
    if job is not None:
        if job.finished:
            return {"job": job_id, "skipped": True}
        job_start(job=job, total=1, message="starting")
    try:
        result = label_errors_find(project=project, job=job)
    except Exception as exc:
        logger.exception("label-error search for project %s failed", project_id)
        if job is not None:
            job_finish(job=job, error=f"{type(exc).__name__}: {exc}")
        return {"project": project_id, "status": "failed", "error": str(exc)[:300]}
    if job is not None:
        job_finish(job=job, result=result)
    return {"project": project_id, **result}


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=600, time_limit=660)
def review_tasks_refresh_task(project_id: int) -> dict:
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {"project": project_id, "skipped": True}
    return {"project": project_id, **review_tasks_refresh(project=project)}


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=3600, time_limit=3700)
def holdout_predictions_task(project_id: int, version_number: int) -> dict:
    """Store per-item predictions of one version on the project's labeled holdout (confusion-cell drill-down)."""
    from training.quality import holdout_predictions_write

    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {"project": project_id, "skipped": True}
    return {"project": project_id, **holdout_predictions_write(project=project, version_number=version_number)}


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
    label_errors_job_enqueue(project=project)
    if version_number is not None:
        task_send_on_commit("training.tasks_quality.holdout_predictions_task", project_id, version_number)
