"""The scheduler tick (Celery beat, every few seconds): fail lost runs, re-send unsent ones, queue due projects.

It learns about new labels by asking the database; no labeling code calls it. A due project whose backbone weights
no worker here can load ("hub" while LABELLOOP_MODEL_HUB is off) is held, not queued: each run would start a worker
only to fail, and the back-off after a failure would let one more fail every LABELLOOP_RUN_RETRY_AFTER seconds.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from training.models import RunMode, RunStatus, RunTrigger, TrainingRun
from training.selectors.runs import projects_due_for_training
from training.services.runs import RunRefused, training_run_enqueue, training_run_fail, training_run_send

logger = logging.getLogger(__name__)


def _seconds(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def training_runs_reap() -> list[int]:
    """Fail running runs whose worker stopped sending heartbeats (killed, OOM, machine gone)."""
    timeout = _seconds("LABELLOOP_RUN_HEARTBEAT_TIMEOUT", 60.0)
    cutoff = timezone.now() - timedelta(seconds=timeout)
    failed = []
    stale = TrainingRun.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=cutoff).values_list("pk", "worker")
    for run_id, worker in list(stale):
        error = (
            f"Worker lost: no heartbeat from {worker or 'the worker'} for more than {timeout:.0f} s "
            "(killed, out of memory or restarted). A new run will be queued."
        )
        if training_run_fail(run_id=run_id, error=error, only_if=(RunStatus.RUNNING,)):
            logger.warning("training run %s failed: %s", run_id, error)
            failed.append(run_id)
    return failed


def training_runs_resend() -> list[int]:
    """Re-send queued runs that never reached the broker, or were sent long ago and never picked up."""
    resend_after = _seconds("LABELLOOP_RUN_RESEND_AFTER", 120.0)
    grace = timezone.now() - timedelta(seconds=min(5.0, resend_after))
    now = time.time()
    sent = []
    for run in TrainingRun.objects.filter(status=RunStatus.QUEUED, created_at__lt=grace).only("pk", "timings"):
        last = float(run.timings.get("sent_at") or 0.0)
        if now - last >= resend_after and training_run_send(run_id=run.pk):
            sent.append(run.pk)
    return sent


def training_scheduler_tick() -> dict:
    """One tick: reap, re-send, then queue a run for every project that is due (one query finds them), and report
    those held by their backbone weights (`held`; their settings and model pages say why).

    "Due", including the back-off after a failed run and the hold, is the selector's rule, which the model page shows
    too. A project whose weights changed to "hub" since that query is refused by training_run_enqueue and held too.
    """
    failed = training_runs_reap()
    resent = training_runs_resend()
    queued, held = [], []
    for project in projects_due_for_training(with_held=True):
        if project.held:
            held.append(project.pk)
            continue
        mode = None if project.labels_due else RunMode.COLD_START
        try:
            run = training_run_enqueue(project=project, trigger=RunTrigger.SCHEDULER, mode=mode)
        except RunRefused:
            held.append(project.pk)
            continue
        if run is not None:
            queued.append(run.pk)
    return {"failed": failed, "resent": resent, "queued": queued, "held": held}
