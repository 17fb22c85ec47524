"""Which model the prediction service serves for a project: the active version and its exported ONNX."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from labeling.models import Job, JobKind, JobStatus
from labeling.selectors.classes import ClassTree, class_tree
from training.models import ModelVersion


class ActiveVersion(NamedTuple):
    pk: int
    number: int
    created_at: datetime

    @property
    def cache_name(self) -> str:
        return _cache_name(self.pk, self.created_at)


def _cache_name(pk: int, created_at: datetime) -> str:
    return f"{pk}-{created_at:%Y%m%dT%H%M%S%f}"


def active_version_of(*, project_id: int) -> ActiveVersion | None:
    """The project's active version (one indexed query), or None before its first model."""
    row = ModelVersion.objects.filter(project_id=project_id, active=True).values_list("pk", "number", "created_at")
    row = row.first()
    return ActiveVersion(*row) if row else None


def version_cache_name(*, version_pk: int) -> str | None:
    """The name of a version's files in this machine's caches (serving-cache/, drift-reference/): its pk and its
    creation time, or None when the version no longer exists.

    A pk alone does not name a version for long: a database created afresh over an old LABELLOOP_DATA_ROOT, or
    emptied by `manage.py flush`, numbers its versions from 1 again, and the prediction service would have served
    the old database's model (and drift checks compared against its images) for the new version 1."""
    created = ModelVersion.objects.filter(pk=version_pk).values_list("created_at", flat=True).first()
    return None if created is None else _cache_name(version_pk, created)


def version_cache_names(*, active_only: bool = False) -> set[str]:
    """The cache names of every version in the database (or of every project's active version): what this
    machine's caches may keep; an entry under any other name belongs to a deleted version or another database."""
    rows = ModelVersion.objects.filter(active=True) if active_only else ModelVersion.objects.all()
    return {_cache_name(pk, created) for pk, created in rows.values_list("pk", "created_at").iterator()}


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


def version_named(*, version_pk: int) -> str:
    """A version as pages name it, for log lines: "v6 of project shapes" (its number, not its database id)."""
    row = ModelVersion.objects.filter(pk=version_pk).values_list("number", "project__slug").first()
    return f"version id {version_pk} (deleted)" if row is None else f"v{row[0]} of project {row[1]}"


def version_classes(*, version_pk: int) -> tuple[list[int], ClassTree] | None:
    """A version's class ids (its output order) and its project's class tree (class_tree), or None when the
    version no longer exists: what the service needs to answer with the classes' stored paths."""
    version = ModelVersion.objects.filter(pk=version_pk).select_related("project").first()
    return None if version is None else (list(version.class_ids or []), class_tree(project=version.project))


def exported_versions_before(*, project_id: int, number: int, limit: int = 5) -> list[ActiveVersion]:
    """The project's versions older than `number` that have a finished, unexpired model export, newest first: what
    the service answers with while the active version is being exported (a process that never loaded the older
    version, restarted or asked for the first time, would otherwise answer 409 for the whole export)."""
    rows = ModelVersion.objects.filter(project_id=project_id, number__lt=number).order_by("-number")
    found = []
    for row in rows.values_list("pk", "number", "created_at")[:50]:
        if model_export_zip_of(project_id=project_id, version_pk=row[0]) is not None:
            found.append(ActiveVersion(*row))
            if len(found) >= limit:
                break
    return found
