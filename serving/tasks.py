"""Celery tasks of the serving app (thin wrappers around services)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="serving.tasks.prediction_log_prune_task", acks_late=True)
def prediction_log_prune_task() -> dict:
    from serving.services.prediction_log import prediction_log_prune

    return prediction_log_prune()
