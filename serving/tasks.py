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


@shared_task(name="serving.tasks.drift_check_task", acks_late=True)
def drift_check_task(project_id: int | None = None, on_demand: bool = False) -> dict:
    """Hourly (beat "drift-check"): a drift report for each project with enough new predictions; with
    `on_demand`, a report for `project_id` now. A duplicate delivery finds the check running or no new
    predictions and does nothing."""
    from serving.services.drift import drift_checks_run_due

    return drift_checks_run_due(project_id=project_id, on_demand=on_demand)


@shared_task(name="serving.tasks.alert_webhook_send_task")
def alert_webhook_send_task(report_id: int) -> dict:
    """One signed POST of a report's alert; no retries (the next alert sends again)."""
    from serving.services.alerts import alert_webhook_send

    return alert_webhook_send(report_id=report_id)
