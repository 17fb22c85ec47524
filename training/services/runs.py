"""Training runs: enqueue (one in flight per project, held by the database), execute (a state machine
under a row lock, so a duplicate delivery does nothing), heartbeat, failure.

`training.ml` (torch) is imported inside the functions that need it; web processes import this module.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from labeling.models import Project
from training.models import IN_FLIGHT, RunStatus, TrainingRun

logger = logging.getLogger(__name__)

MODE_COLD_START = "coldstart"
MODES = ("head", "finetune", MODE_COLD_START)


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def data_root() -> Path:
    return Path(settings.LABELLOOP_DATA_ROOT)


def project_cache_dir(project: Project) -> Path:
    """The project's feature store (cached embeddings); shared by every run and scoring job."""
    return data_root() / "projects" / str(project.pk) / "cache"


def training_run_enqueue(
    *, project: Project, trigger: str, mode: str | None = None, send: bool = True
) -> TrainingRun | None:
    """Queue a run for `project`; returns None when one is already queued or running.

    The task is sent after commit. If the broker is down the run stays queued and the scheduler
    re-sends it later: nothing on the labeling side ever waits for Redis.
    """
    mode = mode or project.training_mode
    if mode not in MODES:
        raise ValueError(f"Unknown training mode {mode!r}; choose one of {', '.join(MODES)}.")
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
    from training.tasks import training_run_execute_task

    ok = True
    try:
        training_run_execute_task.apply_async((run_id,), retry=False)
    except Exception as exc:  # kombu/redis connection errors vary by transport
        logger.warning("could not send training run %s to the broker (%s); the scheduler will retry", run_id, exc)
        ok = False
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


def training_run_fail(*, run_id: int, error: str, only_if: tuple[str, ...] = IN_FLIGHT) -> bool:
    return bool(
        TrainingRun.objects.filter(pk=run_id, status__in=only_if).update(
            status=RunStatus.FAILED, error=error[-4000:], finished_at=timezone.now()
        )
    )


class _Heartbeat(threading.Thread):
    """Touches heartbeat_at every few seconds from its own DB connection while the round computes."""

    def __init__(self, run_id: int, interval: float):
        super().__init__(name=f"heartbeat-{run_id}", daemon=True)
        self.run_id, self.interval, self.halt = run_id, interval, threading.Event()

    def run(self) -> None:
        try:
            while not self.halt.wait(self.interval):
                try:
                    TrainingRun.objects.filter(pk=self.run_id, status=RunStatus.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                except Exception:  # a missed beat is not fatal; the next one may succeed
                    logger.exception("heartbeat of run %s failed", self.run_id)
        finally:
            connection.close()

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=10)


class RunProgress:
    """The `progress(stage, fraction)` callback: throttled writes of progress/stage and per-stage timings."""

    def __init__(self, run_id: int, *, also: Callable[[str, float], None] | None = None, min_interval: float = 0.5):
        self.run_id, self.also, self.min_interval = run_id, also, min_interval
        self.lo, self.hi = 0.0, 1.0  # the slice of the whole run that the current phase covers
        self.stage = ""
        self.stage_started = time.monotonic()
        self.timings: dict[str, float] = {}
        self.last_write = 0.0
        self.delay = _setting("LABELLOOP_DEBUG_PROGRESS_SLEEP", 0.0)

    def __call__(self, stage: str, fraction: float) -> None:
        now = time.monotonic()
        changed = stage != self.stage
        if changed:
            self.close_stage(now)
            self.stage, self.stage_started = stage, now
        overall = self.lo + (self.hi - self.lo) * min(max(float(fraction), 0.0), 1.0)
        if changed or now - self.last_write >= self.min_interval or fraction >= 1.0:
            self.last_write = now
            TrainingRun.objects.filter(pk=self.run_id, status=RunStatus.RUNNING).update(
                stage=stage[:40], progress=round(overall, 4), heartbeat_at=timezone.now()
            )
        if self.also is not None:
            self.also(stage, overall)
        if self.delay:
            time.sleep(self.delay)  # test hook: makes a run slow enough to kill a worker mid-run

    def close_stage(self, now: float | None = None) -> None:
        if self.stage:
            now = time.monotonic() if now is None else now
            self.timings[self.stage] = round(self.timings.get(self.stage, 0.0) + now - self.stage_started, 3)
            self.stage = ""

    def enter(self, stage: str, lo: float | None = None, hi: float | None = None) -> None:
        """Start a stage that covers [lo, hi] of the whole run (default: where the last one ended)."""
        self.lo = self.hi if lo is None else lo
        self.hi = self.lo if hi is None else hi
        self(stage, 0.0)

    def phase(self, lo: float, hi: float) -> RunProgress:
        """Map the next callbacks' fractions into [lo, hi] of the whole run (the ML round's stages)."""
        self.lo, self.hi = lo, hi
        return self


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


def training_run_execute(*, run_id: int, worker: str = "", on_progress: Callable | None = None) -> dict:
    """Execute a queued run end to end; returns a small summary. Idempotent: only a queued run starts.

    Failures (including a soft time limit) leave the run failed with the error text; a worker that
    dies leaves it running without heartbeats, and the scheduler fails it after the lease.
    """
    run = _start(run_id, worker)
    if run is None:
        current = TrainingRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
        return {"run": run_id, "status": current or "missing", "skipped": True}
    heartbeat = _Heartbeat(run_id, _setting("LABELLOOP_RUN_HEARTBEAT_INTERVAL", 5.0))
    heartbeat.start()
    progress = RunProgress(run_id, also=on_progress)
    started = time.monotonic()
    try:
        from training.services.rounds import round_execute

        summary = round_execute(run=run, progress=progress)
    except Exception as exc:
        logger.exception("training run %s failed", run_id)
        progress.close_stage()
        error = f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc(limit=8)}"
        training_run_fail(run_id=run_id, error=error, only_if=(RunStatus.RUNNING,))
        TrainingRun.objects.filter(pk=run_id).update(
            timings={**run.timings, **progress.timings, "total": round(time.monotonic() - started, 3)}
        )
        return {"run": run_id, "status": RunStatus.FAILED, "error": str(exc)[:300]}
    finally:
        heartbeat.stop()
    return {"run": run_id, **summary}
