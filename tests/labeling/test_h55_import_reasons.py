"""What an import's problems say about empty files and zip entries (stop 55's tester): every 0-byte file is refused as
"empty file (0 bytes)", never as a duplicate of the first (they share one sha256), whether picked on the page, sent
to the API or packed in a zip; a zip inside a zip is called that, not a renamed zip; and every entry of a zip is
named with its zip ("bomb.zip:zeros.png"), whatever refused it, as a zip-slip entry already was."""

from __future__ import annotations

import re
import zipfile

import pytest
from django.urls import reverse

from labeling.models import Item, Job, JobStatus
from labeling.services.imports import batches
from tests.factories import api_client, page_import, png_bytes, token_client, upload, zip_of

pytestmark = pytest.mark.django_db

EMPTY = "empty file (0 bytes)"


def api_import(manager, project, capture, files: dict[str, bytes]) -> Job:
    """POST /api/projects/<slug>/imports/ with the files, as a script sends them; the task runs in process."""
    with capture(execute=True):
        answer = token_client(manager).post(
            f"/api/projects/{project.slug}/imports/", {"files": [upload(n, d) for n, d in files.items()]},
            format="multipart",
        )  # fmt: skip
    assert answer.status_code == 202, answer.content
    job = Job.objects.get(pk=answer.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.message
    return job


def problems(manager, project, job) -> dict[str, str]:
    """The job's problems as the API lists them: name -> reason."""
    detail = api_client(manager).get(f"/api/projects/{project.slug}/jobs/{job.pk}/").json()
    return {e["name"]: e["reason"] for e in detail["errors"]}


def card(manager_page, project, job) -> str:
    html = manager_page.get(reverse("labeling:job_status", args=[project.slug, job.pk])).content.decode()
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.mark.parametrize("how", ["page", "api", "zip"])
def test_every_empty_file_is_refused_as_empty_not_as_a_duplicate(
    project, manager, manager_page, django_capture_on_commit_callbacks, how
):
    # Given three 0-byte files beside one real image: picked on the import page, sent to the API, or in a zip
    files = {"e1.png": b"", "e2.png": b"", "e3.png": b"", "real.png": png_bytes(1)}
    capture = django_capture_on_commit_callbacks
    if how == "page":
        job = page_import(manager_page, project, files, capture)
    elif how == "api":
        job = api_import(manager, project, capture, files)
    else:
        job = api_import(manager, project, capture, {"many.zip": zip_of(files)})
    # Then each empty file is refused as empty and counted as rejected; none is called a duplicate of another
    where = "many.zip:" if how == "zip" else ""
    assert problems(manager, project, job) == {f"{where}e{n}.png": EMPTY for n in (1, 2, 3)}
    assert (job.result["imported"], job.result["rejected"], job.result["duplicates"]) == (1, 3, 0)
    assert job.result["rejected_by_reason"] == {"empty file": 3}
    shown = card(manager_page, project, job)
    assert "1 imported, 0 duplicates, 3 rejected" in shown
    assert "duplicates: 0 · rejected: 3" in shown
    assert all(f"{where}e{n}.png empty file {EMPTY}" in shown for n in (1, 2, 3))
    assert "duplicate of" not in shown
    assert [i.original_name for i in Item.objects.filter(project=project)] == ["real.png"]


def test_a_zip_inside_a_zip_is_called_that_and_a_zip_renamed_png_is_called_renamed(
    project, manager, manager_page, django_capture_on_commit_callbacks
):
    # Given a zip that holds a zip, and beside it a zip renamed photo.png
    inner = zip_of({"a.png": png_bytes(1)})
    files = {"nested.zip": zip_of({"inner.zip": inner, "b.png": png_bytes(2)}), "photo.png": inner}
    # When both are imported
    job = api_import(manager, project, django_capture_on_commit_callbacks, files)
    # Then the zip in the zip is said to be one, to upload on its own; the renamed one keeps its wording
    assert problems(manager, project, job) == {
        "nested.zip:inner.zip": "a zip inside the zip: upload it on its own",
        "photo.png": "a zip archive, not an image (upload zips as zips, not renamed)",
    }
    assert job.result["rejected_by_reason"] == {"not a supported image": 1, "zip inside a zip": 1}
    assert "nested.zip:inner.zip zip inside a zip a zip inside the zip: upload it on its own" in card(
        manager_page, project, job
    )


def test_every_zip_entry_the_job_lists_is_named_with_its_zip(
    project, manager, manager_page, django_capture_on_commit_callbacks, settings
):
    # Given an image imported before, and a zip holding: an entry over the size limit, a copy of that image, two
    # copies of a new image, a file cut short, and an entry that climbs out of the zip
    settings.LABELLOOP_MAX_UPLOAD_BYTES = 8 * 1024
    api_import(manager, project, django_capture_on_commit_callbacks, {"small_ok.png": png_bytes(1)})
    entries = {"zeros.png": bytes(64 * 1024), "small_ok.png": png_bytes(1), "new.png": png_bytes(2),
               "again/new.png": png_bytes(2), "cut.png": png_bytes(3)[:60], "../evil1.png": png_bytes(4)}  # fmt: skip
    bomb = zip_of(entries, zipfile.ZIP_DEFLATED)
    # When the zip is imported
    job = api_import(manager, project, django_capture_on_commit_callbacks, {"bomb.zip": bomb})
    # Then every entry it lists is named with the zip, the copy's original too when it is in the zip
    listed = problems(manager, project, job)
    assert listed == {
        "bomb.zip:zeros.png": "file is 64.0 KiB, over the 8.0 KiB limit",
        "bomb.zip:small_ok.png": "duplicate of small_ok.png",
        "bomb.zip:again/new.png": "duplicate of bomb.zip:new.png",
        "bomb.zip:cut.png": "truncated or corrupt image: the file ends before the image is complete",
        "bomb.zip:../evil1.png": "unsafe path in zip (zip slip): refused",
    }
    shown = card(manager_page, project, job)
    assert all(name in shown for name in listed)
    # and the item keeps the entry's own name
    assert Item.objects.filter(project=project, original_name="new.png").exists()


@pytest.mark.parametrize("batch_files", [1, 100])
def test_a_copy_of_a_refused_file_is_refused_the_same_in_any_batch(
    project, manager, manager_page, django_capture_on_commit_callbacks, monkeypatch, batch_files
):
    # Given a zip of 250 empty entries, a file cut short twice, and two copies of a good image, read one file per batch
    # (copies in later batches than their first) or a hundred
    monkeypatch.setattr(batches, "BATCH_FILES", batch_files)
    cut = png_bytes(3)[:60]
    entries = {"cut.png": cut, "cut copy.png": cut, "good.png": png_bytes(4), "good copy.png": png_bytes(4)}
    entries |= {f"z{n:03d}.png": b"" for n in range(250)}  # after: the API lists the first 100 problems
    # When it is imported
    job = api_import(manager, project, django_capture_on_commit_callbacks, {"many.zip": zip_of(entries)})
    # Then every empty file and both cut files are refused for what they are; only the good copy is a duplicate
    listed = problems(manager, project, job)
    assert {reason for name, reason in listed.items() if name.startswith("many.zip:z")} == {EMPTY}
    assert listed["many.zip:cut copy.png"] == listed["many.zip:cut.png"]
    assert listed["many.zip:cut copy.png"].startswith("truncated or corrupt image")
    assert listed["many.zip:good copy.png"] == "duplicate of many.zip:good.png"
    assert (job.result["imported"], job.result["rejected"], job.result["duplicates"]) == (1, 252, 1)
    assert job.result["rejected_by_reason"] == {"empty file": 250, "truncated or corrupt": 2, "duplicate": 1}
    assert "1 imported, 1 duplicates, 252 rejected" in card(manager_page, project, job)
