"""A model of a nested taxonomy names its classes as the dataset export does: stored paths ("shapes/angular/square"),
in the model export's config.json and card, in the prediction service's answers (classes, top_k, labels) and in
batch inference's CSV; the output order is stated as the model's own, not the dataset export's ImageFolder order.
Versions exported before (config.json in display paths, "shapes / angular / square") keep serving, answered with
stored paths, their file left as it was; prediction logs in either spelling count for their class."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.utils import timezone

from labeling.models import Role, TaskType
from labeling.selectors.exports import ExportFilters
from labeling.services.annotations import annotation_create
from labeling.services.exports import dataset_export_write, export_job_file, export_storage
from serving.selectors.models import model_export_zip_of
from serving.services.prediction_log import LogRecord, prediction_logs_write
from tests.exports.models import make_model_version
from tests.factories import page_client, png_bytes
from tests.serving.conftest import export_json_edit, export_version
from training.services import inference
from training.services.snapshot import class_order

pytestmark = pytest.mark.django_db

CIRCLE, SQUARE, TRIANGLE = "shapes/round/circle", "shapes/angular/square", "shapes/angular/triangle"
MODEL_ORDER = [CIRCLE, SQUARE, TRIANGLE]  # the classes' order on the settings page: the model's outputs
DISPLAY = {path: path.replace("/", " / ") for path in MODEL_ORDER}  # as pages (and trained checkpoints) spell them


def shapes_taxonomy(project, label_class_factory) -> list:
    """shapes / {round / circle, angular / {square, triangle}}: the leaves, in the model's order."""
    shapes = label_class_factory(project=project, name="shapes", order=0)
    round_ = label_class_factory(project=project, name="round", parent=shapes, order=1)
    circle = label_class_factory(project=project, name="circle", parent=round_, order=2)
    angular = label_class_factory(project=project, name="angular", parent=shapes, order=3)
    square = label_class_factory(project=project, name="square", parent=angular, order=4)
    triangle = label_class_factory(project=project, name="triangle", parent=angular, order=5)
    return [circle, square, triangle]


def version_of_trained_names(project, leaves, items, *, number: int = 1):
    """A version whose checkpoint names its classes as a training round does (class_order's names: display paths)."""
    version = make_model_version(project=project, classes=leaves, items=items, number=number)
    config_file = Path(settings.LABELLOOP_DATA_ROOT) / version.artifact_path / "config.json"
    config = json.loads(config_file.read_text())
    config["class_names"] = class_order(project=project).names
    assert config["class_names"] == [DISPLAY[p] for p in MODEL_ORDER]
    # ... and whose holdout figures name them as training's evaluation does (the checkpoint's names), in the
    # version's metrics and in the checkpoint's own copy, beside the registered weights it started from
    row = {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 1, "predicted": 1}
    names = {"macro_classes": [DISPLAY[CIRCLE], DISPLAY[SQUARE]], "no_support": [DISPLAY[TRIANGLE]]}
    version.metrics = {**(version.metrics or {}), "per_class": {DISPLAY[p]: row for p in MODEL_ORDER}, **names}
    version.save(update_fields=["metrics"])
    config["metrics"] = version.metrics
    config["backbone_weights"] = f"/srv/team/weights/tower.safetensors#sha256={'a' * 64}"
    config["round_config"] = {**config.get("round_config", {}), "weights": config["backbone_weights"]}
    config_file.write_text(json.dumps(config))
    return version


def export_files(project, version) -> dict[str, bytes]:
    """The files of the version's stored model export zip, by name."""
    key = model_export_zip_of(project_id=project.pk, version_pk=version.pk)
    with export_storage().open(key, "rb") as fh, zipfile.ZipFile(io.BytesIO(fh.read())) as zf:
        return {name.split("/", 1)[1]: zf.read(name) for name in zf.namelist()}


@pytest.fixture
def nested(project_factory, label_class_factory, item_factory, member_of, tmp_path):
    """A single-label nested project, 6 images labeled (2 per leaf), v1 trained and exported."""
    project = project_factory(slug="nested", name="Nested")
    leaves = shapes_taxonomy(project, label_class_factory)
    items = [item_factory(project=project) for _ in range(6)]
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    for k, item in enumerate(items):
        annotation_create(item=item, user=annotator, class_ids=[leaves[k % 3].pk])
    version = version_of_trained_names(project, leaves, items)
    export_version(project, 1, tmp_path / "exports")
    return project, leaves, items, version


