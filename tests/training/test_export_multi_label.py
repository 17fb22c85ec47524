"""A multi-label model's export files are held to the label sets the model predicts (every class at 0.5), not to
the top class of its independent sigmoids: that is what a multi-label model decides, and where two classes are both
near 1 the top one flips under any rounding while the prediction stands."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from django.urls import reverse

from labeling.models import Item, Job, JobKind, JobStatus, Role, Split
from tests.exports.models import make_model_version
from training.ml.export_onnx import agreement

pytestmark = pytest.mark.django_db


def test_label_set_agreement_against_worked_out_answers():
    reference = np.array(
        [
            [0.98, 0.97, 0.10],  # {0, 1}; the top class is a near-tie
            [0.90, 0.20, 0.60],  # {0, 2}
            [0.52, 0.10, 0.10],  # {0}, but 0.02 from the threshold: not decided
            [0.10, 0.10, 0.10],  # {}: the empty set is a prediction too
        ]
    )
    probs = np.array(
        [
            [0.96, 0.99, 0.12],  # the same set, another top class
            [0.91, 0.55, 0.58],  # class 1 crosses 0.5: another set
            [0.48, 0.10, 0.10],  # flips, where FP32 was undecided
            [0.20, 0.30, 0.40],  # the same (empty) set
        ]
    )
    multi = agreement(probs, reference, multi_label=True)
    assert multi["top1_agreement"] == pytest.approx(2 / 4)
    assert multi["decided_images"] == 3
    assert multi["top1_agreement_decided"] == pytest.approx(2 / 3)
    assert multi["max_prob_diff"] == pytest.approx(0.35)
    # The same arrays read as single-label ones compare top classes: rows 1 and 4 (a three-way tie) differ
    single = agreement(probs, reference)
    assert single["top1_agreement"] == pytest.approx(2 / 4)
    assert single["decided_images"] == 2


@pytest.fixture
def multi_label_project(project_factory, item_factory, label_class_factory):
    """A multi-label project with eight labeled items, four in the holdout, and a version with random weights."""
    from tests.training.helpers import resolve

    project = project_factory(slug="tags", name="Tags", task_type="multi")
    classes = [label_class_factory(project=project, name=n, order=i) for i, n in enumerate(["sky", "tree", "car"])]
    items = [item_factory(project=project) for _ in range(8)]
    for i, item in enumerate(items):
        resolve(item, *([classes[i % 3], classes[(i + 1) % 3]] if i % 2 else [classes[i % 3]]))
    Item.objects.filter(pk__in=[item.pk for item in items[:4]]).update(split=Split.HOLDOUT)
    Item.objects.filter(pk__in=[item.pk for item in items[4:]]).update(split=Split.TRAIN)
    make_model_version(project=project, classes=classes, items=items)
    return project


def test_the_export_of_a_multi_label_model_states_and_measures_label_set_agreement(
    multi_label_project, member_of, client, django_capture_on_commit_callbacks, tmp_path
):
    project = multi_label_project
    client.force_login(member_of(project, Role.ML_ENGINEER))
    page = reverse("training:model_exports", args=[project.slug])

    # Before any export, the INT8 promise is about the predicted classes, not the top class
    promises = client.get(page).content.decode()
    assert "the same predicted classes (probability ≥ 0.5) on ≥ 90% of the images where every FP32 probability" in (
        promises
    )
    assert "top two FP32 probabilities" not in promises
    # ... and batch inference says its CSV names every class predicted
    assert "a JSON list of the classes at 0.5 or more" in promises

    # When the model is exported
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("training:model_export_start", args=[project.slug, 1]))
    job = Job.objects.get(project=project, kind=JobKind.EXPORT_MODEL)
    assert job.status == JobStatus.SUCCEEDED, job.message

    # Then every file is measured against FP32's label sets, and says so in the table, the manifest and the card
    measured = job.result["measured"]
    assert measured["agreement"] == "label set"
    rows = {row["format"]: row for row in measured["formats"]}
    assert rows["fp32"]["top1_agreement"] == 1.0
    assert rows["int8"]["tolerance"].startswith("the same predicted classes (probability ≥ 0.5)")
    html = client.get(page).content.decode()
    assert "<th>Label-set agreement with FP32</th>" in html
    assert "<th>Subset accuracy</th>" in html
    download = client.get(reverse("labeling:export_download", args=[project.slug, job.pk]))
    (tmp_path / "m.zip").write_bytes(b"".join(download.streaming_content) if download.streaming else download.content)
    with zipfile.ZipFile(tmp_path / "m.zip") as zf:
        card = zf.read(next(n for n in zf.namelist() if n.endswith("README.md"))).decode()
        manifest = json.loads(zf.read(next(n for n in zf.namelist() if n.endswith("manifest.json"))))
    assert "| label-set agreement (classes ≥ 0.5) |" in card
    assert manifest["measured"]["agreement"] == "label set"


def test_batch_inference_of_a_multi_label_model_names_every_class_it_predicts(multi_label_project, member_of):
    import csv
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import transaction

    from labeling.services.exports import export_job_file
    from tests.factories import png_bytes, zip_of
    from training.services import inference

    project = multi_label_project
    upload = SimpleUploadedFile(
        "shots.zip", zip_of({f"shots/{k}.png": png_bytes(900 + k) for k in range(6)}), content_type="application/zip"
    )
    with transaction.atomic():
        job = inference.inference_start(project=project, user=member_of(project, Role.ML_ENGINEER), upload=upload)
    inference.inference_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    handle, _ = export_job_file(job=job)
    with handle:
        rows = list(csv.DictReader(io.TextIOWrapper(handle, encoding="utf-8")))
    assert len(rows) == 6
    for row in rows:
        probs = {c: float(row[f"p_{c}"]) for c in ("sky", "tree", "car")}
        # every class at 0.5 or more, most probable first (a JSON list); the top class as before
        clear = {c for c, p in probs.items() if abs(p - 0.5) > 1e-6}
        given = json.loads(row["predicted_classes"])
        assert [c for c in given if c in clear] == sorted(
            (c for c in clear if probs[c] >= 0.5), key=lambda c: -probs[c]
        )
        assert row["predicted_class"] == max(probs, key=probs.get)
        # ... and the confidence the prediction service logs: the least sure decision's distance from a coin flip
        # (it was the top class's probability, which says nothing of a second class at 0.5)
        assert float(row["confidence"]) == pytest.approx(min(abs(2 * p - 1) for p in probs.values()), abs=1e-5)
