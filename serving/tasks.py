"""Celery tasks of the serving app (thin wrappers around services)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="serving.tasks.prediction_log_prune_task", acks_late=True)
def prediction_log_prune_task() -> dict:
    from serving.services.prediction_log import prediction_log_prune

    return prediction_log_prune()


@shared_task(name="serving.tasks.predictions_auto_queue_task")
def predictions_auto_queue_task() -> dict:
    """Daily: each project's N least-confident production images of the last day enter the labeling queue."""
    from serving.services.send_to_queue import predictions_auto_queue

    return predictions_auto_queue()
