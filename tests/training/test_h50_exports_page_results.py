"""The model exports page: a finished job's card says its figures once, in words (the inference sentence, the
download size, the measured table's caption), with numbers rounded; the batch inference help says how long files
are kept, in hours, as the dataset export page does."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labeling.models import Job, JobKind, JobStatus, Role

pytestmark = pytest.mark.django_db


def test_finished_jobs_show_no_raw_result_dump_and_round_numbers(project_factory, member_of, client):
    # Given a finished batch inference and a finished model export
    project = project_factory(slug="digits", name="Digits")
    Job.objects.create(
        project=project, kind=JobKind.INFERENCE, status=JobStatus.SUCCEEDED,
        message="198 files predicted with v3, 2 rejected",
        result={"version": 3, "predicted": 198, "rejected": 2, "bytes": 22650, "files": ["p.csv"]},
    )  # fmt: skip
    export = Job.objects.create(
        project=project, kind=JobKind.EXPORT_MODEL, status=JobStatus.SUCCEEDED,
        result={"version": 3, "architecture": "tf_efficientnet_lite0", "classes": 10, "bytes": 40_123_456,
                "onnx_max_abs_diff": 0.00003170967102050781, "torchscript_max_abs_diff": 0.0123456, "files": ["m.zip"]},
    )  # fmt: skip
    client.force_login(member_of(project, Role.ML_ENGINEER))

    # When the engineer opens the exports page (and a finished export's row is swapped in)
    page = client.get(reverse("training:model_exports", args=[project.slug])).content.decode()
    row = client.get(reverse("training:model_export_job_row", args=[project.slug, export.pk])).content.decode()

    # Then the sentence says the inference's figures, and no raw "key: value" dump repeats them
    assert "198 files predicted with v3, 2 rejected" in page
    for raw in ("rejected: 2", "bytes: 22650", "predicted: 198", "version: 3", "bytes: 40123456"):
        assert raw not in page
    # and the export's differences are rounded, the tiny one in scientific notation
    for html in (page, row):
        assert "0.00003170967102050781" not in html
        assert "ONNX logits, largest difference from PyTorch on a random batch: 3.17e-05" in html
        assert "TorchScript logits, largest difference from PyTorch on a random batch: 0.0123" in html
        assert "architecture: tf_efficientnet_lite0" in html


def test_the_inference_help_says_how_long_files_are_kept(project_factory, member_of, client, settings):
    settings.LABELLOOP_EXPORT_TTL_HOURS = 72.0
    project = project_factory(slug="digits", name="Digits")
    client.force_login(member_of(project, Role.ML_ENGINEER))

    page = client.get(reverse("training:model_exports", args=[project.slug])).content.decode()

    assert "files are\n    kept for 72 hours, then deleted." in page
    assert "LABELLOOP_EXPORT_TTL_HOURS" not in page
