"""The prediction log: what the prediction service answered, written in batches, pruned on a schedule.

The service never writes a row inside a request: it hands `LogRecord`s to a buffer (serving/runtime/log_buffer.py)
that calls `prediction_logs_write` from a background thread. Images are kept (default storage, under serving/)
while the project's `keep_images_days` allows (0 = metadata only); `prediction_log_prune` (hourly, housekeeping
queue) deletes images past that age and rows past LABELLOOP_PREDICTION_LOG_KEEP_DAYS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from serving.models import PredictedLabel, PredictionLog
from serving.selectors.keys import keep_images_days_of

logger = logging.getLogger(__name__)

IMAGE_SUFFIX = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}


@dataclass(frozen=True)
class LogRecord:
    uid: str
    project_id: int
    created_at: datetime
    version_number: int
    top_class: str
    confidence: float
    margin: float
    embedding: bytes | None
    image: bytes | None  # the request's bytes, dropped when the project keeps no images
    image_format: str
    api_key_id: int | None
    latency_ms: float | None = None  # the whole request's time in the service
    model_file: str = ""  # the export's ONNX file that answered
    labels: tuple[str, ...] = ()  # a multi-label model's predicted classes (its answer's `labels`); () otherwise


def prediction_logs_write(*, records: list[LogRecord]) -> int:
    """Store the images the projects keep, then insert every row in one statement, and a multi-label prediction's
    classes in a second. Returns rows written."""
    if not records:
        return 0
    keep: dict[int, int] = {}
    rows = []
    for record in records:
        if record.project_id not in keep:
            keep[record.project_id] = keep_images_days_of(project_id=record.project_id)
        key = ""
        if keep[record.project_id] > 0 and record.image:
            suffix = IMAGE_SUFFIX.get(record.image_format, "bin")
            name = f"serving/{record.project_id}/{record.created_at:%Y/%m/%d}/{record.uid}.{suffix}"
            key = default_storage.save(name, ContentFile(record.image))
        rows.append(
            PredictionLog(
                uid=record.uid,
                project_id=record.project_id,
                created_at=record.created_at,
                version_number=record.version_number,
                top_class=record.top_class[:500],
                confidence=min(max(record.confidence, 0.0), 1.0),
                margin=record.margin,
                embedding=record.embedding,
                image=key,
                api_key_id=record.api_key_id,
                latency_ms=record.latency_ms,
                model_file=record.model_file[:40],
            )
        )
    with transaction.atomic():
        PredictionLog.objects.bulk_create(rows, batch_size=500)  # sets each row's pk (PostgreSQL, SQLite >= 3.35)
        labels = [
            PredictedLabel(log_id=row.pk, path=path[:500])
            for row, record in zip(rows, records, strict=True)
            for path in dict.fromkeys(record.labels)
        ]
        PredictedLabel.objects.bulk_create(labels, batch_size=1000)
    return len(rows)


def prediction_log_prune(*, now: datetime | None = None) -> dict:
    """Delete kept images older than their project's keep_images_days, and rows older than
    LABELLOOP_PREDICTION_LOG_KEEP_DAYS (0 = keep rows forever). Safe to run twice or concurrently."""
    now = now or timezone.now()
    images = 0
    with_images = PredictionLog.objects.exclude(image="").values_list("project_id", flat=True).distinct()
    for project_id in list(with_images):
        cutoff = now - timedelta(days=keep_images_days_of(project_id=project_id))
        old = PredictionLog.objects.filter(project_id=project_id, created_at__lt=cutoff).exclude(image="")
        for pk, key in list(old.values_list("pk", "image")[:100_000]):
            try:
                default_storage.delete(key)
            except OSError:  # gone already, or the bucket refused: the row stops pointing at it anyway
                logger.warning("could not delete prediction image %s", key, exc_info=True)
            with transaction.atomic():
                images += PredictionLog.objects.filter(pk=pk).update(image="")
    rows = 0
    keep_days = settings.LABELLOOP_PREDICTION_LOG_KEEP_DAYS
    if keep_days > 0:
        expired = PredictionLog.objects.filter(created_at__lt=now - timedelta(days=keep_days), image="")
        rows, _ = expired.delete()
    if images or rows:
        logger.info("prediction log prune: %s images deleted, %s rows deleted", images, rows)
    return {"images_deleted": images, "rows_deleted": rows}
