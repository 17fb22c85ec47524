"""Every POST that starts a job answers as an import does: the job with `url` to poll (and a Location header), so one
poller serves imports, dataset and model exports, batch inference, the label-error search and send-to-queue."""

from __future__ import annotations

import io
import zipfile

import pytest

from labeling.models import Job, JobStatus, Role
from tests.factories import png_bytes, token_client
from tests.schema_conformance import assert_matches_schema
from tests.serving.test_monitoring import log_predictions
from training.models import ModelVersion

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(project_factory, label_class_factory, item_factory, member_of):
    from labeling.services.annotations import annotation_create

    project = project_factory(slug="jobs")
    classes = [label_class_factory(project=project, name=n) for n in ("cat", "dog")]
    annotation_create(item=item_factory(project=project), user=member_of(project, Role.ANNOTATOR, "ann"),
                      class_ids=[classes[0].pk])  # fmt: skip
    ModelVersion.objects.create(project=project, number=1, artifact_path="x", architecture="a",
                                class_ids=[c.pk for c in classes], active=True)  # fmt: skip
    return project, token_client(member_of(project, Role.MANAGER, "boss"))


def _zip() -> io.BytesIO:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.png", png_bytes(1))
    archive.seek(0)
    archive.name = "batch.zip"
    return archive


def _logged(project) -> dict:
    log_predictions(project, [(0, "cat", 0.9)])  # one production prediction with its image kept, to send
    return {}


STARTS = {
    "dataset export": ("/exports/dataset/", lambda project: {"format": "csv"}, "json"),
    "model export": ("/models/1/export/", lambda project: None, "json"),
    "batch inference": ("/inference/", lambda project: {"file": _zip()}, "multipart"),
    "label-error search": ("/label-errors/", lambda project: None, "json"),
    "send to queue": ("/monitoring/send-to-queue/", _logged, "json"),
}


@pytest.mark.parametrize("start", list(STARTS))
def test_a_started_job_answers_with_the_url_to_poll_as_an_import_does(setup, start):
    project, client = setup
    # Given the import's answer, the shape a poller was written against
    imported = client.post(f"/api/projects/{project.slug}/imports/", {"files": [_png()]}, format="multipart")
    assert imported.status_code == 202, imported.content

    # When a script starts the job
    suffix, body, fmt = STARTS[start]
    answer = client.post(f"/api/projects/{project.slug}{suffix}", body(project), format=fmt)

    # Then it gets the job with every field of the import's answer, `url` first, and the same Location header
    assert answer.status_code == 202, answer.content
    job = answer.json()
    assert set(imported.json()) <= set(job)
    assert job["status"] == JobStatus.QUEUED
    assert job["url"] == f"http://testserver/api/projects/{project.slug}/jobs/{job['id']}/"
    assert answer["Location"] == job["url"]
    assert_matches_schema(answer, f"/api/projects/{{slug}}{suffix.replace('/1/', '/{number}/')}", "POST")
    # ... and polling that url reaches the job
    polled = client.get(job["url"])
    assert polled.status_code == 200
    assert polled.json()["id"] == job["id"] == Job.objects.get(pk=job["id"]).pk


def test_the_export_already_under_way_answers_200_with_the_same_url(setup):
    project, client = setup
    first = client.post(f"/api/projects/{project.slug}/exports/dataset/", {"format": "csv"}, format="json")
    again = client.post(f"/api/projects/{project.slug}/exports/dataset/", {"format": "csv"}, format="json")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["coalesced"] is True
    assert again.json()["url"] == again["Location"] == first.json()["url"]


def _png():
    image = io.BytesIO(png_bytes(2))
    image.name = "one.png"
    return image
