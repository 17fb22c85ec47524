"""Celery task for dataset exports: a thin wrapper around labeling.services.exports."""

from celery import shared_task

from labeling.services.exports import dataset_export_run


@shared_task(acks_late=True)
def dataset_export_task(job_id: int) -> dict:
    result = dataset_export_run(job_id=job_id)
    return {"job_id": job_id, "item_count": result.get("item_count"), "files": result.get("files")}
