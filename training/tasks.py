"""Celery tasks of the training app: thin, idempotent wrappers that take ids and call one service.

torch is imported inside the services' function bodies only (web processes import this module to enqueue).
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from labeling.models import Job, Project
from labeling.services.jobs import job_finish, job_progress, job_start
from training import services
from training.services import sharding

logger = logging.getLogger(__name__)


# Results are ignored: nothing waits on them, and a result-storing send subscribes to the Redis result
# backend, which blocks for ~20 s (and then breaks the app's backend) when Redis is down.
@shared_task(
    bind=True,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=getattr(settings, "LABELLOOP_RUN_SOFT_TIME_LIMIT", 6 * 3600),
    time_limit=getattr(settings, "LABELLOOP_RUN_SOFT_TIME_LIMIT", 6 * 3600) + 300,
)
def training_run_execute_task(self, run_id: int) -> dict:
    """Train one queued run (queue `gpu`). A duplicate delivery finds the run no longer queued and returns."""
    return services.training_run_execute(run_id=run_id, worker=self.request.hostname or "")


@shared_task(ignore_result=True, soft_time_limit=60, time_limit=90)
def training_scheduler_tick_task() -> dict:
    """Beat calls this every few seconds (LABELLOOP_SCHEDULER_INTERVAL)."""
    return services.training_scheduler_tick()


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def training_score_task(project_id: int, job_id: int) -> dict:
    """Re-score a project's pool with its active model and rewrite priorities; progress goes to the Job."""
    job = Job.objects.filter(pk=job_id, project_id=project_id).first()
    project = Project.objects.filter(pk=project_id).first()
    if job is None or project is None or job.finished:
        return {"job": job_id, "skipped": True}
    if sharding.sharded_scoring_wanted(project=project):
        # A big pool is spread over every worker on sharding.SCORE_QUEUE; the chord's last step finishes the job.
        try:
            return {"job": job_id, "status": "sharded", **sharding.sharded_scoring_start(project=project, job=job)}
        except Exception as exc:
            logger.exception("sharded scoring job %s could not start", job_id)
            job_finish(job=job, error=f"{type(exc).__name__}: {exc}")
            return {"job": job_id, "status": "failed", "error": str(exc)[:300]}
    job_start(job=job, total=1000, message="scoring")

    def progress(stage: str, fraction: float) -> None:
        job_progress(job=job, done=int(1000 * min(max(fraction, 0.0), 1.0)), message=stage)

    try:
        result = services.model_score_pool(project=project, progress=progress)
    except Exception as exc:
        logger.exception("scoring job %s failed", job_id)
        job_finish(job=job, error=f"{type(exc).__name__}: {exc}")
        return {"job": job_id, "status": "failed", "error": str(exc)[:300]}
    job_finish(job=job, result=result)
    return {"job": job_id, "status": "succeeded", **result}


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True, soft_time_limit=600, time_limit=660)
def model_version_activated_task(project_id: int, version_number: int) -> dict:
    """Follow-ups of a new active version (queue `default`): refresh the review feeds, queue the label-error
    search and the holdout predictions. The round only sends this message, so it never waits on them."""
    from training.tasks_quality import label_errors_after_run

    label_errors_after_run(project_id=project_id, version_number=version_number)
    return {"project": project_id, "version": version_number}
