"""What a job shows its users (its parameters without server paths, its rejected files including those refused at
upload) and what a queued job or training run waits behind: the other work on its Celery queue, read from the database.

A job's params are the worker's instructions: where the staged uploads, the staging folder, an uploaded inference
zip or a server folder lie. Users see what is theirs (file and folder names, options), never the server's layout;
`job_params_shown` is the one place that decides it, for the API and pages alike.

The queue of each kind of work has its one home here (`JOB_KIND_QUEUES`, `TRAINING_RUN_QUEUE`); the task routes
in config/settings/base.py send the tasks that carry the work out to the same queues (tests/labeling/
test_queues.py holds the two together). Work ahead of a queued one = everything running on its queue (it holds
the workers) plus what was queued there before it. Another project's work is counted, never named: a member
of one project must not learn what others are doing. Training runs live in the training app, which labeling
never imports: they are read through labeling/selectors/training_seam.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from django.db.models import Q

from labeling.models import Job, JobKind, JobStatus
from labeling.selectors.import_reasons import reason_kind
from labeling.selectors.training_seam import training_run_model

HOUSEKEEPING, DEFAULT, GPU = "housekeeping", "default", "gpu"
QUEUES = (HOUSEKEEPING, DEFAULT, GPU)
JOB_KIND_QUEUES: dict[str, str] = {
    JobKind.IMPORT: DEFAULT,
    JobKind.EXPORT_DATASET: DEFAULT,
    JobKind.EXPORT_MODEL: DEFAULT,
    JobKind.INFERENCE: DEFAULT,
    JobKind.LABEL_ERRORS: DEFAULT,
    JobKind.EMBED: GPU,
    JobKind.TRAIN: GPU,
    JobKind.SCORE: GPU,
}
TRAINING_RUN_QUEUE = GPU
IN_FLIGHT = (JobStatus.QUEUED, JobStatus.RUNNING)  # TrainingRun's RunStatus uses the same two values
# At most this many in-flight rows are read per queue: enough to name the few that matter and count the rest.
SCAN_LIMIT = 500
NAMED = 5  # this project's work named in the sentence; the rest is counted


@dataclass(frozen=True)
class WorkAhead:
    """One piece of this project's work ahead of the waiting one."""

    label: str  # "training run #12", "label-error search #40"
    status: str  # queued | running
    percent: int | None  # None when the work has not said how far it is

    def __str__(self) -> str:
        if self.status == JobStatus.RUNNING and self.percent is not None:
            return f"{self.label} (running, {self.percent} %)"
        return f"{self.label} ({self.status})"


@dataclass(frozen=True)
class WaitingBehind:
    """A queued job's or run's place on its queue: this project's work ahead (oldest first) and a count of others'."""

    queue: str
    ahead: list[WorkAhead] = field(default_factory=list)
    others: int = 0  # other projects' work ahead (counted, never named)

    @property
    def empty(self) -> bool:
        return not self.ahead and not self.others

    @property
    def total(self) -> int:
        return len(self.ahead) + self.others

    def __str__(self) -> str:
        parts = [str(work) for work in self.ahead[:NAMED]]
        if len(self.ahead) > NAMED:
            parts.append(f"{len(self.ahead) - NAMED} more of this project")
        if self.others:
            parts.append(f"{self.others} job{'s' if self.others != 1 else ''} of other projects")
        if not parts:
            return f"Nothing ahead on the {self.queue} queue: waiting for a worker to pick it up."
        return "Queued behind: " + ", ".join(parts)


# Keys of Job.params that only the worker reads: server folders and files with no name of the user's in them.
HIDDEN_PARAMS = frozenset({"staging_dir", "zip"})
# Keys whose value is a server path the user named (a labels CSV, a server folder): shown as its last part.
NAMED_PARAMS = frozenset({"csv", "folder"})


def job_params_shown(params: Any) -> dict:
    """A job's params as its users may see them: no staging folder or uploaded zip, each import source as its type and
    the name the user gave it (a server path as its last part), a labels CSV or server folder by name."""
    if not isinstance(params, dict):
        return {}
    shown: dict = {}
    for key, value in params.items():
        if key in HIDDEN_PARAMS:
            continue
        if key in NAMED_PARAMS:
            value = _name_of(value)
        elif key == "sources" and isinstance(value, list):
            value = [_source_shown(source) for source in value]
        shown[key] = value
    return shown


