"""Finished model exports that a new request for the same work can be given instead of a new build.

An export's inputs: the version (its checkpoint never changes) and its metrics, the code that builds it
(`code_version`), and what it is measured and described with: the project's resolved labels (count and newest
change), its items (count and newest id: unlabeled images join the measured set, INT8 is calibrated on train items),
its class tree (config.json names the classes by path) and the newest label-error search (the card's cross-validated
estimate). A finished export with the same inputs (Job.params' inputs_key) whose zip is still stored is that export:
building it again costs minutes of CPU for the same zip.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db.models import Count, Max

from labeling.models import Item, Job, JobKind, JobStatus, ResolvedLabel
from labeling.selectors.classes import class_tree
from labeling.selectors.exports import export_is_expired
from labeling.services.exports import code_version, export_storage
from labeling.services.job_limits import INPUTS_KEY, inputs_key
from training.models import ModelVersion
from training.selectors.runs import PER_CLASS_METRICS


def _project_inputs(project) -> dict[str, Any]:
    labels = ResolvedLabel.objects.filter(project=project).aggregate(n=Count("pk"), newest=Max("updated_at"))
    items = Item.objects.filter(project=project).aggregate(n=Count("pk"), newest=Max("pk"))
    tree = json.dumps(sorted(class_tree(project=project).items()), separators=(",", ":"))
    searches = Job.objects.filter(project=project, kind=JobKind.LABEL_ERRORS, status=JobStatus.SUCCEEDED)
    return {
        "labels": [labels["n"], labels["newest"].isoformat() if labels["newest"] else None],
        "items": [items["n"], items["newest"]],
        "classes": _digest(tree),
        # the card's cross-validated estimate comes from the newest label-error search (selectors/figures.py)
        "label_errors": searches.filter(result__has_key="cross_validated")
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first(),
        "code_version": code_version(),
    }


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def model_export_inputs(*, version: ModelVersion, project_inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """What identifies the export of `version` as the project stands now (see the module docstring). The version's
    metrics count too, without the per-class parts (a version made active by hand records who and when)."""
    metrics = version.metrics if isinstance(version.metrics, dict) else {}
    shown = {k: v for k, v in metrics.items() if k not in PER_CLASS_METRICS}
    return {
        "version_id": version.pk,
        "metrics": _digest(json.dumps(shown, sort_keys=True, default=str)),
        **(project_inputs or _project_inputs(version.project)),
    }


def model_export_inputs_key(inputs: dict[str, Any]) -> str:
    return inputs_key(kind=JobKind.EXPORT_MODEL, inputs=inputs)


def _usable(job: Job) -> bool:
    files = (job.result or {}).get("files") or []
    if export_is_expired(job) or not files:
        return False
    try:
        return export_storage().exists(files[0])
    except OSError:
        return False


def _finished(project, keys: list[str]):
    return Job.objects.filter(
        project=project, kind=JobKind.EXPORT_MODEL, status=JobStatus.SUCCEEDED, **{f"params__{INPUTS_KEY}__in": keys}
    ).order_by("-finished_at", "-pk")


def model_export_finished(*, version: ModelVersion, inputs: dict[str, Any] | None = None) -> Job | None:
    """The newest succeeded export of `version` with the same inputs whose zip is still stored, or None."""
    key = model_export_inputs_key(inputs or model_export_inputs(version=version))
    return next((job for job in _finished(version.project, [key]) if _usable(job)), None)


def model_exports_finished(*, project, versions) -> dict[int, Job]:
    """version pk -> its reusable finished export (model_export_finished) for the versions of one page."""
    shared = _project_inputs(project)
    keys = {model_export_inputs_key(model_export_inputs(version=v, project_inputs=shared)): v.pk for v in versions}
    found: dict[int, Job] = {}
    for job in _finished(project, list(keys)):
        pk = keys[job.params[INPUTS_KEY]]
        if pk not in found and _usable(job):
            found[pk] = job
    return found
