"""POST /api/projects/<slug>/imports/: a script uploads images (files, zips, label CSVs) and polls the import job."""

from __future__ import annotations

import codecs
import io
from pathlib import Path

import pytest
from PIL import Image
from rest_framework.test import APIClient

from labeling.models import Item, Job, JobStatus, LabelClass, ResolvedLabel, Role
from tests.factories import png_bytes, token_client, upload, zip_of
from tests.schema_conformance import assert_matches_schema

pytestmark = pytest.mark.django_db


def transparent_png() -> bytes:
    image = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    image.putpixel((5, 5), (255, 0, 0, 255))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def all_items(client, slug: str) -> list[dict]:
    rows, url = [], f"/api/projects/{slug}/items/?page_size=100"
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.content
        rows += page.json()["results"]
        url = page.json()["next"]
    return rows


@pytest.fixture
def manager(project, member_of):
    return member_of(project, Role.MANAGER, "boss")


def test_three_hundred_files_with_a_transparent_and_a_corrupt_one(project, manager, django_capture_on_commit_callbacks):
    # Given 298 small PNGs, a transparent one and a truncated one
    files = [upload(f"img{n:03d}.png", png_bytes(n)) for n in range(298)]
    files.append(upload("clear.png", transparent_png()))
    files.append(upload("broken.png", png_bytes(999)[:60]))
    client = token_client(manager)

    # When a script uploads them in one request
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(f"/api/projects/{project.slug}/imports/", {"files": files}, format="multipart")

    # Then it answers 202 with the queued job and where to poll it
    assert answer.status_code == 202, answer.content
    assert_matches_schema(answer, "/api/projects/{slug}/imports/", "POST")
    started = answer.json()
    assert started["kind"] == "import"
    assert started["status"] == JobStatus.QUEUED
    assert started["url"] == f"http://testserver/api/projects/{project.slug}/jobs/{started['id']}/"
    assert answer["Location"] == started["url"]

    # and polling the job shows it done: every good file imported, the corrupt one rejected by name with its reason
    job = client.get(started["url"])
    assert job.status_code == 200
    assert_matches_schema(job, "/api/projects/{slug}/jobs/{job_id}/")
    job = job.json()
    assert job["status"] == JobStatus.SUCCEEDED
    assert job["result"]["imported"] == 299
    assert job["result"]["rejected"] == 1
    assert [e["name"] for e in job["errors"]] == ["broken.png"]
    assert job["errors"][0]["reason"].startswith("truncated or corrupt image")

    # and the items are listed, the transparent one among them with its size
    items = all_items(client, project.slug)
    assert len(items) == 299
    assert Item.objects.get(project=project, original_name="clear.png").width == 40


