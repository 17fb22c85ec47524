"""A version that already has a finished export with the same inputs (labels, images, classes, code) is not exported
again: the exports page offers that download and says so, the API answers 200 with that job (`reused`), and
manage.py export_model writes its zip to --out. "Export again", force=true and --force build a new one on purpose;
a new label makes the next request a new export. The builds here are a small stand-in zip (the real build takes
minutes: tests/training/test_export_model.py)."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.management import call_command
from django.urls import reverse

from labeling.models import Job, JobKind, JobStatus, Role
from labeling.services.annotations import annotation_create
from tests.factories import api_client, model_export_stored, page_client
from training.models import ModelVersion
from training.services import exports as model_exports

pytestmark = pytest.mark.django_db


@pytest.fixture
def builds(monkeypatch) -> list[int]:
    """Replaces the export build with a small real zip; the list holds the number of each version built."""
    built: list[int] = []

    def build(*, version, progress=None):
        built.append(version.number)
        slug = version.project.slug
        return model_export_stored(version, f"{slug}/model-{slug}-v{version.number}-{len(built)}.zip")

    monkeypatch.setattr(model_exports, "model_export_build", build)
    return built


@pytest.fixture
def setup(project_factory, label_class_factory, item_factory, member_of):
    project = project_factory(slug="digits")
    classes = [label_class_factory(project=project, name=n) for n in ("a", "b")]
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    for i in range(4):
        annotation_create(item=item_factory(project=project), user=annotator, class_ids=[classes[i % 2].pk])
    ModelVersion.objects.create(
        project=project, number=3, artifact_path="x", architecture="arch", class_ids=[c.pk for c in classes],
        metrics={"accuracy": 0.5, "n": 2}, label_count=4, dataset_hash="d" * 64, active=True,
    )  # fmt: skip
    engineer = member_of(project, Role.ML_ENGINEER, "eng")
    return project, classes, annotator, engineer


def _export_jobs(project):
    return list(Job.objects.filter(project=project, kind=JobKind.EXPORT_MODEL).order_by("pk"))


def test_export_on_the_page_offers_the_finished_export_instead_of_building_it_again(
    setup, builds, item_factory, django_capture_on_commit_callbacks
):
    project, classes, annotator, engineer = setup
    client = page_client(engineer)
    start = reverse("training:model_export_start", args=[project.slug, 3])
    page = reverse("training:model_exports", args=[project.slug])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(start)
    (first,) = _export_jobs(project)
    assert first.status == JobStatus.SUCCEEDED
    assert builds == [3]
    html = client.get(page).content.decode()
    assert f"Exported with the same labels and code (job #{first.number})" in html
    assert "Download v3 (" in html
    assert "Export again" in html

    # When: "Export v3" again (a page loaded before the export ended still shows that button)
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(start, follow=True).content.decode()

    # Then: nothing is built, and the page says which export to download
    assert builds == [3]
    assert _export_jobs(project) == [first]
    assert f"v3 already has an export with the same labels, images, classes and code (job #{first.number})" in answer
    assert "nothing was started" in answer

    # "Export again" builds a new one on purpose
    with django_capture_on_commit_callbacks(execute=True):
        client.post(start, {"force": "1"})
    assert builds == [3, 3]
    assert len(_export_jobs(project)) == 2

    # A new label is a new input: Export v3 builds again
    annotation_create(item=item_factory(project=project), user=annotator, class_ids=[classes[0].pk])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(start)
    assert builds == [3, 3, 3]
    assert len(_export_jobs(project)) == 3


def test_the_api_answers_200_with_the_finished_export_and_force_builds_a_new_one(
    setup, builds, django_capture_on_commit_callbacks
):
    project, _, _, engineer = setup
    client = api_client(engineer)
    url = reverse("api-model-export", args=[project.slug, 3])
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(url, {}, format="json")
    assert first.status_code == 202
    assert first.json()["reused"] is False

    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(url, {}, format="json")

    assert again.status_code == 200
    body = again.json()
    assert body["id"] == first.json()["id"]
    assert body["reused"] is True
    assert body["status"] == "succeeded"
    assert body["download_url"]
    assert builds == [3]

    with django_capture_on_commit_callbacks(execute=True):
        forced = client.post(url, {"force": True}, format="json")
    assert forced.status_code == 202
    assert forced.json()["id"] != body["id"]
    assert builds == [3, 3]


def test_export_model_writes_the_finished_export_to_out_without_building(setup, builds, tmp_path):
    project, *_ = setup

    def command(*extra: str) -> str:
        out = io.StringIO()
        call_command("export_model", project.slug, "--version", "3", "--out", f"{tmp_path}/", *extra, verbosity=0,
                     stdout=out, stderr=io.StringIO())  # fmt: skip
        return out.getvalue()

    command()
    (first,) = _export_jobs(project)
    assert builds == [3]
    for path in tmp_path.iterdir():
        path.unlink()

    text = command()

    assert builds == [3]
    assert _export_jobs(project) == [first]
    assert f"v3 already has an export with the same labels, images, classes and code (job #{first.number})" in text
    written = list(tmp_path.iterdir())
    assert len(written) == 1
    assert zipfile.ZipFile(written[0]).namelist() == ["digits-v3/config.json"]
    # --force builds a new one
    command("--force")
    assert builds == [3, 3]
