"""A round's new ModelVersion row: numbered after the project's last, created inactive once its checkpoint is
stored (rounds.py makes it active with the priorities, in one transaction, unless it is held back)."""

from __future__ import annotations

import math
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from training.models import ModelVersion, TrainingRun
from training.services.snapshot import LabelSnapshot


def version_create(
    *, run: TrainingRun, snap: LabelSnapshot, artifact: str, metrics: dict, backbone: str
) -> ModelVersion:
    """An inactive version; it becomes active with the priorities, in one transaction (unless held back)."""
    for _attempt in range(3):
        number = (ModelVersion.objects.filter(project=run.project).aggregate(n=Max("number"))["n"] or 0) + 1
        try:
            with transaction.atomic():
                return ModelVersion.objects.create(
                    project=run.project,
                    run=run,
                    number=number,
                    artifact_path=artifact,
                    architecture=backbone[:100],
                    class_ids=list(snap.classes.ids),
                    metrics=jsonable(metrics),
                    label_count=snap.label_count,
                    dataset_hash=snap.dataset_hash,
                    active=False,
                )
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate a model version number")


def jsonable(value: Any) -> Any:
    """Metrics may hold numpy scalars or arrays; make them JSON."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
