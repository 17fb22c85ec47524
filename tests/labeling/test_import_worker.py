"""Imports at a user's size through the product's path: browser batches -> Redis -> a real prefork Celery worker.

The command-line import runs in a plain process; the web import runs inside a daemonic prefork child,
where a process pool cannot start. These tests run the second one, with hundreds of files.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from labeling.models import Item, Job, JobStatus, Role
from labeling.tasks import import_run_task
from labeling.views.imports import UPLOAD_BATCH_FILES
from tests.conftest import wait_for
from tests.factories import png_bytes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration, pytest.mark.slow]


def upload_like_the_browser(client: Client, slug: str, files: dict[str, bytes], **start) -> None:
    """What static/js/import.js does: batches to the upload endpoint under one token, then start."""
    names = list(files)
    token = ""
    for first in range(0, len(names), UPLOAD_BATCH_FILES):
        batch = names[first : first + UPLOAD_BATCH_FILES]
        data = {"files": [SimpleUploadedFile(n.rsplit("/", 1)[-1], files[n]) for n in batch], "names": batch}
        response = client.post(
            reverse("labeling:import_upload", args=[slug]), {**data, **({"token": token} if token else {})}
        )
        assert response.status_code == 200, response.content
        token = response.json()["token"]
    response = client.post(reverse("labeling:import_start", args=[slug]), {"token": token, **start})
    assert response.status_code == 201, response.content


def test_a_browser_upload_of_300_files_is_imported_by_a_prefork_worker(project, member_of, start_worker):
    # Given a real worker on the imports queue and a manager with 300 images (plus one bad file)
    worker = start_worker(queues="default")
    client = Client()
    client.force_login(member_of(project, Role.MANAGER))
    files = {f"img{n:03d}.png": png_bytes(n, (48, 40)) for n in range(300)}
    files["broken.png"] = png_bytes(999)[:60]

    # When they upload them the way the page does
    upload_like_the_browser(client, project.slug, files)

    # Then the worker finishes the job: every image imported, the bad one rejected with its reason
    job = Job.objects.get(project=project)
    wait_for(lambda: Job.objects.get(pk=job.pk).finished, 180, what=f"import job\n{worker.output()[-3000:]}")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, (job.message, worker.output()[-3000:])
    assert (job.done, job.total) == (301, 301)
    assert job.result["imported"] == 300
    assert [e["name"] for e in job.errors] == ["broken.png"]
    assert Item.objects.filter(project=project).exclude(phash="").count() == 300
    assert "daemonic" not in worker.output()
    page = client.get(reverse("labeling:import", args=[project.slug])).content.decode()
    assert "imported: 300" in page


def test_an_import_that_runs_past_the_time_limit_ends_failed_with_the_reason_on_the_page(
    project, member_of, start_worker, settings, tmp_path, monkeypatch, grant_server_folders
):
    # Given a deployment whose tasks may run 1 s (the web process puts the limit on the message, as
    # CELERY_TASK_SOFT_TIME_LIMIT=1 in its settings would), and a server folder far too large for that
    monkeypatch.setattr(import_run_task, "soft_time_limit", 1)
    monkeypatch.setattr(import_run_task, "_exec_options", None)
    worker = start_worker(queues="default", extra_env={"CELERY_TASK_SOFT_TIME_LIMIT": "1"})
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(3000):
        (folder / f"{n:04d}.png").write_bytes(png_bytes(n, (8, 8)))
    settings.LABELLOOP_IMPORT_ROOTS = [str(tmp_path)]
    grant_server_folders(project, tmp_path)
    client = Client()
    client.force_login(member_of(project, Role.MANAGER))

    # When the manager imports it from the page
    client.post(reverse("labeling:import", args=[project.slug]), {"action": "folder", "path": str(folder)})

    # Then the job ends failed (not "running" forever) and the page says why
    job = Job.objects.get(project=project)
    wait_for(lambda: Job.objects.get(pk=job.pk).finished, 120, what=f"import job\n{worker.output()[-3000:]}")
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED, worker.output()[-3000:]
    assert "time limit" in job.message
    assert 0 < job.done < 3000
    page = client.get(reverse("labeling:import", args=[project.slug])).content.decode()
    assert f'data-status="{JobStatus.FAILED}"' in page
    assert "time limit" in page
    # Whatever was stored before the stop is whole: every item has its file and thumbnail
    for item in Item.objects.filter(project=project):
        assert item.file.storage.exists(item.file.name)
        assert item.thumbnail.storage.exists(item.thumbnail.name)
