"""A running round's progress callback (throttled stage/progress writes, per-stage timings) and its heartbeat.

Used by the run state machine (runs.py), the round (rounds.py) and the torchrun relay (torchrun.py).
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import connection
from django.utils import timezone

from labeling.constants import Progress
from training.models import RunStatus, TrainingRun
from training.services.progress_gate import WRITE_INTERVAL, ProgressGate

logger = logging.getLogger(__name__)

# `also` hears the run's overall progress as parts of this total.
PROGRESS_TOTAL = 10_000


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


class RunHeartbeat(threading.Thread):
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
    """A run's Progress callback, `progress(done, total, stage)`: writes of the run's progress (the page's bar) and
    stage (its text) when the ProgressGate says, and per-stage timings. `also` hears the same (a command's bar)."""

    def __init__(self, run_id: int, *, also: Progress | None = None, min_interval: float = WRITE_INTERVAL):
        self.run_id, self.also = run_id, also
        self.gate = ProgressGate(min_interval=min_interval)
        self.lo, self.hi = 0.0, 1.0  # the slice of the whole run that the current phase covers
        self.stage = ""
        self.stage_started = time.monotonic()
        self.timings: dict[str, float] = {}
        self.delay = _setting("LABELLOOP_DEBUG_PROGRESS_SLEEP", 0.0)

    def __call__(self, done: int, total: int, message: str = "") -> None:
        stage, fraction = message or self.stage, done / total if total else 1.0
        now = time.monotonic()
        changed = stage != self.stage
        if changed:
            self.close_stage(now)
            self.stage, self.stage_started = stage, now
        overall = self.lo + (self.hi - self.lo) * min(max(float(fraction), 0.0), 1.0)
        if self.gate.due(stage, done, total):
            TrainingRun.objects.filter(pk=self.run_id, status=RunStatus.RUNNING).update(
                stage=stage[:40], progress=round(overall, 4), heartbeat_at=timezone.now()
            )
        if self.also is not None:
            self.also(round(overall * PROGRESS_TOTAL), PROGRESS_TOTAL, stage)
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
        self(0, 1, stage)

    def phase(self, lo: float, hi: float) -> RunProgress:
        """Map the next callbacks' fractions into [lo, hi] of the whole run (the ML round's stages)."""
        self.lo, self.hi = lo, hi
        return self
