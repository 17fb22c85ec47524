"""Celery tasks for model exports and batch inference: thin wrappers (torch is imported inside the services)."""

from celery import shared_task

from training.services_export import inference_run, model_export_run


@shared_task(acks_late=True, reject_on_worker_lost=True)
def model_export_task(job_id: int) -> dict:
    result = model_export_run(job_id=job_id)
    return {"job_id": job_id, "files": result.get("files", [])}


@shared_task(acks_late=True, reject_on_worker_lost=True)
def inference_task(job_id: int) -> dict:
    result = inference_run(job_id=job_id)
    return {"job_id": job_id, "predicted": result.get("predicted"), "files": result.get("files", [])}
