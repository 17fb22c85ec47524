"""The import task on a real Celery worker and Redis: queued from the page, run by the worker, idempotent."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from labeling.models import Item, Job, JobStatus, Role
from labeling.selectors.jobs import job_errors
from labeling.tasks import import_run_task
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (seed * 40 % 256, 3, seed * 90 % 256)).save(buffer, "PNG")
    return buffer.getvalue()


def test_upload_is_imported_by_a_real_worker(project, member_of, start_worker):
    start_worker(queues="default")
    client = Client()
    client.force_login(member_of(project, Role.MANAGER))
    files = [SimpleUploadedFile(f"{n}.png", png(n)) for n in range(4)] + [SimpleUploadedFile("bad.png", b"")]
    response = client.post(reverse("labeling:import", args=[project.slug]), {"action": "upload", "files": files})
    assert response.status_code == 302
    job = Job.objects.get(project=project)
    wait_for(lambda: Job.objects.get(pk=job.pk).finished, 60, what="import job")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.result["imported"] == 4
    assert job_errors(job=job) == [{"name": "bad.png", "reason": "empty file (0 bytes)", "kind": "empty file"}]
    # A duplicate delivery of a finished job does nothing.
    # An eager .get() checks celery's process-wide "inside a task" flag, which an eager task running in the
    # session's live-server thread sets meanwhile; this test is not a task, so it says so.
    assert import_run_task.apply(args=(job.pk,)).get() == {"job": job.pk, "skipped": True}
    assert Item.objects.filter(project=project).count() == 4
