"""A script reading a nested project's models and label errors through the REST API (and manage.py label_errors
--json) meets each class by its stored path ("shapes/angular/square"), as the dataset export, the class list's
`stored_path` and the prediction service name it, though the versions' metrics and the search carry the display
paths training writes ("shapes / angular / square"); pages and the command's table keep the display paths, a flat
project's answers stay as they were, and the versions list reads the class tree once, however many versions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from labeling.models import Job, JobKind, JobStatus, Role
from labeling.selectors.exports import ExportFilters
from labeling.services.annotations import annotation_create
from labeling.services.exports import dataset_export_write
from tests.factories import page_client, token_client
from tests.schema_conformance import assert_matches_schema
from tests.serving.test_h49c_class_paths import CIRCLE, DISPLAY, MODEL_ORDER, SQUARE, TRIANGLE, shapes_taxonomy
from training.ml.evaluate import evaluate, prediction_summary
from training.models import LabelErrorSearch, ModelVersion
from training.services.snapshot import label_snapshot

pytestmark = pytest.mark.django_db

# Four holdout items, none of a triangle: it has no support and is left out of the macro average.
Y = [0, 0, 1, 1]
PRED = [0, 1, 1, 1]


def trained_metrics(names: list[str]) -> dict:
    """Holdout metrics as a training round writes them (training.ml.evaluate), naming classes as `names` does."""
    probs = np.full((len(PRED), len(names)), 0.1)
    probs[np.arange(len(PRED)), PRED] = 0.7
    return evaluate(probs, Y, names)


def add_versions(project, classes, names: list[str], count: int, *, first: int = 1) -> None:
    for number in range(first, first + count):
        ModelVersion.objects.create(
            project=project, number=number, artifact_path="x", architecture="lite0",
            class_ids=[c.pk for c in classes], metrics=trained_metrics(names), label_count=4 * number,
            active=first == 1 and number == count,  # later ones join an active version
        )  # fmt: skip


@pytest.fixture
def nested(project_factory, label_class_factory, member_of):
    """shapes / {round / circle, angular / {square, triangle}}, v1 and v2 (active) trained on its display paths."""
    project = project_factory(slug="shapes", name="Shapes")
    leaves = shapes_taxonomy(project, label_class_factory)
    add_versions(project, leaves, [DISPLAY[p] for p in MODEL_ORDER], 2)
    return project, leaves, member_of(project, Role.ML_ENGINEER, "mle")


def test_the_versions_api_names_classes_by_stored_path_while_the_model_page_keeps_display_paths(nested):
    project, _leaves, engineer = nested
    client = token_client(engineer)

    # When a script lists the versions and reads the active one
    listed = client.get(f"/api/projects/{project.slug}/models/")
    detail = client.get(f"/api/projects/{project.slug}/models/2/")

    # Then every class name in either answer is a stored path, as the dataset export spells it
    assert_matches_schema(listed, "/api/projects/{slug}/models/")
    assert_matches_schema(detail, "/api/projects/{slug}/models/{number}/")
    for version in listed.json()["results"]:
        assert version["no_support"] == [TRIANGLE]
        assert version["metrics"]["no_support"] == [TRIANGLE]
        assert version["metrics"]["macro_classes"] == [CIRCLE, SQUARE]
    body = detail.json()
    assert list(body["metrics"]["per_class"]) == MODEL_ORDER
    assert body["metrics"]["per_class"][SQUARE]["support"] == 2
    assert (body["metrics"]["macro_classes"], body["metrics"]["no_support"]) == ([CIRCLE, SQUARE], [TRIANGLE])
    assert body["no_support"] == [TRIANGLE]
    assert " / " not in detail.content.decode()
    # ... the other figures are the stored ones, and the stored metrics keep training's spelling
    stored = ModelVersion.objects.get(project=project, number=2).metrics
    assert body["metrics"]["confusion_matrix"] == stored["confusion_matrix"]
    assert body["metrics"]["accuracy"] == stored["accuracy"]
    assert list(stored["per_class"]) == [DISPLAY[p] for p in MODEL_ORDER]

    # ... while the model page, for people, still names them "shapes / angular / triangle"
    html = page_client(engineer).get(reverse("training:model", args=[project.slug])).content.decode()
    assert DISPLAY[TRIANGLE] in html
    assert TRIANGLE not in html


def test_a_flat_projects_versions_answer_is_the_stored_metrics_byte_for_byte(
    project_factory, label_class_factory, member_of
):
    # A guard, not a change: it passes before and after, and pins that a flat project's answer did not move.
    # Given a flat project, one class an old "a/b" name from before the no-"/" rule
    project = project_factory(slug="flat")
    classes = [label_class_factory(project=project, name=n, order=k) for k, n in enumerate(["cat", "dog", "a/b"])]
    add_versions(project, classes, [c.name for c in classes], 1)
    client = token_client(member_of(project, Role.ML_ENGINEER, "mle"))

    # When a script reads the version
    detail = client.get(f"/api/projects/{project.slug}/models/1/")
    listed = client.get(f"/api/projects/{project.slug}/models/")

    # Then its metrics are exactly what training stored, names and key order alike
    stored = ModelVersion.objects.get(project=project).metrics
    assert json.dumps(detail.json()["metrics"]) == json.dumps(stored)
    assert detail.json()["no_support"] == stored["no_support"] == ["a/b"]
    assert listed.json()["results"][0]["metrics"]["macro_classes"] == ["cat", "dog"]


def test_the_versions_list_reads_the_class_tree_once_however_many_versions(nested, django_assert_max_num_queries):
    project, leaves, engineer = nested
    client = token_client(engineer)
    address = f"/api/projects/{project.slug}/models/"
    with CaptureQueriesContext(connection) as two:
        first = client.get(address)
    assert [v["no_support"] for v in first.json()["results"]] == [[TRIANGLE]] * 2

    # When the project has 12 versions instead of 2
    add_versions(project, leaves, [DISPLAY[p] for p in MODEL_ORDER], 10, first=3)
    with django_assert_max_num_queries(len(two.captured_queries)):
        answer = client.get(address)

    # Then the answer costs no more queries, and every version names its classes by stored path
    versions = answer.json()["results"]
    assert len(versions) == 12
    assert all(v["metrics"]["macro_classes"] == [CIRCLE, SQUARE] and v["no_support"] == [TRIANGLE] for v in versions)


def label_error_search(project) -> None:
    """A finished search as the multi-label and single-label searches record it: classes by display path."""
    LabelErrorSearch.objects.create(
        project=project, status="ok", labels=40, min_per_class=5, agreement=0.9, estimated_share=0.05,
        share_low=0.01, share_high=0.1, not_checked=[[DISPLAY[TRIANGLE], 3]], classes_judged=2,
        weak_classes=[[DISPLAY[SQUARE], 0.61, 0.7]], suspects={},
    )  # fmt: skip


def cross_validated_result() -> dict:
    """A search job's result with its cross-validated estimate, none of the 40 labels a triangle."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    pred = np.where(rng.random(40) < 0.8, y, 1 - y)
    estimate = {**prediction_summary(y, pred, [DISPLAY[p] for p in MODEL_ORDER]), "folds": 5}
    return {"status": "ok", "cross_validated": estimate}


