"""Exports and batch inference run on a real Celery worker (real Redis), started from the API."""

from __future__ import annotations

import io
import zipfile

import pytest
from rest_framework.test import APIClient

from labeling.models import Job, JobStatus, Role
from tests.conftest import wait_for
from tests.exports.models import make_model_version
from tests.factories import png_bytes

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def fresh_celery_connections(celery_env):
    """celery_env already points the app at the test Redis and drops cached pools and backends."""
    return celery_env


def finished(job_id: int, worker) -> Job:
    wait_for(
        lambda: Job.objects.get(pk=job_id).finished, 180, what=f"job {job_id}; worker log:\n{worker.output()[-2000:]}"
    )
    return Job.objects.get(pk=job_id)


def test_dataset_export_model_export_and_inference_run_on_a_worker(
    labeled_project, member_of, start_worker, fresh_celery_connections
):
    project, classes, items, _ = labeled_project
    make_model_version(project=project, classes=classes, items=items[:3])
    client = APIClient()
    client.force_authenticate(member_of(project, Role.ML_ENGINEER))
    worker = start_worker(queues="default")

    answer = client.post(f"/api/projects/{project.slug}/exports/dataset/", {"format": "hf"}, format="json")
    assert answer.status_code == 202
    job = finished(answer.json()["id"], worker)
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.done == job.total == 24
    body = client.get(f"/api/projects/{project.slug}/jobs/{job.pk}/").json()
    download = client.get(body["download_url"])
    with zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content))) as zf:
        assert "manifest.json" in zf.namelist()

    answer = client.post(f"/api/projects/{project.slug}/models/1/export/")
    assert answer.status_code == 202
    job = finished(answer.json()["id"], worker)
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.result["onnx_max_abs_diff"] < 1e-3

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.png", png_bytes(11))
        zf.writestr("b.txt", b"not an image")
        zf.writestr("c.png", png_bytes(12, size=(200, 200))[:-300])  # truncated: the one decode must notice
    archive.seek(0)
    archive.name = "batch.zip"
    answer = client.post(f"/api/projects/{project.slug}/inference/", {"file": archive}, format="multipart")
    assert answer.status_code == 202, answer.content
    job = finished(answer.json()["id"], worker)
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.result["predicted"] == 1
    reasons = {e["name"]: e["reason"] for e in job.errors}
    assert sorted(reasons) == ["b.txt", "c.png"]
    assert reasons["b.txt"] == "a text file, not an image"
    assert reasons["c.png"].startswith("truncated or corrupt image")
    csv_text = b"".join(client.get(f"/api/projects/{project.slug}/jobs/{job.pk}/download/").streaming_content)
    assert csv_text.decode().splitlines()[0] == "file_name,predicted_class,confidence,p_cat,p_dog,p_bird"
