"""Import page: browser uploads (plain form and batched JS endpoints), server folders, permissions, broker outage."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from labeling.models import Item, Job, JobKind, JobStatus, LabelClass, ResolvedLabel, Role
from tests.conftest import free_port
from tests.factories import page_client

pytestmark = pytest.mark.django_db


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (seed * 40 % 256, seed * 90 % 256, 7)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def manager_client(project, member_of):
    return page_client(member_of(project, Role.MANAGER))


def test_plain_multi_file_upload_creates_a_job_and_items(project, manager_client, django_capture_on_commit_callbacks):
    files = [SimpleUploadedFile(f"img{n}.png", png(n), content_type="image/png") for n in range(3)]
    files.append(SimpleUploadedFile("notes.jpg", b"hello", content_type="image/jpeg"))
    url = reverse("labeling:import", args=[project.slug])
    with django_capture_on_commit_callbacks(execute=True):
        response = manager_client.post(url, {"action": "upload", "files": files})
    assert response.status_code == 302
    job = Job.objects.get(project=project, kind=JobKind.IMPORT)
    assert job.status == JobStatus.SUCCEEDED
    assert job.result["imported"] == 3
    assert sorted(Item.objects.filter(project=project).values_list("original_name", flat=True)) == [
        "img0.png",
        "img1.png",
        "img2.png",
    ]
    page = manager_client.get(url).content.decode()
    assert "notes.jpg" in page
    assert "a text file, not an image" in page  # the rejection reason is shown next to the file


def test_batched_uploads_then_start_with_folder_labels(project, manager_client, django_capture_on_commit_callbacks):
    upload = reverse("labeling:import_upload", args=[project.slug])
    first = manager_client.post(upload, {"files": [SimpleUploadedFile("a.png", png(1))], "names": ["cat/a.png"]})
    token = first.json()["token"]
    second = manager_client.post(
        upload,
        {"token": token, "files": [SimpleUploadedFile("b.png", png(2))], "names": ["dog/b.png"],
         "oversized": ["huge.tif"]},
    )  # fmt: skip
    assert second.json() == {"token": token, "staged": 1}
    with django_capture_on_commit_callbacks(execute=True):
        response = manager_client.post(
            reverse("labeling:import_start", args=[project.slug]), {"token": token, "labels_from_folders": "on"}
        )
    assert response.status_code == 201
    assert b'data-status="' in response.content  # the progress fragment the page inserts
    job = Job.objects.get(project=project)
    assert job.status == JobStatus.SUCCEEDED
    assert {e["name"] for e in job.errors} == {"huge.tif"}
    assert sorted(
        (r.item.original_name, r.classes.get().name) for r in ResolvedLabel.objects.filter(project=project)
    ) == [("cat/a.png", "cat"), ("dog/b.png", "dog")]
    # The staging folder is gone and its token cannot be reused.
    again = manager_client.post(reverse("labeling:import_start", args=[project.slug]), {"token": token})
    assert again.status_code == 400


def test_someone_elses_upload_token_is_refused(project, manager_client, member_of):
    token = manager_client.post(
        reverse("labeling:import_upload", args=[project.slug]), {"files": [SimpleUploadedFile("a.png", png(1))]}
    ).json()["token"]
    other = Client()
    other.force_login(member_of(project, Role.MANAGER))
    response = other.post(reverse("labeling:import_start", args=[project.slug]), {"token": token})
    assert response.status_code == 400
    assert Job.objects.count() == 0


def test_annotator_gets_403_and_other_projects_manager_404(project, project_factory, member_of):
    annotator = Client()
    annotator.force_login(member_of(project, Role.ANNOTATOR))
    outsider = Client()
    outsider.force_login(member_of(project_factory(), Role.MANAGER))
    for name in ("import", "import_upload", "import_start"):
        url = reverse(f"labeling:{name}", args=[project.slug])
        assert (
            annotator.post(url, {"action": "upload", "files": [SimpleUploadedFile("a.png", png(1))]}).status_code == 403
        )
        assert (
            outsider.post(url, {"action": "upload", "files": [SimpleUploadedFile("a.png", png(1))]}).status_code == 404
        )
    assert annotator.get(reverse("labeling:import", args=[project.slug])).status_code == 403
    assert Item.objects.count() == 0
    assert Job.objects.count() == 0


def test_server_folder_must_be_inside_a_folder_granted_to_the_project(
    project, manager_client, settings, tmp_path, grant_server_folders, django_capture_on_commit_callbacks
):
    # Given a project that staff granted one folder inside LABELLOOP_IMPORT_ROOTS
    allowed = tmp_path / "allowed"
    (allowed / "cat").mkdir(parents=True)
    (allowed / "cat" / "1.png").write_bytes(png(1))
    url = reverse("labeling:import", args=[project.slug])
    settings.LABELLOOP_IMPORT_ROOTS = [str(allowed)]
    grant_server_folders(project, allowed)
    # When its manager names a folder outside it (that exists), or climbs out with ..
    for outside in (str(tmp_path), str(allowed / ".." / "..")):
        refused = manager_client.post(url, {"action": "folder", "path": outside})
        # Then it is refused with the page's error and nothing is queued
        assert refused.status_code == 400
        assert "No such folder among the server folders open to this project" in refused.content.decode()
    assert not Job.objects.exists()
    # A granted folder imports, its sub-folders as classes
    with django_capture_on_commit_callbacks(execute=True):
        manager_client.post(url, {"action": "folder", "path": str(allowed), "labels_from_folders": "on"})
    assert ResolvedLabel.objects.get(project=project).classes.get().name == "cat"


def test_server_folders_are_off_without_import_roots(project, manager_client, settings, tmp_path):
    settings.LABELLOOP_IMPORT_ROOTS = []
    response = manager_client.post(
        reverse("labeling:import", args=[project.slug]), {"action": "folder", "path": str(tmp_path)}
    )
    assert "Server folders are not available in this project." in response.content.decode()
    assert Job.objects.count() == 0


@pytest.mark.django_db(transaction=True)  # autocommit, as in production: on_commit runs inside the request
def test_broker_down_marks_the_job_failed_with_a_clear_message(project, manager_client):
    from config.celery_app import app

    old = {k: app.conf[k] for k in ("task_always_eager", "broker_url")}
    app.conf.update(task_always_eager=False, broker_url=f"redis://127.0.0.1:{free_port()}/0")
    app._pool = app.amqp._producer_pool = None  # fresh connection pools for the dead broker URL
    try:
        response = manager_client.post(
            reverse("labeling:import", args=[project.slug]),
            {"action": "upload", "files": [SimpleUploadedFile("a.png", png(1))]},
            follow=True,
        )
    finally:
        app.conf.update(**old)
        app.pool.force_close_all()
        app._pool = app.amqp._producer_pool = None
    assert response.status_code == 200
    job = Job.objects.get(project=project)
    assert job.status == JobStatus.FAILED
    assert "task queue (Redis) is unreachable" in job.message
    assert "task queue (Redis) is unreachable" in response.content.decode()
    assert Item.objects.count() == 0


def test_page_lists_limits_and_recent_jobs(project, manager_client):
    Job.objects.create(project=project, kind=JobKind.IMPORT, total=10, done=4, status=JobStatus.RUNNING)
    page = manager_client.get(reverse("labeling:import", args=[project.slug])).content.decode()
    assert "Drop images, folders, zips or a labels CSV here" in page
    assert 'type="file" name="files"' in page
    assert "4 / 10" in page
    assert json.loads('"' + "js/import.js" + '"') in page


@pytest.mark.django_db(transaction=True)  # autocommit, as in production: on_commit runs inside the request
def test_an_unexpected_error_inside_the_import_fails_the_job_with_its_reason_on_the_page(
    project, manager_client, monkeypatch
):
    # Given a database that refuses the import's first progress write (SQLite under load says "locked")
    from django.db import OperationalError

    from labeling.services.imports import run as import_run_module

    writes = {"n": 0}
    real_flush = import_run_module._Run.flush_progress

    def flaky_flush(self):
        writes["n"] += 1
        if writes["n"] == 1:
            raise OperationalError("database is locked")
        real_flush(self)

    monkeypatch.setattr(import_run_module._Run, "flush_progress", flaky_flush)

    # When a manager uploads images
    url = reverse("labeling:import", args=[project.slug])
    files = [SimpleUploadedFile(f"{n}.png", png(n)) for n in range(3)]
    response = manager_client.post(url, {"action": "upload", "files": files}, follow=True)

    # Then the job ends failed, not "running" forever, and the import page says why
    assert response.status_code == 200
    job = Job.objects.get(project=project)
    assert job.status == JobStatus.FAILED
    assert job.finished_at is not None
    assert "OperationalError: database is locked" in job.message
    page = manager_client.get(url).content.decode()
    assert f'data-status="{JobStatus.FAILED}"' in page
    assert "database is locked" in page
    assert "hx-trigger" not in page.split(f'id="job-{job.pk}"')[1].split(">")[0]  # no longer polled
    assert Item.objects.count() == 0


def test_the_users_choices_come_back_after_a_validation_error(
    project, manager_client, settings, tmp_path, grant_server_folders
):
    url = reverse("labeling:import", args=[project.slug])
    # Given "Folders are classes" ticked, when the upload form is sent without files
    response = manager_client.post(url, {"action": "upload", "labels_from_folders": "on"})
    # Then the error shows and the box is still ticked
    assert response.status_code == 400
    page = response.content.decode()
    assert "Choose at least one file." in page
    assert re.search(r'<input type="checkbox" name="labels_from_folders" id="labels-from-folders" checked>', page)
    assert not re.search(r'id="folder-labels-from-folders" checked', page)

    # Given a server folder outside the allowed roots, with its sub-folders as classes
    settings.LABELLOOP_IMPORT_ROOTS = [str(tmp_path / "allowed")]
    (tmp_path / "allowed").mkdir()
    grant_server_folders(project, tmp_path / "allowed")
    response = manager_client.post(
        url, {"action": "folder", "path": str(tmp_path / "elsewhere"), "labels_from_folders": "on"}
    )
    # Then the folder form keeps both the path and the tick; the upload form keeps its default
    assert response.status_code == 400
    page = response.content.decode()
    assert f'value="{tmp_path / "elsewhere"}"' in page
    assert re.search(r'id="folder-labels-from-folders" checked', page)
    assert not re.search(r'id="labels-from-folders" checked', page)


MAC_JUNK = {
    "__MACOSX/emoji/smileys/._grin.png": b"\x00\x05\x16\x07AppleDouble resource fork",
    "__MACOSX/emoji/._.DS_Store": b"\x00\x05\x16\x07",
    "emoji/.DS_Store": b"\x00\x00\x00\x01Bud1",
    "emoji/smileys/._wink.png": b"\x00\x05\x16\x07",
    "emoji/Icon\r": b"",
}
MAC_IMAGES = {"emoji/smileys/grin.png": 1, "emoji/smileys/wink.png": 2, "emoji/animals/cat.png": 3}


def test_a_macos_zip_gives_the_folders_as_classes_without_junk_or_the_wrapping_folder(
    project, manager_client, django_capture_on_commit_callbacks
):
    # Given a zip made by macOS Finder: __MACOSX/ beside the folder, .DS_Store, ._* and Icon\r inside it
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in ("emoji/", "emoji/smileys/", "emoji/animals/", "__MACOSX/", "__MACOSX/emoji/"):
            zf.writestr(name, b"")
        for name, seed in MAC_IMAGES.items():
            zf.writestr(name, png(seed))
        for name, data in MAC_JUNK.items():
            zf.writestr(name, data)
    upload = SimpleUploadedFile("emoji.zip", buffer.getvalue(), content_type="application/zip")

    # When it is uploaded with "Folders are classes"
    with django_capture_on_commit_callbacks(execute=True):
        manager_client.post(
            reverse("labeling:import", args=[project.slug]),
            {"action": "upload", "files": [upload], "labels_from_folders": "on"},
        )

    # Then the classes are the inner folders, and the litter is neither imported nor reported
    job = Job.objects.get(project=project)
    assert job.status == JobStatus.SUCCEEDED
    assert (job.result["imported"], job.errors) == (3, [])
    assert sorted(LabelClass.objects.filter(project=project).values_list("name", flat=True)) == ["animals", "smileys"]
    assert LabelClass.objects.filter(project=project, parent__isnull=False).count() == 0


def test_a_dropped_macos_folder_gives_the_same_classes_as_its_zip(
    project, manager_client, django_capture_on_commit_callbacks
):
    # Given the browser's names for a dropped folder (what import.js sends), litter included
    files = {**{name: png(seed) for name, seed in MAC_IMAGES.items()}, **MAC_JUNK}
    upload_url = reverse("labeling:import_upload", args=[project.slug])
    response = manager_client.post(
        upload_url,
        {"files": [SimpleUploadedFile(n.rsplit("/", 1)[-1], d) for n, d in files.items()], "names": list(files)},
    )
    assert response.json()["staged"] == 3  # the litter is not even kept

    # When the import starts with "Folders are classes", naming the folder that was dropped (as import.js does)
    with django_capture_on_commit_callbacks(execute=True):
        manager_client.post(
            reverse("labeling:import_start", args=[project.slug]),
            {"token": response.json()["token"], "labels_from_folders": "on", "dropped_folder": "emoji"},
        )

    # Then: the inner folders are the classes, nothing was rejected
    job = Job.objects.get(project=project)
    assert (job.status, job.result["imported"], job.errors) == (JobStatus.SUCCEEDED, 3, [])
    labels = {r.item.original_name: r.classes.get().path for r in ResolvedLabel.objects.filter(project=project)}
    assert labels == {
        "emoji/smileys/grin.png": "smileys",
        "emoji/smileys/wink.png": "smileys",
        "emoji/animals/cat.png": "animals",
    }
