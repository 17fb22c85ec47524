"""Celery tasks for dataset exports and the clean-up of expired export files: thin wrappers around
labeling.services.exports."""

from celery import shared_task

from labeling.services.exports import dataset_export_run, export_files_expire


@shared_task(acks_late=True)
def dataset_export_task(job_id: int) -> dict:
    result = dataset_export_run(job_id=job_id)
    return {"job_id": job_id, "item_count": result.get("item_count"), "files": result.get("files")}


@shared_task(acks_late=True)
def export_files_expire_task() -> dict:
    """Periodic (beat, housekeeping queue): delete export and inference files past LABELLOOP_EXPORT_TTL_HOURS."""
    return export_files_expire()
