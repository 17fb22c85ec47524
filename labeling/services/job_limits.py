"""The one rule for jobs that people start on demand (dataset exports, model exports, batch inference).

- Coalesce: a request whose inputs equal those of a job of the same kind already queued or running in the same
  project gets that job back (`job.coalesced` is True) instead of a new one; nothing is enqueued again.
- Bound: at most LABELLOOP_MAX_QUEUED_JOBS_PER_USER such jobs queued or running per user (all projects
  together) and LABELLOOP_MAX_QUEUED_JOBS_PER_PROJECT per project. Past either, JobLimitReached (HTTP 429 with
  Retry-After on the API and on the pages, the message shown on the page) and nothing is created. 0 turns a limit
  off.

The look-up, the counts and the insert run in one transaction that first locks the user's and the project's
rows (SQLite: the IMMEDIATE transaction is the lock), so simultaneous identical requests get one job.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from labeling.models import Job, JobKind, JobStatus, Project
from labeling.services.jobs import project_lock

BOUNDED_KINDS = (JobKind.EXPORT_DATASET, JobKind.EXPORT_MODEL, JobKind.INFERENCE)
IN_FLIGHT = (JobStatus.QUEUED, JobStatus.RUNNING)
INPUTS_KEY = "inputs_key"  # in Job.params: the hash of the inputs that identify the work
# Retry-After of the job limit's 429 (API and pages alike). A place frees only when one of the caller's (or the
# project's) exports or inference jobs in flight finishes, which the server cannot foresee: they take from seconds to
# many minutes. A minute keeps a client that honours the header from asking again and again while a job runs, and
# retries soon after a typical export ends; a client that wants to know sooner polls its job (GET .../jobs/<id>/).
JOB_LIMIT_RETRY_AFTER_SECONDS = 60


class JobLimitReached(Exception):
    """Too many bounded jobs queued or running for this user or project; the message says which and what to do."""

    def __init__(self, message: str, *, scope: str, limit: int):
        super().__init__(message)
        self.scope = scope
        self.limit = limit


def inputs_key(*, kind: str, inputs: dict[str, Any]) -> str:
    """A stable hash of the inputs that make two requests the same work."""
    text = json.dumps([kind, inputs], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _limit(name: str, default: int) -> int:
    return int(getattr(settings, name, default) or 0)


def _in_flight():
    return Job.objects.filter(kind__in=BOUNDED_KINDS, status__in=IN_FLIGHT)


def job_create_bounded(
    *, project: Project, kind: str, user, inputs: dict[str, Any], params: dict | None = None, total: int = 0
) -> Job:
    """The queued or running job of `kind` for the same `inputs` in `project` (coalesced = True), or a new one.

    `inputs` are what identify the work (format and filters, model version, input files' hash); they are stored
    in params with `params`. Raises JobLimitReached, creating nothing, when the user or project is at its limit.
    The caller enqueues the job after commit only when `job.coalesced` is False.
    """
    if kind not in BOUNDED_KINDS:
        raise ValueError(f"{kind} is not a bounded kind of job")
    key = inputs_key(kind=kind, inputs=inputs)
    user = user if getattr(user, "is_authenticated", False) else None
    with transaction.atomic():
        if user is not None:
            list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk"))
        project_lock(project_id=project.pk)  # also what numbers the new job safely (Job.number)
        existing = (
            _in_flight().filter(project=project, kind=kind, **{f"params__{INPUTS_KEY}": key}).order_by("pk").first()
        )
        if existing is not None:
            existing.coalesced = True
            return existing
        per_user = _limit("LABELLOOP_MAX_QUEUED_JOBS_PER_USER", 5)
        if user is not None and per_user:
            mine = _in_flight().filter(created_by=user).count()
            if mine >= per_user:
                raise JobLimitReached(
                    f"You already have {mine} exports or inference jobs queued or running (at most {per_user}). "
                    "Wait for one to finish, then start this one again.",
                    scope="user",
                    limit=per_user,
                )
        per_project = _limit("LABELLOOP_MAX_QUEUED_JOBS_PER_PROJECT", 10)
        if per_project:
            theirs = _in_flight().filter(project=project).count()
            if theirs >= per_project:
                raise JobLimitReached(
                    f"This project already has {theirs} exports or inference jobs queued or running "
                    f"(at most {per_project}). Wait for one to finish, then start this one again.",
                    scope="project",
                    limit=per_project,
                )
        job = Job.objects.create(
            project=project,
            kind=kind,
            created_by=user,
            total=total,
            params={**inputs, **(params or {}), INPUTS_KEY: key},
        )
    job.coalesced = False
    return job
