"""Explanations: a model version's class-activation heatmap of one item for one class, computed by a worker.

The rules:
- One `Explanation` row per (model version, item, class index), held by a unique constraint. Asking again returns
  the same row: a heatmap is computed once and its PNG is served from the storage ever after.
- The web process only writes rows and sends `training.tasks.explanation_compute_task` (queue `gpu`) after commit,
  by name through labeling/services/dispatch.py. It never imports torch.
- Broker down: the row ends failed with dispatch's BROKER_DOWN reason, so no page polls forever; asking again
  (the page's next view) re-sends it. No other failed row is retried: the same version fails the same way.
- The worker claims a queued row under a row lock (queued -> running; a duplicate delivery does nothing), computes
  the heatmap with `training/ml/explain.py` on the version's checkpoint, saves the PNG to the default storage and
  ends the row done, or failed with the reason (a missing or broken checkpoint, an unreadable image).
- Prefetch: the labeling page names the next items of the user's queue (the image prefetch's list); their top
  class under the active version is requested ahead, so the overlay is ready when they come.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from labeling.models import Item, Project
from labeling.services.dispatch import BROKER_DOWN, task_send
from training.models import Explanation, ExplanationStatus, ModelVersion, Prediction
from training.selectors.classes import version_class_names

logger = logging.getLogger(__name__)

PREFETCH_MAX = 5
STALE_RUNNING_SECONDS = 600  # longer than explanation_compute_task's time limit
_EXPLAINERS: OrderedDict[str, object] = OrderedDict()  # checkpoint folder -> loaded Explainer (per worker process)
_EXPLAINERS_MAX = 2
_LOCK = threading.Lock()


def _send_on_commit(explanation_id: int) -> None:
    def send() -> None:
        if not task_send("training.tasks.explanation_compute_task", explanation_id):
            Explanation.objects.filter(pk=explanation_id, status=ExplanationStatus.QUEUED).update(
                status=ExplanationStatus.FAILED, error=BROKER_DOWN, finished_at=timezone.now()
            )

    transaction.on_commit(send)


def class_index_of(*, version: ModelVersion, class_id: int) -> int:
    """The position of LabelClass `class_id` in the version's outputs; ValidationError when it has none."""
    try:
        return list(version.class_ids).index(int(class_id))
    except ValueError:
        raise ValidationError(f"Model v{version.number} does not predict that class.") from None


def explanation_request(*, version: ModelVersion, item: Item, class_index: int, resend: bool = True) -> Explanation:
    """The explanation of `item` for output `class_index` of `version`: the existing row, or a new queued one with
    its task sent after commit. Idempotent. A row failed only because the broker was down is sent again, unless
    `resend` is False (a page's poll: it shows the failure rather than retrying every second)."""
    if item.project_id != version.project_id:
        raise ValidationError("The item and the model version belong to different projects.")
    if not 0 <= class_index < len(version.class_ids):
        raise ValidationError(f"Model v{version.number} has no class {class_index}.")
    row = Explanation.objects.filter(model_version=version, item=item, class_index=class_index).first()
    if row is None:
        names = version_class_names(version)
        try:
            with transaction.atomic():
                row = Explanation.objects.create(
                    model_version=version, item=item, class_index=class_index, class_name=names[class_index][:300]
                )
                _send_on_commit(row.pk)
        except IntegrityError:  # another request created it first: theirs is the one
            row = Explanation.objects.get(model_version=version, item=item, class_index=class_index)
        return row
    if resend and row.status == ExplanationStatus.FAILED and row.error == BROKER_DOWN:
        with transaction.atomic():
            updated = Explanation.objects.filter(pk=row.pk, status=ExplanationStatus.FAILED, error=BROKER_DOWN).update(
                status=ExplanationStatus.QUEUED, error="", finished_at=None
            )
            if updated:
                _send_on_commit(row.pk)
        row.refresh_from_db()
    return row


