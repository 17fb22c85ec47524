"""What a queued heatmap waits for, in one line for its pill's tooltip: the project's running training run (the gpu
worker finishes it first) with its stage, progress and age, else the gpu worker itself and how long the row has
been queued. One query, and only for a queued row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from labeling.models import Project
from training.models import Explanation, ExplanationStatus, RunStatus, TrainingRun


def age_text(seconds: float) -> str:
    """A short age: '8 s' under a minute, '3 min' under two hours, else '5 h'."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 120 * 60:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


@dataclass(frozen=True)
class ExplanationWait:
    """A queued heatmap's wait: `run_id` is the project's running training run ahead of it (None: no such run)."""

    queued_seconds: float
    run_id: int | None = None
    run_stage: str = ""
    run_percent: int = 0
    run_seconds: float | None = None  # since the run started

    @property
    def line(self) -> str:
        if self.run_id is None:
            return f"Waits for the gpu worker (queued {age_text(self.queued_seconds)} ago)."
        parts = [f"stage {self.run_stage}" if self.run_stage else "", f"{self.run_percent}% done"]
        if self.run_seconds is not None:
            parts.append(f"started {age_text(self.run_seconds)} ago")
        return f"Waits for training run {self.run_id} ({', '.join(p for p in parts if p)})."


def explanation_wait(
    *, explanation: Explanation, project: Project, now: datetime | None = None
) -> ExplanationWait | None:
    """The wait of a queued explanation of `project` (None for any other status): the project's running training
    run, if any (the gpu worker runs one task at a time, so the heatmap comes after it). Runs of other projects are
    not named: the page is the project's."""
    if explanation.status != ExplanationStatus.QUEUED:
        return None
    now = now or timezone.now()
    queued = (now - explanation.created_at).total_seconds() if explanation.created_at else 0.0
    run = (
        TrainingRun.objects.filter(project=project, status=RunStatus.RUNNING)
        .only("pk", "stage", "progress", "started_at")
        .first()
    )
    if run is None:
        return ExplanationWait(queued_seconds=queued)
    return ExplanationWait(
        queued_seconds=queued,
        run_id=run.pk,
        run_stage=run.stage,
        run_percent=round(100 * (run.progress or 0.0)),
        run_seconds=(now - run.started_at).total_seconds() if run.started_at else None,
    )
