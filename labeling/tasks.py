"""Celery tasks of the labeling app: thin wrappers that take ids and call one service."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction

from labeling.models import Job, JobStatus
from labeling.services.jobs import job_start

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def import_run_task(job_id: int) -> dict:
    """Run an import job once. A finished job does nothing; a running one is resumed only when the
    broker redelivers it (its worker died mid-import); any other duplicate delivery does nothing.
    Any exception ends the job as failed with its reason (import_run does; this is the last resort)."""
    from labeling.services.imports import import_job_fail, import_run
    from labeling.services.time_limits import soft_limit_deferred

    redelivered = bool((import_run_task.request.delivery_info or {}).get("redelivered"))
    try:
        with soft_limit_deferred() as soft_limit:  # the import stops between batches, never mid-query
            with transaction.atomic():
                job = Job.objects.select_for_update().filter(pk=job_id).first()
                if job is None or job.finished or (job.status == JobStatus.RUNNING and not redelivered):
                    return {"job": job_id, "skipped": True}
                if job.status == JobStatus.QUEUED:
                    job_start(job=job, message="Reading files…")
            return {"job": job_id, **import_run(job_id=job_id, soft_limit=soft_limit)}
    except Exception as exc:
        logger.exception("import job %s failed", job_id)
        import_job_fail(job_id=job_id, exc=exc)
        return {"job": job_id, "error": f"{type(exc).__name__}: {exc}"[:500]}


@shared_task(ignore_result=True)
def staging_dirs_sweep_task() -> dict:
    """Periodic (beat, housekeeping queue): delete browser uploads that were started and never submitted."""
    from labeling.services.imports import staging_dirs_sweep

    return {"removed": staging_dirs_sweep()}


@shared_task(acks_late=True)
def dataset_export_task(job_id: int) -> dict:
    """Build a dataset export Job's zip (labeling.services.exports.dataset_export_run)."""
    from labeling.services.exports import dataset_export_run

    result = dataset_export_run(job_id=job_id)
    return {"job_id": job_id, "item_count": result.get("item_count"), "files": result.get("files")}


@shared_task(acks_late=True)
def export_files_expire_task() -> dict:
    """Periodic (beat, housekeeping queue): delete export and inference files past LABELLOOP_EXPORT_TTL_HOURS."""
    from labeling.services.exports import export_files_expire

    return export_files_expire()