def top_class_indices(*, version: ModelVersion, item_ids: Iterable[int]) -> dict[int, int]:
    """Item id -> the version's most probable class index, for the items it has a prediction of."""
    rows = Prediction.objects.filter(model_version=version, item_id__in=list(item_ids)).values_list(
        "item_id", "probabilities"
    )
    return {item_id: max(range(len(probs)), key=probs.__getitem__) for item_id, probs in rows if probs}


def explanations_prefetch(*, project: Project, item_ids: Iterable[int]) -> int:
    """Request the top-class explanation under the active version for up to PREFETCH_MAX of the project's items
    (the next items of a queue). Returns how many rows were requested; nothing without an active version."""
    version = ModelVersion.objects.filter(project=project, active=True).first()
    ids = [int(i) for i in item_ids][:PREFETCH_MAX]
    if version is None or not ids:
        return 0
    items = {item.pk: item for item in Item.objects.filter(project=project, pk__in=ids)}
    tops = top_class_indices(version=version, item_ids=items)
    for item_id, index in tops.items():
        explanation_request(version=version, item=items[item_id], class_index=index)
    return len(tops)


# --- the worker ---


def _claim(explanation_id: int) -> Explanation | None:
    """queued -> running under a row lock; None when another delivery has it. A row left running by a worker that
    died (the task is redelivered: acks_late) is taken again once it is older than the task's time limit."""
    with transaction.atomic():
        row = Explanation.objects.select_for_update().filter(pk=explanation_id).first()
        if row is None:
            return None
        stale = row.status == ExplanationStatus.RUNNING and (
            row.started_at is None or row.started_at < timezone.now() - timedelta(seconds=STALE_RUNNING_SECONDS)
        )
        if row.status != ExplanationStatus.QUEUED and not stale:
            return None
        row.status = ExplanationStatus.RUNNING
        row.started_at = timezone.now()
        row.save(update_fields=["status", "started_at"])
    return row


def _finish(row: Explanation, *, error: str = "", png: str = "", probability: float | None = None) -> None:
    row.status = ExplanationStatus.FAILED if error else ExplanationStatus.DONE
    row.error = error[:2000]
    row.png = png
    row.probability = probability
    row.finished_at = timezone.now()
    row.save(update_fields=["status", "error", "png", "probability", "finished_at"])


def _explainer(version: ModelVersion):
    """The version's loaded Explainer, kept for the next items (prefetch asks for several in a row)."""
    from training.ml.explain import load_explainer
    from training.services.artifacts import version_checkpoint_dir

    folder = str(version_checkpoint_dir(version=version))
    with _LOCK:
        if folder in _EXPLAINERS:
            _EXPLAINERS.move_to_end(folder)
            return _EXPLAINERS[folder]
    explainer = load_explainer(Path(folder))
    with _LOCK:
        _EXPLAINERS[folder] = explainer
        while len(_EXPLAINERS) > _EXPLAINERS_MAX:
            _EXPLAINERS.popitem(last=False)
    return explainer


def png_key(row: Explanation) -> str:
    return f"explanations/{row.item.project_id}/v{row.model_version_id}/{row.item_id}-{row.class_index}.png"


def explanation_compute(*, explanation_id: int) -> dict:
    """Compute a queued explanation (worker only: needs torch). Any failure ends the row failed with the reason."""
    row = _claim(explanation_id)
    if row is None:
        return {"explanation": explanation_id, "skipped": True}
    try:
        from training.ml.data import load_image

        explainer = _explainer(row.model_version)
        with row.item.file.open("rb") as fh:
            image = load_image(fh)
        png, probability = explainer.overlay(image, row.class_index)
        key = default_storage.save(png_key(row), ContentFile(png))
    except Exception as exc:  # a failed heatmap is a message on the page, never a crashed worker
        logger.warning("explanation %s failed: %s: %s", explanation_id, type(exc).__name__, exc)
        _finish(row, error=f"{type(exc).__name__}: {exc}")
        return {"explanation": explanation_id, "status": ExplanationStatus.FAILED}
    _finish(row, png=key, probability=probability)
    return {"explanation": explanation_id, "status": ExplanationStatus.DONE}
