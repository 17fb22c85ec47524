"""Which model the prediction service serves for a project: the active version and its exported ONNX."""

from __future__ import annotations

from typing import NamedTuple

from labeling.models import Job, JobKind, JobStatus
from training.models import ModelVersion


class ActiveVersion(NamedTuple):
    pk: int
    number: int


def active_version_of(*, project_id: int) -> ActiveVersion | None:
    """The project's active version (one indexed query), or None before its first model."""
    row = ModelVersion.objects.filter(project_id=project_id, active=True).values_list("pk", "number").first()
    return ActiveVersion(*row) if row else None


def model_export_zip_of(*, project_id: int, version_pk: int) -> str | None:
    """Storage key (export storage) of the newest finished, unexpired model export of a version, or None."""
    jobs = Job.objects.filter(
        project_id=project_id, kind=JobKind.EXPORT_MODEL, status=JobStatus.SUCCEEDED, params__version_id=version_pk
    ).order_by("-finished_at", "-pk")
    for result in jobs.values_list("result", flat=True)[:10]:
        files = (result or {}).get("files") or []
        if files and not (result or {}).get("expired_at"):
            return files[0]
    return None
