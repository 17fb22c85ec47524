"""Sending Celery tasks: by name, after commit, with one policy for a broker outage.

A task is named by its dotted path (`training.tasks.label_errors_find_task`), so a service never imports a
tasks module (no import cycles) and routing stays in settings (CELERY_TASK_ROUTES). When the broker cannot be
reached the send fails at once (no retry loop inside a web request), is logged, and a Job waiting for it ends
failed with BROKER_DOWN as its reason, so a page never shows a job that nothing will ever run; asking again once
the broker is back works. (Training runs keep their own rule: a queued run is re-sent by the scheduler.)
"""

from __future__ import annotations

import importlib
import logging

from celery import current_app
from django.db import transaction

from labeling.models import Job
from labeling.services.jobs import job_finish

logger = logging.getLogger(__name__)

BROKER_DOWN = "The task queue (Redis) could not be reached, so nothing was sent: try again once it is back."


def _task(name: str):
    if name not in current_app.tasks:
        importlib.import_module(name.rsplit(".", 1)[0])  # registers the tasks of that module
    return current_app.tasks[name]


def task_send(name: str, *args) -> bool:
    """Send now; False (and logged) when the broker is unreachable. Eager settings run the task in place."""
    try:
        _task(name).apply_async(args, retry=False)
    except Exception:  # kombu/redis connection errors differ by transport: any failure to send counts
        logger.exception("could not send %s%s", name, args)
        return False
    return True


def task_signature(name: str, *args):
    """A task signature by dotted name, for canvases (a chord's members and body); sent by the canvas itself."""
    return _task(name).s(*args)


def task_send_on_commit(name: str, *args, job_id: int | None = None) -> None:
    """Send after the surrounding transaction commits; if that fails, the job `job_id` ends failed (BROKER_DOWN)."""

    def send() -> None:
        if task_send(name, *args) or job_id is None:
            return
        job = Job.objects.filter(pk=job_id).first()
        if job is not None and not job.finished:
            job_finish(job=job, error=BROKER_DOWN)

    transaction.on_commit(send)
