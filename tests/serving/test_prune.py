"""The prediction log keeps images for the project's keep_images_days (0 = none at all) and rows for
LABELLOOP_PREDICTION_LOG_KEEP_DAYS; the hourly prune task on the housekeeping queue deletes the rest."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.files.storage import default_storage
from django.utils import timezone

from serving.models import PredictionLog
from serving.services.keys import serving_settings_set
from serving.services.prediction_log import LogRecord, prediction_logs_write
from serving.tasks import prediction_log_prune_task
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db


def record(project, *, days_ago: float, seed: int = 0) -> LogRecord:
    return LogRecord(uid=str(uuid.uuid4()), project_id=project.pk, created_at=timezone.now() - timedelta(days=days_ago),
                     version_number=1, top_class="cat", confidence=0.9, margin=0.5, embedding=None,
                     image=png_bytes(seed), image_format="PNG", api_key_id=None)  # fmt: skip


def test_prune_deletes_images_past_the_projects_days_and_rows_past_the_log_limit(project_factory, settings):
    # Given a project keeping images 30 days (the default) and one keeping them 2 days, each with images logged
    # 1, 40 and 100 days ago
    settings.LABELLOOP_PREDICTION_LOG_KEEP_DAYS = 90
    default, short = project_factory(), project_factory()
    serving_settings_set(project=short, keep_images_days=2)
    ages = {"fresh": 1, "month": 40, "ancient": 100}
    prediction_logs_write(records=[record(p, days_ago=d, seed=i) for i, p in enumerate([default, short])
                                   for d in ages.values()])  # fmt: skip
    images = dict(PredictionLog.objects.values_list("pk", "image"))
    assert all(default_storage.exists(k) for k in images.values())

    # When the periodic task runs (twice: it is safe to repeat)
    first = prediction_log_prune_task.delay().get()
    second = prediction_log_prune_task.delay().get()
    assert second == {"images_deleted": 0, "rows_deleted": 0}

    # Then the 40-day-old images are gone (file and reference), the 1-day-old kept; rows past 90 days are gone
    kept = {
        (row.project_id, round((timezone.now() - row.created_at).days)): row.image
        for row in PredictionLog.objects.all()
    }
    assert set(kept) == {(default.pk, 1), (default.pk, 40), (short.pk, 1), (short.pk, 40)}
    assert [bool(kept[(p.pk, d)]) for p in (default, short) for d in (1, 40)] == [True, False, True, False]
    assert first == {"images_deleted": 4, "rows_deleted": 2}
    assert sum(default_storage.exists(k) for k in images.values()) == 2


def test_a_project_keeping_no_images_logs_metadata_only(project_factory):
    project = project_factory()
    serving_settings_set(project=project, keep_images_days=0)
    prediction_logs_write(records=[record(project, days_ago=0)])
    row = PredictionLog.objects.get()
    assert (row.image, row.top_class, row.version_number) == ("", "cat", 1)
    assert not default_storage.exists(f"serving/{project.pk}")


def test_the_prune_task_runs_hourly_on_housekeeping():
    entry = django_settings.CELERY_BEAT_SCHEDULE["prediction-log-prune"]
    assert entry["task"] == "serving.tasks.prediction_log_prune_task"
    assert django_settings.CELERY_TASK_ROUTES[entry["task"]] == {"queue": "housekeeping"}