def test_the_label_errors_api_names_classes_by_stored_path(nested):
    # Given a search that left the triangles out (too few) and found the square's model too weak, and an estimate
    # with no triangle among its labels
    project, _leaves, engineer = nested
    label_error_search(project)
    Job.objects.create(project=project, kind=JobKind.LABEL_ERRORS, status=JobStatus.SUCCEEDED,
                       result=cross_validated_result())  # fmt: skip

    # When a script reads the search
    answer = token_client(engineer).get(f"/api/projects/{project.slug}/label-errors/")

    # Then it names those classes as the class list's stored_path does, in the shape its schema gives
    assert_matches_schema(answer, "/api/projects/{slug}/label-errors/")
    search, cv = answer.json()["search"], answer.json()["cross_validated"]
    assert search["not_checked"] == [[TRIANGLE, 3]]
    assert search["weak_classes"] == [[SQUARE, 0.61, 0.7]]
    assert cv["no_support"] == [TRIANGLE]
    classes = token_client(engineer).get(f"/api/projects/{project.slug}/classes/").json()
    stored_paths = {c["stored_path"] for c in classes}
    assert {TRIANGLE, SQUARE} <= stored_paths


def test_the_command_answers_json_with_stored_paths_and_prints_display_paths(nested, monkeypatch, capsys):
    # Given a search that finds what the API test's search found (run here without embeddings)
    project, *_ = nested

    def search_found(*, project, job, on_progress):
        label_error_search(project)
        return cross_validated_result()

    monkeypatch.setattr("training.management.commands.label_errors.label_errors_find", search_found)

    # When a script runs it with --json, and a person without
    call_command("label_errors", project.slug, "--json")
    report = json.loads(capsys.readouterr().out)
    call_command("label_errors", project.slug, verbosity=0)
    table = capsys.readouterr().out

    # Then the JSON names the classes by stored path, as the API; the table as the pages do
    assert report["search"]["not_checked"] == [[TRIANGLE, 3]]
    assert report["search"]["weak_classes"] == [[SQUARE, 0.61, 0.7]]
    assert report["cross_validated"]["no_support"] == [TRIANGLE]
    assert f"Not judged (fewer than 5 labels): {DISPLAY[TRIANGLE]} (3)" in table
    assert f"too weak yet for these classes): {DISPLAY[SQUARE]} (61.0 %)" in table


def test_a_dataset_exports_manifest_says_its_class_map_is_not_a_models_order(
    project_factory, label_class_factory, item_factory, member_of
):
    # Given a nested project with two labeled images per leaf
    project = project_factory(slug="shapes-export")
    leaves = shapes_taxonomy(project, label_class_factory)
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    for k in range(6):
        annotation_create(item=item_factory(project=project), user=annotator, class_ids=[leaves[k % 3].pk])

    # When it is exported as ImageFolder folders
    manifest = dataset_export_write(project=project, fmt="imagefolder", filters=ExportFilters())["manifest"]

    # Then beside class_map a note says what its order is and how to match a model's classes
    note = manifest["class_map_note"]
    assert "ImageFolder" in note
    assert "config.json class_names" in note
    assert "match classes by path" in note
    assert manifest["class_map"] == {c["folder"]: c["index"] for c in manifest["classes"]}
    # ... and the dataset hash is still the labels' (the note is no part of it): a training round's hash
    assert manifest["dataset_hash"] == label_snapshot(project=project).dataset_hash
