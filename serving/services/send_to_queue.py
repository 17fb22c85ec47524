"""Send production predictions back to the labeling queue.

The kept request images of the selected predictions are copied into an import staging folder and go through the
normal validated import (labeling.services.imports: decoded and checked, deduplicated by sha256 against the
project). They go to the front of the labeling queue in the order picked, in the training split (picked for being
hard, as the strategy's picks are, they never join the holdout), until the next scoring ranks them with the rest.
Each sent prediction keeps when it was sent and its image's sha256: the project's item with that sha256 (unique per
project) is the link from the prediction to its human label, also when the import found the image already there. A
prediction is sent at most once. One whose image the project already has is done too (never offered again: it would
be a duplicate each time), but nothing is queued for it, and the job's params and the counts say so
(serving.selectors.sent).

The automatic send (`predictions_auto_queue`, daily on the housekeeping queue) sends each project's
auto_queue_per_day least-confident predictions of the last day; a second run on the same day sends nothing.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from labeling.models import Job, JobKind, Project
from labeling.selectors.classes import (
    PATH_SEPARATOR,
    ClassTree,
    class_path_display,
    class_path_names,
    class_path_normalize,
    class_paths,
    class_tree,
)
from labeling.services.imports import import_job_create, import_job_enqueue
from serving.models import PredictionLog, ServingSettings
from serving.selectors.monitoring import MAX_SEND
from serving.selectors.send_selection import Order, Selection, predictions_matching, predictions_select
from serving.selectors.sent import shas_in_project
from serving.services.drift_outliers import predictions_most_drifted

logger = logging.getLogger(__name__)

NOTHING_TO_SEND = (
    "No production images match: only predictions whose image is still kept (see the keys page's retention) and "
    "that were not sent before can be sent."
)


def _nothing_to_send(*, project: Project, selection: Selection, tree: ClassTree) -> str:
    """Why `selection` picked nothing: the retention and "sent before" rule when some prediction matches its filters,
    else that none does (a class never predicted, a version that answered nothing), naming the filters given."""
    if selection.order == Order.MOST_DRIFTED or predictions_matching(project=project, selection=selection).exists():
        return NOTHING_TO_SEND
    parts = []
    if selection.top_class:
        class_id = {path: pk for pk, path in class_paths(tree).items()}[selection.top_class]
        under = any(parent == class_id for _name, parent in tree.values())
        name = class_path_display(class_path_names(class_id, tree))
        parts.append(f"of “{name}”" + (" or a class under it" if under else ""))
    if selection.version_number is not None:
        parts.append(f"by model version {selection.version_number}")
    if selection.since is not None or selection.until is not None:
        parts.append("in that time window")
    if not parts:
        return (
            "No production images match: no prediction is logged yet (the prediction service writes its log a few "
            "seconds after it answers; try again shortly)."
        )
    return f"No production images match: the prediction log has no prediction {' '.join(parts)}."


def _staging_dir(project: Project) -> Path:
    # Under the import staging root, so the staging sweep removes it if its job never ran.
    root = Path(settings.LABELLOOP_DATA_ROOT) / "staging" / str(project.pk) / "serving"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="upload-", dir=root))


def predictions_send_to_queue(*, project: Project, user=None, selection: Selection, source: str = "manual") -> Job:
    """Send the predictions `selection` picks to the labeling queue as one import job (queued after commit); its
    params' "send_counts" say how many images it sends ("sent") and how many the project already had
    ("already_in_project"; serving.selectors.sent.send_outcome words it).

    Raises ValidationError (nothing changed) when the selection is invalid or picks no prediction with a kept
    image. Images that vanished from storage since (pruned meanwhile) are listed as the job's rejections.
    `selection.top_class` may be spelled either way ("a/b" or "a / b"); it stands for the class and every class
    under it, and matches the predictions logged under either spelling of each
    (serving.selectors.send_selection.predictions_matching)."""
    if selection.top_class:
        selection = replace(selection, top_class=class_path_normalize(selection.top_class))
    if selection.order not in Order.CHOICES:
        raise ValidationError(f"Unknown order {selection.order!r}: use one of {', '.join(Order.CHOICES)}.")
    if selection.since and selection.until and selection.since >= selection.until:
        raise ValidationError("The time window is empty: 'since' must be before 'until'.")
    if not 1 <= selection.limit <= MAX_SEND:
        raise ValidationError(f"How many: between 1 and {MAX_SEND}.")
    tree = class_tree(project=project)
    if selection.top_class and selection.top_class not in class_paths(tree).values():
        raise ValidationError(
            f"No class {class_path_display(selection.top_class.split(PATH_SEPARATOR))!r} in this project: "
            "give a class path as the class list shows it (levels separated by /), or leave it empty for any class."
        )
    if selection.order == Order.MOST_DRIFTED:
        picked = predictions_most_drifted(project=project, selection=selection, limit=selection.limit)
    else:
        picked = predictions_select(project=project, selection=selection)
    if not picked:
        raise ValidationError(_nothing_to_send(project=project, selection=selection, tree=tree))
    directory = _staging_dir(project)
    sources, errors, sent = [], [], []
    now = timezone.now()
    for log in picked:
        name = f"production/{log.created_at:%Y-%m-%d}/{log.uid}{Path(log.image).suffix}"
        try:
            with default_storage.open(log.image, "rb") as handle:
                data = handle.read()
        except (OSError, ValueError):
            errors.append({"name": name, "reason": "the kept image is gone (pruned since)"})
            continue
        target = directory / f"{log.uid}{Path(log.image).suffix}"
        target.write_bytes(data)
        sources.append({"type": "file", "path": str(target), "name": name})
        log.queued_at, log.image_sha256 = now, hashlib.sha256(data).hexdigest()
        sent.append(log)
    if not sent:
        shutil.rmtree(directory, ignore_errors=True)
        raise ValidationError("The selected predictions' images are gone (pruned since): nothing was sent.")
    had = shas_in_project(project=project, shas=[log.image_sha256 for log in sent])
    new_images = {log.image_sha256 for log in sent} - had
    with transaction.atomic():
        job = import_job_create(
            project=project, created_by=user, sources=sources, staging_dir=str(directory), errors=errors, to_front=True
        )
        job.params = {
            **job.params,
            "send_to_queue": {
                "source": source,
                "order": selection.order,
                "predictions": len(sent),
                "day": f"{now:%Y-%m-%d}",
            },
            # What the queue gets: the new images (a file in two predictions counts once); the import skips the rest.
            "send_counts": {
                "sent": len(new_images),
                "already_in_project": sum(log.image_sha256 in had for log in sent),
            },
        }
        job.save(update_fields=["params"])
        PredictionLog.objects.bulk_update(sent, ["queued_at", "image_sha256"], batch_size=500)
        import_job_enqueue(job=job)
    return job


def predictions_auto_queue(*, now: datetime | None = None) -> dict:
    """For each project with auto_queue_per_day > 0: send its least-confident kept predictions of the last 24 h,
    once per (UTC) day. Returns {"projects": n, "jobs": [ids]}."""
    now = now or timezone.now()
    day = f"{now:%Y-%m-%d}"
    jobs = []
    settings_rows = ServingSettings.objects.filter(auto_queue_per_day__gt=0).select_related("project")
    for row in settings_rows:
        done_today = Job.objects.filter(
            project=row.project, kind=JobKind.IMPORT, params__send_to_queue__source="auto",
            params__send_to_queue__day=day,
        ).exists()  # fmt: skip
        if done_today:
            continue
        selection = Selection(
            order=Order.LOWEST_CONFIDENCE, limit=row.auto_queue_per_day, since=now - timedelta(days=1), until=now
        )
        try:
            job = predictions_send_to_queue(project=row.project, selection=selection, source="auto")
        except ValidationError:
            continue  # no new production images today
        jobs.append(job.pk)
    if jobs:
        logger.info("auto send to queue: %s import jobs", len(jobs))
    return {"projects": settings_rows.count(), "jobs": jobs}


def auto_queue_set(*, project: Project, per_day: int) -> ServingSettings:
    """Set how many least-confident production images per day enter the queue by themselves (0 = off)."""
    if not 0 <= per_day <= 10_000:
        raise ValidationError("Images per day must be between 0 and 10000.")
    row, _ = ServingSettings.objects.get_or_create(project=project)
    row.auto_queue_per_day = per_day
    row.save(update_fields=["auto_queue_per_day"])
    return row