def test_a_zip_with_class_folders_and_a_csv_label_the_images(project, manager, django_capture_on_commit_callbacks):
    archive = zip_of({"cats/a.png": png_bytes(1), "dogs/b.png": png_bytes(2), "c.png": png_bytes(3)})
    csv = upload("labels.csv", b"filename,label\nc.png,birds/parrot\n")
    with django_capture_on_commit_callbacks(execute=True):
        answer = token_client(manager).post(
            f"/api/projects/{project.slug}/imports/",
            {"files": [upload("photos.zip", archive)], "csv": [csv], "labels_from_folders": "true"},
            format="multipart",
        )
    assert answer.status_code == 202, answer.content
    job = Job.objects.get(pk=answer.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.message
    labels = {r.item.original_name.rsplit("/", 1)[-1]: r.classes.get().name for r in ResolvedLabel.objects.all()}
    assert labels == {"a.png": "cats", "b.png": "dogs", "c.png": "parrot"}
    assert LabelClass.objects.get(project=project, name="parrot").parent.name == "birds"


def test_names_give_single_files_their_folders(project, manager, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        answer = token_client(manager).post(
            f"/api/projects/{project.slug}/imports/",
            {"files": [upload("1.png", png_bytes(1)), upload("2.png", png_bytes(2))],
             "names": ["cat/1.png", "dog/2.png"], "labels_from_folders": "true"},
            format="multipart",
        )  # fmt: skip
    assert answer.status_code == 202
    assert sorted(r.classes.get().name for r in ResolvedLabel.objects.filter(project=project)) == ["cat", "dog"]


def test_hostile_and_oversized_files_are_reported_and_change_nothing(
    project, manager, settings, django_capture_on_commit_callbacks
):
    # Given a byte limit, a file over it, a text file named .png, a zip slip entry and a decompression bomb
    settings.LABELLOOP_MAX_UPLOAD_BYTES = 1024 * 1024
    settings.LABELLOOP_MAX_IMAGE_PIXELS = 1_000_000
    buffer = io.BytesIO()
    Image.new("RGB", (800, 700), (9, 9, 9)).save(buffer, "BMP")  # 1.6 MiB
    bomb = io.BytesIO()
    Image.new("1", (2000, 2000)).save(bomb, "PNG")
    files = [
        upload("ok.png", png_bytes(5)),
        upload("huge.bmp", buffer.getvalue()),
        upload("notes.png", b"just some text, not an image"),
        upload("bomb.png", bomb.getvalue()),
        upload("slip.zip", zip_of({"../../escape.png": png_bytes(6)})),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        answer = token_client(manager).post(f"/api/projects/{project.slug}/imports/", {"files": files})
    assert answer.status_code == 202, answer.content

    # Then only the good image is an item, and each refused file is named with its reason
    job = Job.objects.get(pk=answer.json()["id"])
    assert job.status == JobStatus.SUCCEEDED
    assert list(Item.objects.filter(project=project).values_list("original_name", flat=True)) == ["ok.png"]
    reasons = {e["name"]: e["reason"] for e in job.errors}
    assert set(reasons) == {"huge.bmp", "notes.png", "bomb.png", "slip.zip:../../escape.png"}
    assert reasons["huge.bmp"] == "file is 1.6 MiB, over the 1.0 MiB limit"
    assert reasons["notes.png"] == "a text file, not an image"
    assert "zip slip" in reasons["slip.zip:../../escape.png"]
    assert "pixels" in reasons["bomb.png"]
    assert not (Path(settings.MEDIA_ROOT).parent / "escape.png").exists()
    # the staging folder is gone once the job ended
    staging = Path(settings.LABELLOOP_DATA_ROOT) / "staging"
    assert not [p for p in staging.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "files"),
        ({"files": [upload("1.png", png_bytes(1))], "names": ["a/1.png", "b/2.png"]}, "names"),
        ({"files": [upload(".DS_Store", b"junk")]}, "files"),
    ],
)
def test_nothing_to_import_is_a_400_and_no_job(project, manager, body, field, settings):
    answer = token_client(manager).post(f"/api/projects/{project.slug}/imports/", body, format="multipart")
    assert answer.status_code == 400, answer.content
    assert field in answer.json()
    assert Job.objects.count() == 0
    staging = Path(settings.LABELLOOP_DATA_ROOT) / "staging"
    assert not staging.exists() or not [p for p in staging.rglob("*") if p.is_file()]


def test_annotators_get_403_and_other_projects_managers_404(project, project_factory, member_of):
    annotator = token_client(member_of(project, Role.ANNOTATOR))
    ml_engineer = token_client(member_of(project, Role.ML_ENGINEER))
    outsider = token_client(member_of(project_factory(), Role.MANAGER))
    url = f"/api/projects/{project.slug}/imports/"
    assert annotator.post(url, {"files": [upload("a.png", png_bytes(1))]}).status_code == 403
    assert ml_engineer.post(url, {"files": [upload("a.png", png_bytes(1))]}).status_code == 403
    assert outsider.post(url, {"files": [upload("a.png", png_bytes(1))]}).status_code == 404
    assert outsider.post("/api/projects/no-such/imports/", {"files": [upload("a.png", b"x")]}).status_code == 404
    assert APIClient().post(url, {"files": [upload("a.png", png_bytes(1))]}).status_code == 401
    assert Job.objects.count() == 0
    assert Item.objects.count() == 0


def test_a_job_of_another_project_is_404_to_poll(project, manager, project_factory, django_capture_on_commit_callbacks):
    other = project_factory()
    with django_capture_on_commit_callbacks(execute=True):
        answer = token_client(manager).post(
            f"/api/projects/{project.slug}/imports/", {"files": [upload("a.png", b"x")]}
        )
    job_id = answer.json()["id"]
    assert token_client(manager).get(f"/api/projects/{other.slug}/jobs/{job_id}/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_broker_down_answers_503_with_the_failed_job(project, manager, monkeypatch):
    # Given Redis unreachable (the one thing mocked: the send)
    from labeling.services.imports import submit

    monkeypatch.setattr(submit, "task_send", lambda *args: False)

    # When a script uploads (outside a transaction, as a server runs: the send happens before the answer)
    answer = token_client(manager).post(f"/api/projects/{project.slug}/imports/", {"files": [upload("a.png", b"x")]})

    # Then it is told at once, with the failed job saying why, and nothing was imported
    assert answer.status_code == 503, answer.content
    assert_matches_schema(answer, "/api/projects/{slug}/imports/", "POST")
    assert answer.json()["status"] == JobStatus.FAILED
    assert "Redis" in answer.json()["message"]
    assert Item.objects.count() == 0


def test_a_limit_under_a_mebibyte_is_said_in_kibibytes(project, manager, settings, django_capture_on_commit_callbacks):
    # Given a 40 KiB limit and a 60 KiB file
    settings.LABELLOOP_MAX_UPLOAD_BYTES = 40 * 1024
    buffer = io.BytesIO()
    Image.new("RGB", (160, 128), (9, 9, 9)).save(buffer, "BMP")  # 60.1 KiB
    with django_capture_on_commit_callbacks(execute=True):
        answer = token_client(manager).post(
            f"/api/projects/{project.slug}/imports/", {"files": [upload("big.bmp", buffer.getvalue())]}
        )

    # Then the refusal names sizes a user can read (before: "file is 0.1 MiB, over the 0.0 MiB limit")
    assert answer.status_code == 202, answer.content
    job = Job.objects.get(pk=answer.json()["id"])
    assert [e["reason"] for e in job.errors] == ["file is 60.1 KiB, over the 40.0 KiB limit"]
    assert not Item.objects.filter(project=project).exists()


@pytest.mark.parametrize(
    ("encoding", "sep"), [("utf-16", ","), ("utf-16", "\t"), ("utf-16-be-bom", ","), ("utf-16-le-no-bom", ",")]
)
def test_a_utf16_labels_csv_labels_the_images_or_is_refused_in_one_line(
    project, manager, encoding, sep, django_capture_on_commit_callbacks
):
    # Given a labels CSV saved as Excel's "Unicode Text" (UTF-16 with its byte order mark, tabs) or a UTF-16 CSV
    # (stop 55's tester: read as Windows-1252, every row was refused as "'\x00a\x00' contains a control character")
    text = f"filename{sep}label\r\na.png{sep}cats\r\nb.png{sep}dogs\r\n"
    data = {
        "utf-16": lambda: text.encode("utf-16"),  # with the BOM of this machine's order
        "utf-16-be-bom": lambda: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
        "utf-16-le-no-bom": lambda: text.encode("utf-16-le"),
    }[encoding]()
    files = [upload("a.png", png_bytes(1)), upload("b.png", png_bytes(2))]

    with django_capture_on_commit_callbacks(execute=True):
        answer = token_client(manager).post(
            f"/api/projects/{project.slug}/imports/",
            {"files": files, "csv": [upload("labels.csv", data)]},
            format="multipart",
        )

    # Then with its byte order mark it labels the images; without one, the job says in one line what to do
    job = Job.objects.get(pk=answer.json()["id"])
    labels = {r.item.original_name: r.classes.get().name for r in ResolvedLabel.objects.filter(project=project)}
    if encoding == "utf-16-le-no-bom":
        assert labels == {}
        assert job.errors == [
            {"name": "labels CSV", "reason": "not UTF-8 (or Windows-1252) text: save it as UTF-8 CSV"}
        ]
    else:
        assert labels == {"a.png": "cats", "b.png": "dogs"}
        assert job.errors == []
