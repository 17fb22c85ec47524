"""Right after a new version becomes active it has no predictions: neither "most drifted" nor a drift check can
use it, and their refusals name the way out (the earlier version whose drift reference is there, with the exact
option to pass, or --min-predictions when a few predictions are in), which then works."""

from __future__ import annotations

import uuid
from datetime import timedelta

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.utils import timezone

from labeling.models import ItemState
from serving.models import PredictionLog
from serving.services.drift_reference import _cache_path, _cache_save
from tests.factories import png_bytes
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db


def log_embedded(project, version_number: int, count: int, *, seed: int) -> list[PredictionLog]:
    """`count` predictions of the version, each with a kept image and an embedding."""
    rng = np.random.default_rng(seed)
    now = timezone.now()
    rows = []
    for k in range(count):
        uid = uuid.uuid4()
        image = default_storage.save(f"serving/{project.pk}/{uid}.png", ContentFile(png_bytes(seed + k)))
        rows.append(
            PredictionLog(
                uid=uid, project=project, created_at=now - timedelta(minutes=k), version_number=version_number,
                top_class="cat", confidence=0.5, margin=0.2, image=image, model_file="model.onnx",
                embedding=rng.normal(0.0, 1.0, 16).astype(np.float16).tobytes(),
            )
        )  # fmt: skip
    return PredictionLog.objects.bulk_create(rows)


@pytest.fixture
def switched(project_factory, label_class_factory, item_factory, settings, tmp_path):
    """Project "digits": v4 served 12 predictions and a drift check cached its reference; v7 is active now and
    has answered nothing yet."""
    settings.LABELLOOP_DATA_ROOT = tmp_path
    project = project_factory(slug="digits", name="Digits")
    for name in ("cat", "dog"):
        label_class_factory(project=project, name=name)
    item_factory(project=project, state=ItemState.LABELED)
    runs = [TrainingRun.objects.create(project=project, status="succeeded") for _ in range(2)]
    v4 = ModelVersion.objects.create(project=project, run=runs[0], number=4, active=False)
    ModelVersion.objects.create(project=project, run=runs[1], number=7, active=True)
    log_embedded(project, 4, 12, seed=80_000)
    reference = np.random.default_rng(1).normal(0.0, 1.0, (50, 16)).astype(np.float16)
    _cache_save(_cache_path(v4.pk), dict(enumerate(reference, start=1)), "model.onnx")
    return project


def test_most_drifted_of_a_version_with_no_predictions_names_the_version_to_pick(switched):
    # When the manager sends the most drifted right after v7 became active
    with pytest.raises(CommandError) as refused:
        call_command("send_to_queue", "digits", "--most-drifted", "3")

    # Then the refusal says why a drift check cannot help yet, and which option sends v4's most drifted
    message = str(refused.value)
    assert "no drift check can embed them until the prediction service has answered with v7" in message
    assert "manage.py send_to_queue digits --most-drifted N --model-version 4" in message
    assert "12 of its unsent predictions carry an embedding" in message
    assert not PredictionLog.objects.exclude(queued_at=None).exists()

    # And that option works
    call_command("send_to_queue", "digits", "--most-drifted", "3", "--model-version", "4")
    assert PredictionLog.objects.exclude(queued_at=None).count() == 3


def test_drift_check_of_a_version_with_no_predictions_names_the_way_out(switched):
    # When the engineer runs a drift check right after v7 became active
    with pytest.raises(CommandError) as refused:
        call_command("drift_check", "digits", verbosity=0)

    # Then it says v7 must answer first, and names the earlier version whose most drifted can be sent now
    message = str(refused.value)
    assert "0 predictions of version 7 carry an embedding; a drift check needs 30" in message
    assert "once the prediction service has answered 30 with version 7." in message
    assert "--min-predictions" not in message  # nothing to check on
    assert "manage.py send_to_queue digits --most-drifted N --model-version 4" in message


def test_a_few_predictions_of_the_new_version_point_to_min_predictions(switched):
    # Given v7 has answered 5 requests so far
    log_embedded(switched, 7, 5, seed=81_000)

    # When "most drifted" and a drift check are asked for, both name --min-predictions on those 5
    with pytest.raises(CommandError) as most_drifted:
        call_command("send_to_queue", "digits", "--most-drifted", "3")
    with pytest.raises(CommandError) as drift_check:
        call_command("drift_check", "digits", verbosity=0)
    for refused in (most_drifted, drift_check):
        assert "manage.py drift_check digits --min-predictions 5" in str(refused.value)
        assert "--model-version 4" in str(refused.value)


def test_no_way_out_named_when_no_other_version_has_a_reference(switched):
    # Given v4's reference is gone
    _cache_path(ModelVersion.objects.get(number=4).pk).unlink()

    # Then the refusals name no version to pick
    with pytest.raises(CommandError) as refused:
        call_command("send_to_queue", "digits", "--most-drifted", "3")
    assert "--model-version" not in str(refused.value)


def test_most_drifted_of_a_version_that_does_not_exist_says_so(switched):
    with pytest.raises(CommandError, match="No model version 9 in this project"):
        call_command("send_to_queue", "digits", "--most-drifted", "3", "--model-version", "9")