def _source_shown(source: Any) -> dict:
    if not isinstance(source, dict):
        return {}
    shown = {"type": source["type"]} if "type" in source else {}
    name = source.get("name") or _name_of(source.get("path"))
    if name:
        shown["name"] = _name_of(name)  # a server folder import is named by its path (labeling/views/imports.py)
    return shown


def _name_of(value: Any) -> Any:
    """A server path's last part ("/srv/photos/cats" -> "cats"); anything else (a relative name, None) as it is."""
    if isinstance(value, str) and (PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute()):
        return PureWindowsPath(value).name  # splits at / and \ alike
    return value


def job_errors(*, job: Job) -> list[dict]:
    """A job's rejected files, those refused at upload (over the size limit) included from the moment it is created.

    An import keeps the files refused at upload in params["errors"]; its worker copies them into job.errors (first)
    with its first progress write, which also sets `done` to at least their number (labeling/services/imports/run.py).
    So while `done` is 0 they are not in job.errors yet, whether the job is queued, reading its sources, or ended
    before it got that far (the task queue was down)."""
    stored = job.errors if isinstance(job.errors, list) else []
    if job.kind != JobKind.IMPORT:
        return stored
    refused = (job.params or {}).get("errors") if isinstance(job.params, dict) else None
    if not job.done and isinstance(refused, list):
        stored = [*refused, *stored]
    # each with the kind its file is counted under (result["rejected_by_reason"]), worked out from its reason here
    # rather than stored beside it
    return [{**e, "kind": reason_kind(str(e.get("reason", "")))} if isinstance(e, dict) else e for e in stored]


def job_queue(kind: str) -> str:
    """The Celery queue that runs jobs of `kind`."""
    return JOB_KIND_QUEUES.get(kind, DEFAULT)


def job_waiting_behind(*, job: Job) -> WaitingBehind | None:
    """What the queued `job` waits behind on its queue; None when it is not queued."""
    if job.status != JobStatus.QUEUED:
        return None
    return _waiting_behind(
        queue=job_queue(job.kind), project_id=job.project_id, created_at=job.created_at, job_id=job.pk
    )


def training_run_waiting_behind(*, run) -> WaitingBehind | None:
    """What the queued training `run` waits behind on the training queue; None when it is not queued."""
    if run.status != JobStatus.QUEUED:
        return None
    return _waiting_behind(
        queue=TRAINING_RUN_QUEUE, project_id=run.project_id, created_at=run.created_at, run_id=run.pk
    )


def _waiting_behind(
    *, queue: str, project_id: int, created_at: datetime, job_id: int | None = None, run_id: int | None = None
) -> WaitingBehind:
    ahead_of_it = Q(status=JobStatus.RUNNING) | Q(status=JobStatus.QUEUED, created_at__lt=created_at)
    rows: list[tuple[datetime, int, WorkAhead]] = []

    kinds = [kind for kind, q in JOB_KIND_QUEUES.items() if q == queue]
    jobs = (
        Job.objects.filter(ahead_of_it, kind__in=kinds, status__in=IN_FLIGHT)
        .exclude(pk=job_id)
        .order_by("created_at", "pk")
        .values_list("number", "project_id", "kind", "status", "done", "total", "created_at")[:SCAN_LIMIT]
    )
    for number, project, kind, status, done, total, created in jobs:
        percent = int(100 * done / total) if total else None
        label = f"{_lower_first(JobKind(kind).label)} #{number}"  # its number in its project (Job.number)
        rows.append((created, project, WorkAhead(label=label, status=status, percent=percent)))

    training_run = training_run_model() if queue == TRAINING_RUN_QUEUE else None
    if training_run is not None:
        runs = (
            training_run.objects.filter(ahead_of_it, status__in=IN_FLIGHT)
            .exclude(pk=run_id)
            .order_by("created_at", "pk")
            .values_list("pk", "project_id", "status", "progress", "created_at")[:SCAN_LIMIT]
        )
        for pk, project, status, progress, created in runs:
            percent = round(100 * (progress or 0.0)) if status == JobStatus.RUNNING else None
            rows.append((created, project, WorkAhead(label=f"training run #{pk}", status=status, percent=percent)))

    # Running work first (it holds the workers now), then the queued in the order they were sent.
    rows.sort(key=lambda row: (row[2].status != JobStatus.RUNNING, row[0]))
    own = [work for _, project, work in rows if project == project_id]
    return WaitingBehind(queue=queue, ahead=own, others=len(rows) - len(own))


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