def test_the_model_export_names_classes_as_the_dataset_export_does_and_states_its_order(nested):
    project, _, _, version = nested
    files = export_files(project, version)
    config = json.loads(files["config.json"])
    manifest = dataset_export_write(project=project, fmt="imagefolder", filters=ExportFilters())["manifest"]
    dataset_paths = {c["path"]: c["index"] for c in manifest["classes"]}

    # config.json: output j is class_names[j], each a stored path of the dataset export
    assert config["class_names"] == MODEL_ORDER
    assert set(config["class_names"]) == set(dataset_paths)
    assert config["labelloop"]["class_ids"] == list(version.class_ids)
    note = config["labelloop"]["class_order"]
    assert "class_names[j]" in note
    assert "class_map" in note
    # ... and the two orders differ here, which is why the note says to match by path: ImageFolder sorts folders
    assert [dataset_paths[p] for p in config["class_names"]] == [2, 0, 1]
    # The card lists the same names, numbered by output, and says the same
    card = files["README.md"].decode()
    classes_part = card.split("## Classes (output order)")[1].split("## Preprocessing")[0]
    assert f"0. {CIRCLE}\n1. {SQUARE}\n2. {TRIANGLE}" in classes_part
    assert "not a dataset export's `class_map`" in classes_part
    assert " / " not in classes_part
    # The per-class figures name the classes as class_names does, in config.json and in the card's table
    for metrics in (config["labelloop"]["metrics"], config["metrics"]):
        assert set(metrics["per_class"]) == set(config["class_names"])
        assert (metrics["macro_classes"], metrics["no_support"]) == ([CIRCLE, SQUARE], [TRIANGLE])
    # The weights it started from are named by file and sha256, not by the server's folder
    assert config["backbone_weights"] == f"tower.safetensors#sha256={'a' * 64}"
    assert config["round_config"]["weights"] == config["backbone_weights"]  # the round's settings too (stop 55)
    assert "/srv/team" not in files["config.json"].decode()
    table = [line for line in card.splitlines() if line.startswith("| shapes")]
    assert [line.split(" | ")[0] for line in table] == [f"| {p}" for p in MODEL_ORDER]
    # ... captioned, in the holdout's section (after a cross-validated section it read as part of that estimate)
    holdout_section = card.split("## Holdout metrics")[1].split("\n## ")[0]
    assert "Per class, on the holdout:" in holdout_section
    assert table[0] in holdout_section


def test_the_service_answers_the_dataset_exports_class_paths(nested, predict, api_key):
    project = nested[0]
    _, token = api_key(project)
    manifest = dataset_export_write(project=project, fmt="csv", filters=ExportFilters())["manifest"]
    dataset_paths = {c["path"] for c in manifest["classes"]}

    status, payload = predict(project.slug, token, files=[(f"{k}.png", png_bytes(70_000 + k)) for k in range(4)])

    assert status == 200, payload
    assert payload["classes"] == MODEL_ORDER
    for prediction in payload["predictions"]:
        assert {entry["class"] for entry in prediction["top_k"]} <= dataset_paths
        top = prediction["top_k"][0]["class"]
        assert top == MODEL_ORDER[max(range(3), key=prediction["probabilities"].__getitem__)]


def test_an_export_made_before_keeps_serving_with_stored_paths_and_is_left_unchanged(nested, predict, api_key):
    # Given v1's export as the earlier code wrote it: config.json's class_names in display paths
    project, _, _, version = nested
    key = model_export_zip_of(project_id=project.pk, version_pk=version.pk)

    def as_before(config: dict) -> None:
        config["class_names"] = [DISPLAY[p] for p in MODEL_ORDER]
        del config["labelloop"]["class_order"]

    export_json_edit(key, "config.json", as_before)
    path = Path(export_storage().path(key))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    _, token = api_key(project)

    # When a script asks the service
    status, payload = predict(project.slug, token, files=[("a.png", png_bytes(71_000))])

    # Then it answers stored paths, and the old export on disk is as it was
    assert status == 200, payload
    assert payload["classes"] == MODEL_ORDER
    assert payload["predictions"][0]["top_k"][0]["class"] in MODEL_ORDER
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_logs_in_either_spelling_count_for_their_class_on_monitoring(nested, predict, api_key, member_of):
    # Given predictions answered by the service now (stored paths) and one logged before, in a display path
    project, leaves, _, _ = nested
    _, token = api_key(project)
    status, payload = predict(project.slug, token, files=[(f"{k}.png", png_bytes(72_000 + k)) for k in range(3)])
    assert status == 200, payload
    predict.log.flush()
    prediction_logs_write(
        records=[
            LogRecord(
                uid=str(uuid.uuid4()), project_id=project.pk, created_at=timezone.now(), version_number=1,
                top_class=DISPLAY[TRIANGLE], confidence=0.9, margin=0.5, embedding=None, image=b"",
                image_format="", api_key_id=None,
            )
        ]
    )  # fmt: skip
    answered = [p["top_k"][0]["class"] for p in payload["predictions"]] + [TRIANGLE]

    # When the manager reads monitoring
    data = page_client(member_of(project, Role.MANAGER, "boss")).get(f"/api/projects/{project.slug}/monitoring/")

    # Then every prediction is counted under its class (by id), none as a name no class has
    rows = data.json()["classes"]
    by_id = {row["class_id"]: row["predicted"] for row in rows if row["predicted"]}
    expected: dict[int, int] = {}
    for path in answered:
        class_id = leaves[MODEL_ORDER.index(path)].pk
        expected[class_id] = expected.get(class_id, 0) + 1
    assert by_id == expected
    assert all(row["class_id"] is not None for row in rows)


