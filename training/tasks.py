"""Every Celery task of the training app (so autodiscover_tasks finds them): thin, idempotent wrappers that take
ids and call one service. Runs, the scheduler, scoring (one process, or shards and their finalize step), model
exports, batch inference, explanations and the label-quality jobs. Services send these by name
(labeling.services.dispatch); routes and queues are in CELERY_TASK_ROUTES.

torch is imported inside the services' function bodies only (web processes may import this module).
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from labeling.models import Job, Project
from labeling.services.jobs import job_finish, job_progress, job_start
from training import services
from training.models import ModelVersion
from training.services import sharding
from training.services.explanations import explanation_compute
from training.services.exports import model_export_run
from training.services.inference import inference_run
from training.services.label_errors import label_errors_find
from training.services.quality import holdout_predictions_write, label_errors_after_run

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
    """Re-score a project's pool with the job's version (params["version"], "make active"), else its active model,
    and rewrite priorities while that version is active; progress goes to the Job."""
    job = Job.objects.filter(pk=job_id, project_id=project_id).first()
    project = Project.objects.filter(pk=project_id).first()
    if job is None or project is None or job.finished:
        return {"job": job_id, "skipped": True}
    number = (job.params or {}).get("version")
    version = ModelVersion.objects.filter(project=project, number=number).first() if number is not None else None
    if number is not None and version is None:
        job_finish(job=job, error=f"v{number} no longer exists; nothing was scored.")
        return {"job": job_id, "status": "failed", "error": f"no version {number}"}
    if sharding.sharded_scoring_wanted(project=project):
        # A big pool is spread over every worker on sharding.SCORE_QUEUE; the chord's last step finishes the job.
        try:
            started = sharding.sharded_scoring_start(project=project, job=job, version=version)
            return {"job": job_id, "status": "sharded", **started}
        except Exception as exc:
            logger.exception("sharded scoring job %s could not start", job_id)
            job_finish(job=job, error=f"{type(exc).__name__}: {exc}")
            return {"job": job_id, "status": "failed", "error": str(exc)[:300]}
    job_start(job=job, total=1000, message="scoring")

    def progress(done: int, total: int, message: str = "") -> None:
        fraction = done / total if total else 1.0
        job_progress(job=job, done=int(1000 * min(max(fraction, 0.0), 1.0)), message=message)

    try:
        result = services.model_score_pool(project=project, progress=progress, version=version)
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
    label_errors_after_run(project_id=project_id, version_number=version_number)
    return {"project": project_id, "version": version_number}


# ---- label quality -----------------------------------------------------------------------------------------


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=3600, time_limit=3700)
def label_errors_find_task(project_id: int, job_id: int | None = None) -> dict:
    """Search a project's labels for likely errors and write label_error review tasks. Idempotent."""
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
        job.message = "Done"  # as a finished model export says; the last stage ("writing review tasks") would stay
        job_finish(job=job, result=result)
    return {"project": project_id, **result}


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=3600, time_limit=3700)
def holdout_predictions_task(project_id: int, version_number: int) -> dict:
    """Store per-item predictions of one version on the project's labeled holdout (confusion-cell drill-down)."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {"project": project_id, "skipped": True}
    return {"project": project_id, **holdout_predictions_write(project=project, version_number=version_number)}


# ---- sharded scoring (training/services/sharding.py): one task per shard, one to finish --------------------


@shared_task(
    bind=True,
    ignore_result=False,  # a chord header: the finalize step waits on these results
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(Exception,),
    max_retries=getattr(settings, "LABELLOOP_SCORE_SHARD_RETRIES", 3),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=False,
    soft_time_limit=3600,
    time_limit=3700,
)
def score_shard_task(
    self,
    project_id: int,
    version_id: int,
    batch: str,
    index: int,
    item_ids: list[int],
    labeled_ids: list[int],
    job_id: int | None = None,
) -> dict:
    """Score one shard of a pool (its result feeds score_finalize_task through the chord)."""
    try:
        return sharding.score_shard(
            project_id=project_id, version_id=version_id, batch=batch, index=index, item_ids=item_ids,
            labeled_ids=labeled_ids, job_id=job_id, worker=self.request.hostname or "", attempt=self.request.retries,
        )  # fmt: skip
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            logger.exception("shard %s of scoring batch %s failed for good", index, batch)
            sharding.sharded_scoring_fail(
                project_id=project_id, batch=batch, index=index, job_id=job_id, error=f"{type(exc).__name__}: {exc}"
            )
        else:
            logger.warning("shard %s of scoring batch %s failed (%s); retrying", index, batch, exc)
        raise


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True, soft_time_limit=3600, time_limit=3700)
def score_finalize_task(results: list[dict], project_id: int, version_id: int, batch: str, job_id: int | None = None):
    """Rank the whole pool from the shards' results and write the queue priorities."""
    return sharding.score_finalize(
        project_id=project_id, version_id=version_id, batch=batch, results=results, job_id=job_id
    )


# ---- model exports and batch inference ---------------------------------------------------------------------


@shared_task(acks_late=True, reject_on_worker_lost=True)
def model_export_task(job_id: int) -> dict:
    result = model_export_run(job_id=job_id)
    return {"job_id": job_id, "files": result.get("files", [])}


@shared_task(acks_late=True, reject_on_worker_lost=True)
def inference_task(job_id: int) -> dict:
    result = inference_run(job_id=job_id)
    return {"job_id": job_id, "predicted": result.get("predicted"), "files": result.get("files", [])}


# ---- explanations (training/services/explanations.py) ------------------------------------------------------


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True, soft_time_limit=300, time_limit=330)
def explanation_compute_task(explanation_id: int) -> dict:
    """Compute one queued heatmap (queue `gpu`). A duplicate delivery finds the row no longer queued and returns."""
    return explanation_compute(explanation_id=explanation_id)
