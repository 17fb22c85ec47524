"""Writes for Jobs: the progress records the UI and commands poll."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from labeling.models import Job, JobStatus, Project


def job_create(*, project: Project, kind: str, created_by=None, total: int = 0, params: dict | None = None) -> Job:
    """A new queued job, numbered next in its project (Job.number) under the project's row lock, so that two jobs
    started at once get two numbers (SQLite: the IMMEDIATE transaction is the lock)."""
    with transaction.atomic():
        project_lock(project_id=project.pk)
        return Job.objects.create(project=project, kind=kind, created_by=created_by, total=total, params=params or {})


def project_lock(*, project_id: int) -> None:
    """Lock the project's row until the transaction ends: held by whoever creates a job, which takes the project's
    next number. Call inside transaction.atomic()."""
    list(Project.objects.select_for_update().filter(pk=project_id).values_list("pk"))


def job_claim(*, job_id: int, message: str = "Starting") -> Job | None:
    """Start a queued job under a row lock, the one claim of every job a task runs; None when it already ended (a
    duplicate delivery, or a redelivery after it finished): the caller then does nothing."""
    with transaction.atomic():
        job = Job.objects.select_for_update().select_related("project").get(pk=job_id)
        if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            return None
        job_start(job=job, message=message)
    return job


def job_start(*, job: Job, total: int | None = None, message: str = "") -> None:
    job.status = JobStatus.RUNNING
    job.started_at = timezone.now()
    fields = ["status", "started_at"]
    if total is not None:
        job.total = total
        fields.append("total")
    if message:
        job.message = message
        fields.append("message")
    job.save(update_fields=fields)


def job_progress(*, job: Job, done: int, total: int | None = None, message: str | None = None) -> None:
    job.done = done
    fields = ["done"]
    if total is not None:
        job.total = total
        fields.append("total")
    if message is not None:
        job.message = message[:500]
        fields.append("message")
    Job.objects.filter(pk=job.pk).update(**{f: getattr(job, f) for f in fields})


def job_finish(*, job: Job, result: dict | None = None, error: str = "") -> None:
    job.status = JobStatus.FAILED if error else JobStatus.SUCCEEDED
    job.finished_at = timezone.now()
    if error:
        job.message = error[:500]
    if result is not None:
        job.result = result
    if job.status == JobStatus.SUCCEEDED and job.total:
        job.done = job.total
    job.save(update_fields=["status", "finished_at", "message", "result", "errors", "done"])


def job_increment(*, job_id: int, by: int = 1) -> None:
    Job.objects.filter(pk=job_id).update(done=F("done") + by)