def test_a_multi_label_models_labels_are_stored_paths(
    project_factory, label_class_factory, item_factory, predict, api_key, tmp_path
):
    project = project_factory(slug="nested-multi", task_type=TaskType.MULTI)
    leaves = shapes_taxonomy(project, label_class_factory)
    items = [item_factory(project=project) for _ in range(4)]
    version_of_trained_names(project, leaves, items)
    export_version(project, 1, tmp_path / "exports")
    _, token = api_key(project)

    status, payload = predict(project.slug, token, files=[(f"{k}.png", png_bytes(73_000 + k)) for k in range(6)])

    assert status == 200, payload
    assert payload["classes"] == MODEL_ORDER
    labels = [label for p in payload["predictions"] for label in p["labels"]]
    assert labels, "a random model predicts some class at 0.5 or more"
    assert set(labels) <= set(MODEL_ORDER)


def test_batch_inference_csv_names_classes_by_stored_path(nested, member_of):
    project, _, _, _ = nested
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("a.png", png_bytes(74_000))
        zf.writestr("b.png", png_bytes(74_001))
    upload = SimpleUploadedFile("batch.zip", buffer.getvalue(), content_type="application/zip")
    with transaction.atomic():
        job = inference.inference_start(project=project, user=member_of(project, Role.ML_ENGINEER), upload=upload)
    inference.inference_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.result.get("predicted") == 2, (job.status, job.message, job.errors)
    handle, _ = export_job_file(job=job)
    with handle:
        rows = list(csv.DictReader(io.TextIOWrapper(handle, encoding="utf-8")))
    assert [name for name in rows[0] if name.startswith("p_")] == [f"p_{p}" for p in MODEL_ORDER]
    assert {row["predicted_class"] for row in rows} <= set(MODEL_ORDER)


@pytest.mark.slow
def test_a_really_trained_nested_model_answers_what_the_dataset_export_labels_say(
    project_factory, label_class_factory, member_of, api_key, predict, settings, tmp_path
):
    """The user's script: train through the product, export the model and the dataset, send the dataset's images to
    the service and compare each answer's top class with the image's label in labels.jsonl, as strings."""
    from sklearn.datasets import load_digits

    from labeling.services.imports import item_create_from_bytes
    from tests.training.loop_fixtures import LOOP_PROJECT, TINY_ROUND, digit_png, label_through_queue
    from training.models import ModelVersion
    from training.services.runs import training_run_enqueue, training_run_execute

    # Given a nested taxonomy whose leaves are drawn digits (0 circle, 1 square, 2 triangle), 36 labeled through
    # the queue, and a round trained by the real pipeline
    settings.LABELLOOP_ROUND_OVERRIDES = TINY_ROUND
    settings.LABELLOOP_RUN_HEARTBEAT_INTERVAL = 3600
    project = project_factory(slug="drawn", **{**LOOP_PROJECT, "min_labels_to_train": 10})
    leaves = shapes_taxonomy(project, label_class_factory)
    digits = load_digits()
    picked = [i for i, d in enumerate(digits.target) if d < 3][:54]
    truth = {}
    for i in picked:
        item = item_create_from_bytes(project=project, name=f"d{i:04d}.png", data=digit_png(digits.data[i]))
        truth[item.pk] = int(digits.target[i])
    label_through_queue(project, member_of(project, Role.ANNOTATOR), truth, leaves, 36)
    summary = training_run_execute(
        run_id=training_run_enqueue(project=project, trigger="manual", mode="head", send=False).pk
    )
    assert summary["status"] == "succeeded", summary
    version = ModelVersion.objects.get(project=project, active=True)
    export_version(project, version.number, tmp_path / "exports")
    dataset = dataset_export_write(project=project, fmt="jsonl", filters=ExportFilters())
    with export_storage().open(dataset["files"][0], "rb") as fh, zipfile.ZipFile(io.BytesIO(fh.read())) as zf:
        records = [json.loads(line) for line in zf.read("labels.jsonl").decode().splitlines()]
    assert len(records) == 36

    # When the script sends the labeled images to the service
    from labeling.models import Item

    images = {item.pk: item.file.read() for item in Item.objects.filter(pk__in=[r["item_id"] for r in records])}
    _, token = api_key(project)
    status, payload = predict(project.slug, token, files=[(str(r["item_id"]), images[r["item_id"]]) for r in records])

    # Then every class the service names is a label path of the dataset, config.json's names are the same, and the
    # model's top class agrees with the label as a string for most images (it matched none before)
    assert status == 200, payload
    config = json.loads(export_files(project, version)["config.json"])
    assert payload["classes"] == config["class_names"] == MODEL_ORDER
    vocabulary = {c["path"] for c in dataset["manifest"]["classes"]}
    assert {e["class"] for p in payload["predictions"] for e in p["top_k"]} <= vocabulary == set(MODEL_ORDER)
    label_of = {str(r["item_id"]): r["label"] for r in records}
    matched = sum(p["top_k"][0]["class"] == label_of[p["name"]] for p in payload["predictions"])
    assert matched >= 27, f"{matched} of 36"
