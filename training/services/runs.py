"""Training runs: enqueue (one in flight per project, held by the database), execute (a state machine
under a row lock, so a duplicate delivery does nothing), heartbeat, failure.

`training.ml` (torch) is imported inside the functions that need it; web processes import this module.
The progress callback and heartbeat live in run_progress.py, modes and triggers in training/models.py.
"""

from __future__ import annotations

import logging
import socket
import time
import traceback

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from labeling.constants import Progress
from labeling.models import Project
from labeling.selectors.backbone_weights import hub_weights_training_refusal
from labeling.services.dispatch import task_send
from training.ml.config import ExplainedError
from training.models import IN_FLIGHT, ModelVersion, RunMode, RunStatus, RunTrigger, TrainingRun
from training.services.run_progress import RunHeartbeat, RunProgress
from training.services.same_model import same_model_message, same_model_version

logger = logging.getLogger(__name__)


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


class RunRefused(ValueError):
    """No run can be queued for the project as it is set up (its message says why and what to change)."""


class RunSameModel(RunRefused):
    """A run asked for by hand would train the same model as `version` again (services/same_model.py); the caller
    may ask again with force=True."""

    def __init__(self, version: ModelVersion):
        super().__init__(same_model_message(version))
        self.version = version


def training_run_enqueue(
    *,
    project: Project,
    trigger: RunTrigger,
    mode: RunMode | str | None = None,
    send: bool = True,
    force: bool = False,
) -> TrainingRun | None:
    """Queue a run for `project`; returns None when one is already queued or running.

    The task is sent after commit. If the broker is down the run stays queued and the scheduler
    re-sends it later: nothing on the labeling side ever waits for Redis. Raises RunRefused when a worker could not
    run it at all (weights "hub" while the hub is off), so no run is made only to fail at its start, and RunSameModel
    when a run asked for by hand (not the scheduler's, which waits for new labels) would train an existing version
    again: no new labels and the same settings. `force` queues it all the same.
    """
    mode = mode or project.training_mode
    if mode not in RunMode.values:
        raise ValueError(f"Unknown training mode {mode!r}; choose one of {', '.join(RunMode.values)}.")
    refusal = hub_weights_training_refusal(project.backbone_weights)
    if refusal:
        raise RunRefused(refusal)
    if not force and trigger != RunTrigger.SCHEDULER:
        if TrainingRun.objects.filter(project=project, status__in=IN_FLIGHT).exists():
            return None  # said before "the same model": a run in flight is what the caller needs to know
        version = same_model_version(project=project, mode=mode)
        if version is not None:
            raise RunSameModel(version)
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(project=project, trigger=trigger, mode=mode)
    except IntegrityError:
        return None
    if send:
        transaction.on_commit(lambda: training_run_send(run_id=run.pk))
    return run


def training_run_send(*, run_id: int) -> bool:
    """Hand a queued run to the broker; record the attempt. False when the broker is unreachable."""
    # By name (services never import training.tasks); a failed send is logged there and re-sent by the scheduler.
    ok = task_send("training.tasks.training_run_execute_task", run_id)
    run = TrainingRun.objects.filter(pk=run_id).only("timings").first()
    if run is not None:
        timings = dict(run.timings)
        timings["sends"] = int(timings.get("sends", 0)) + 1
        timings["sent_at"] = time.time() if ok else 0.0
        TrainingRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(timings=timings)
    return ok


def training_run_cancel(*, run: TrainingRun) -> bool:
    """Cancel a queued run (a running one cannot be cancelled from here)."""
    return bool(
        TrainingRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
            status=RunStatus.CANCELLED, finished_at=timezone.now(), stage="cancelled"
        )
    )


ERROR_CHARS = 4000  # what a failed run keeps of its error


def failure_text(exc: BaseException) -> str:
    """A failed run's error: what went wrong first and whole (the runs table shows its start, the API gives it),
    then as much of the traceback's end as fits in ERROR_CHARS. Keeping the text's end instead cut off the
    sentence that says what to do when the traceback was long (a hub download's chained errors). An error that
    explains itself (ExplainedError: registered weights gone or changed) is stored as its message alone."""
    if isinstance(exc, ExplainedError):
        return str(exc)[:ERROR_CHARS]
    head = f"{type(exc).__name__}: {exc}"[: ERROR_CHARS // 2]
    room = ERROR_CHARS - len(head) - 2
    trace = traceback.format_exc(limit=8)
    return f"{head}\n\n{trace[-room:]}"


def training_run_fail(*, run_id: int, error: str, only_if: tuple[str, ...] = IN_FLIGHT) -> bool:
    return bool(
        TrainingRun.objects.filter(pk=run_id, status__in=only_if).update(
            status=RunStatus.FAILED, error=error[:ERROR_CHARS], finished_at=timezone.now()
        )
    )


def _start(run_id: int, worker: str) -> TrainingRun | None:
    """queued -> running under a row lock; anything else (duplicate delivery, cancelled) -> None."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().select_related("project").filter(pk=run_id).first()
        if run is None or run.status != RunStatus.QUEUED:
            return None
        now = timezone.now()
        run.status, run.started_at, run.heartbeat_at = RunStatus.RUNNING, now, now
        run.worker = (worker or socket.gethostname())[:200]
        run.stage, run.progress = "starting", 0.0
        run.timings = {**run.timings, "queue_wait": round((now - run.created_at).total_seconds(), 3)}
        run.save(update_fields=["status", "started_at", "heartbeat_at", "worker", "stage", "progress", "timings"])
    return run


def training_run_execute(*, run_id: int, worker: str = "", on_progress: Progress | None = None) -> dict:
    """Execute a queued run end to end; returns a small summary. Idempotent: only a queued run starts.

    Failures (including a soft time limit) leave the run failed with the error text; a worker that
    dies leaves it running without heartbeats, and the scheduler fails it after the lease.
    """
    run = _start(run_id, worker)
    if run is None:
        current = TrainingRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
        return {"run": run_id, "status": current or "missing", "skipped": True}
    heartbeat = RunHeartbeat(run_id, _setting("LABELLOOP_RUN_HEARTBEAT_INTERVAL", 5.0))
    heartbeat.start()
    progress = RunProgress(run_id, also=on_progress)
    started = time.monotonic()
    try:
        from training.services.rounds import round_execute

        summary = round_execute(run=run, progress=progress)
    except Exception as exc:
        logger.exception("training run %s failed", run_id)
        progress.close_stage()
        training_run_fail(run_id=run_id, error=failure_text(exc), only_if=(RunStatus.RUNNING,))
        TrainingRun.objects.filter(pk=run_id).update(
            timings={**run.timings, **progress.timings, "total": round(time.monotonic() - started, 3)}
        )
        return {"run": run_id, "status": RunStatus.FAILED, "error": str(exc)[:300]}
    finally:
        heartbeat.stop()
    return {"run": run_id, **summary}
