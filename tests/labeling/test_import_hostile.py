"""Hostile imports, performed through the import page: zip bombs with overlapping entries, archives past the
entry and size limits, labels CSVs with broken class paths, and more rejections than the page can list."""

from __future__ import annotations

import io
import os
import struct
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from labeling.models import Item, ItemState, Job, JobKind, JobStatus, LabelClass, ResolvedLabel, Role
from labeling.selectors.jobs import job_errors
from labeling.tasks import staging_dirs_sweep_task
from tests.conftest import wait_for
from tests.factories import page_client, png_bytes, zip_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager_client(project, member_of):
    return page_client(member_of(project, Role.MANAGER))


@pytest.fixture
def upload(django_capture_on_commit_callbacks):
    """The import page's plain form (what the page posts without JavaScript); the eager worker runs the job."""

    def post(client: Client, project, files: dict[str, bytes], **form) -> Job:
        uploads = [SimpleUploadedFile(name, data) for name, data in files.items()]
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                reverse("labeling:import", args=[project.slug]), {"action": "upload", "files": uploads, **form}
            )
        assert response.status_code == 302, response.content[:500]
        return Job.objects.filter(project=project, kind=JobKind.IMPORT).latest("created_at")

    return post


def overlapping_zip(*, entries: int, megabytes: int, name: bytes = b"bomb.png") -> bytes:
    """One deflated member of zeros and `entries` central-directory records that all point at it.

    Python's zipfile cannot write this, so the bytes are packed by hand (APPNOTE 4.3.7, 4.3.12, 4.3.16).
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1024 * 1024)
    crc, parts = 0, []
    for _ in range(megabytes):
        crc = zlib.crc32(chunk, crc)
        parts.append(compressor.compress(chunk))
    data = b"".join(parts) + compressor.flush()
    size = megabytes * len(chunk)
    local = struct.pack("<I5H3I2H", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(data), size, len(name), 0) + name
    central = (
        struct.pack("<I6H3I5H2I", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(data), size, len(name), 0, 0, 0, 0, 0, 0)
        + name
    )  # fmt: skip  (the last 0: every entry's header is at offset 0)
    directory = central * entries
    end = struct.pack("<I4H2IH", 0x06054B50, 0, 0, entries, entries, len(directory), len(local) + len(data), 0)
    return local + data + directory + end


@pytest.mark.parametrize(
    ("archive_limit", "reason"),
    [
        (None, "zip would unpack to 14.4 GiB, over the 4.0 GiB limit"),  # the default limit sees it first
        (10**15, "share the same compressed bytes (a zip bomb)"),  # with no size limit, the overlap alone
    ],
)
def test_a_zip_whose_entries_overlap_one_deflated_block_is_refused_before_anything_is_inflated(
    project, manager_client, upload, settings, archive_limit, reason
):
    # Given the attack as reported: a 65 KB zip, 300 directory entries over one 49 MB deflated block (14.7 GB)
    if archive_limit is not None:
        settings.LABELLOOP_MAX_ARCHIVE_BYTES = archive_limit
    bomb = overlapping_zip(entries=300, megabytes=49)
    assert len(bomb) < 70 * 1024

    # When a manager uploads it with a real image beside it
    started = time.monotonic()
    job = upload(manager_client, project, {"bomb.zip": bomb, "fine.png": png_bytes(1)})
    elapsed = time.monotonic() - started

    # Then the zip is refused as a whole, by name and reason, at once; the image beside it is imported
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert [(e["name"], reason in e["reason"]) for e in job.errors] == [("bomb.zip", True)]
    assert list(Item.objects.filter(project=project).values_list("original_name", flat=True)) == ["fine.png"]
    assert job.result["rejected_by_reason"] == {"zip refused as a whole": 1}
    page = manager_client.get(reverse("labeling:import", args=[project.slug])).content.decode()
    assert "a zip bomb" in page or "over the 4.0 GiB limit" in page


def test_entries_that_quote_each_other_are_refused_even_with_distinct_headers(project, manager_client, upload):
    # Given a zip whose first entry's compressed data contains the second entry (Fifield's overlap, in small)
    inner = zip_of({"b.png": png_bytes(2)})
    inner_header = inner[: inner.index(b"PK\x01\x02")]  # b.png's local header and data, stored
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("a.png", png_bytes(1) + inner_header)
    data = bytearray(outer.getvalue())
    # point a second directory record at b.png's header inside a.png's data
    directory_at = data.index(b"PK\x01\x02")
    b_at = data.index(inner_header)
    b_central = bytearray(inner[inner.index(b"PK\x01\x02") : inner.index(b"PK\x05\x06")])
    struct.pack_into("<I", b_central, 42, b_at)
    eocd = bytearray(data[data.index(b"PK\x05\x06") :])
    directory = bytes(data[directory_at : data.index(b"PK\x05\x06")]) + bytes(b_central)
    struct.pack_into("<HHI", eocd, 8, 2, 2, len(directory))
    crafted = bytes(data[:directory_at]) + directory + bytes(eocd)
    assert [i.filename for i in zipfile.ZipFile(io.BytesIO(crafted)).infolist()] == ["a.png", "b.png"]

    # When it is uploaded, then it is refused as a whole and nothing is imported
    job = upload(manager_client, project, {"quoted.zip": crafted})
    job.refresh_from_db()
    assert [e["name"] for e in job.errors] == ["quoted.zip"]
    assert "zip bomb" in job.errors[0]["reason"]
    assert Item.objects.filter(project=project).count() == 0


def test_a_zip_over_the_entry_limit_is_refused_whole(project, manager_client, upload, settings):
    # Given a limit of 500 entries and a zip of 501 good images
    settings.LABELLOOP_MAX_ARCHIVE_ENTRIES = 500
    archive = zip_of({f"img{n:03d}.png": png_bytes(n, (8, 8)) for n in range(501)})

    job = upload(manager_client, project, {"many.zip": archive})

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job_errors(job=job) == [
        {
            "name": "many.zip",
            "reason": "zip has more than 500 entries (LABELLOOP_MAX_ARCHIVE_ENTRIES): refused",
            "kind": "zip refused as a whole",
        }
    ]
    assert Item.objects.filter(project=project).count() == 0


def test_a_zip_whose_declared_sizes_pass_the_archive_limit_is_refused_whole(project, manager_client, upload, settings):
    # Given a 10 MB archive limit and a zip of two images and 12 MB of zeros (a few KB compressed)
    settings.LABELLOOP_MAX_ARCHIVE_BYTES = 10 * 1024 * 1024
    archive = zip_of({"a.png": png_bytes(1), "b.png": png_bytes(2), "padding.bin": bytes(12 * 1024 * 1024)},
                     zipfile.ZIP_DEFLATED)  # fmt: skip
    assert len(archive) < 100_000

    job = upload(manager_client, project, {"big.zip": archive})

    job.refresh_from_db()
    assert [e["name"] for e in job.errors] == ["big.zip"]
    assert "zip would unpack to 12.0 MiB, over the 10.0 MiB limit" in job.errors[0]["reason"]
    assert Item.objects.filter(project=project).count() == 0


def test_a_bad_class_path_in_the_labels_csv_refuses_that_row_and_the_rest_goes_on(
    project, manager_client, upload, settings
):
    # Given 300 images and a labels CSV where one row has an empty level (//) and others use " / " and spaces
    images = {f"img{n:03d}.png": png_bytes(n, (12, 12)) for n in range(300)}
    rows = ["filename,label"] + [f"img{n:03d}.png,{'animals/cat' if n % 2 else 'animals/dog'}" for n in range(300)]
    rows[41] = "img040.png,animals//dog"
    rows[42] = "img041.png,animals / cat"
    rows[43] = "img042.png, /animals/dog/ "
    rows[44] = "img043.png,animals/ /cat"
    images["labels.csv"] = ("\n".join(rows) + "\n").encode()
    staging = Path(settings.LABELLOOP_DATA_ROOT) / "staging" / str(project.pk)

    # When they are uploaded together
    job = upload(manager_client, project, images)

    # Then every image is imported, the two bad rows are refused by row number and reason and leave their
    # images unlabeled, " / " means the same hierarchy, no stray class exists, and the staging folder is gone
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.result["imported"] == 300
    assert job.result["labeled"] == 298
    errors = {e["name"]: e["reason"] for e in job.errors}
    assert set(errors) == {"labels CSV row 42 (img040.png)", "labels CSV row 45 (img043.png)"}
    assert "empty class name" in errors["labels CSV row 42 (img040.png)"]
    assert sorted(c.path for c in LabelClass.objects.filter(project=project)) == [
        "animals",
        "animals / cat",
        "animals / dog",
    ]
    unlabeled = Item.objects.filter(project=project, state=ItemState.UNLABELED).values_list("original_name", flat=True)
    assert sorted(unlabeled) == ["img040.png", "img043.png"]
    assert ResolvedLabel.objects.get(item__original_name="img041.png").classes.get().path == "animals / cat"
    assert ResolvedLabel.objects.get(item__original_name="img042.png").classes.get().path == "animals / dog"
    assert not any(p.is_dir() for p in staging.glob("*/upload-*"))


def test_folder_names_that_are_blank_or_padded_do_not_stop_the_import(project, manager_client, upload):
    # Given a zip of class folders where one folder name is a space and one ends with a space
    archive = zip_of({"pets/ /a.png": png_bytes(1), "pets/cat /b.png": png_bytes(2), "pets/cat/c.png": png_bytes(3)})

    job = upload(manager_client, project, {"pets.zip": archive}, labels_from_folders="on")

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.result["imported"] == 3
    assert [(e["name"], "empty class name" in e["reason"]) for e in job.errors] == [("pets.zip:pets/ /a.png", True)]
    assert list(LabelClass.objects.filter(project=project).values_list("name", flat=True)) == ["cat"]
    assert sorted(r.item.original_name for r in ResolvedLabel.objects.filter(project=project)) == [
        "pets/cat /b.png",
        "pets/cat/c.png",
    ]


def test_every_rejection_is_counted_by_reason_past_the_names_the_page_keeps(project, manager_client, upload):
    # Given a zip of 5,500 text files, then three cut-short images and one good image
    files = {f"notes/{n:05d}.png": f"note {n}".encode() for n in range(5500)}
    files.update({f"cut{n}.png": png_bytes(n, (40, 40))[:50] for n in range(3)})
    files["good.png"] = png_bytes(99)

    job = upload(manager_client, project, {"mixed.zip": zip_of(files)})

    # Then every file is counted by reason, the first names of each reason are kept (the three cut files
    # among them, after 5,500 others), and the page shows the counts
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.result["rejected"] == 5503
    assert job.result["rejected_by_reason"] == {"not a supported image": 5500, "truncated or corrupt": 3}
    kept = [e["name"] for e in job.errors]
    assert kept[-3:] == ["mixed.zip:cut0.png", "mixed.zip:cut1.png", "mixed.zip:cut2.png"]  # named with their zip
    assert len(kept) < 5500
    page = manager_client.get(reverse("labeling:import", args=[project.slug])).content.decode()
    assert '<td>not a supported image</td><td class="count">5500</td>' in page
    assert '<td>truncated or corrupt</td><td class="count">3</td>' in page


def staging_folders(settings, project) -> list[Path]:
    return list((Path(settings.LABELLOOP_DATA_ROOT) / "staging" / str(project.pk)).glob("*/upload-*"))


@pytest.mark.django_db(transaction=True)  # autocommit, as in production: on_commit runs inside the request
def test_an_upload_that_cannot_be_queued_leaves_no_staging_folder(project, manager_client, settings):
    # Given a task queue that cannot be reached
    from config.celery_app import app
    from tests.conftest import free_port

    old = {k: app.conf[k] for k in ("task_always_eager", "broker_url")}
    app.conf.update(task_always_eager=False, broker_url=f"redis://127.0.0.1:{free_port()}/0")
    app._pool = app.amqp._producer_pool = None  # fresh connection pools for the dead broker URL
    try:
        # When a manager uploads images
        manager_client.post(
            reverse("labeling:import", args=[project.slug]),
            {"action": "upload", "files": [SimpleUploadedFile(f"{n}.png", png_bytes(n)) for n in range(3)]},
        )
    finally:
        app.conf.update(**old)
        app.pool.force_close_all()
        app._pool = app.amqp._producer_pool = None

    # Then the job failed with its reason and the uploaded files are not left on the server
    assert Job.objects.get(project=project).status == JobStatus.FAILED
    assert staging_folders(settings, project) == []


def test_an_import_that_fails_outside_the_run_leaves_no_staging_folder(
    project, manager_client, upload, settings, monkeypatch
):
    # Given an import that breaks before its run can record anything (the task's last resort handles it)
    from labeling.services import imports

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(imports, "import_run", broken)

    # When a manager uploads images
    job = upload(manager_client, project, {f"{n}.png": png_bytes(n) for n in range(3)})

    # Then the job failed with the reason, and its staging folder is gone
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "database went away" in job.message
    assert staging_folders(settings, project) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.integration
@pytest.mark.slow
def test_the_zip_bomb_does_not_keep_a_real_worker_busy(project, member_of, start_worker):
    # Given the only worker of the imports queue, and a manager with the 65 KB bomb and then 50 real images
    worker = start_worker(queues="default")
    client = Client()
    client.force_login(member_of(project, Role.MANAGER))

    def browser_upload(files: dict[str, bytes]) -> Job:
        """What static/js/import.js does: the upload endpoint, then start."""
        data = {"files": [SimpleUploadedFile(n, d) for n, d in files.items()], "names": list(files)}
        token = client.post(reverse("labeling:import_upload", args=[project.slug]), data).json()["token"]
        response = client.post(reverse("labeling:import_start", args=[project.slug]), {"token": token})
        assert response.status_code == 201, response.content
        return Job.objects.filter(project=project).latest("created_at")

    # When both are uploaded one after the other, the way the page does
    started = time.monotonic()
    bomb_job = browser_upload({"bomb.zip": overlapping_zip(entries=300, megabytes=49)})
    images_job = browser_upload({f"img{n:02d}.png": png_bytes(n) for n in range(50)})

    # Then the worker refuses the bomb at once and imports the images right after it
    wait_for(lambda: Job.objects.get(pk=images_job.pk).finished, 120, what=f"imports\n{worker.output()[-3000:]}")
    elapsed = time.monotonic() - started
    bomb_job.refresh_from_db()
    images_job.refresh_from_db()
    assert bomb_job.status == JobStatus.SUCCEEDED, worker.output()[-3000:]
    assert [e["name"] for e in bomb_job.errors] == ["bomb.zip"]
    assert images_job.result["imported"] == 50
    assert elapsed < 60, f"took {elapsed:.1f} s"  # the bomb alone kept the worker busy for 58 s before


def test_uploads_started_and_never_submitted_are_swept_but_a_queued_import_keeps_its_files(
    project, manager_client, settings
):
    # Given three browser uploads: one abandoned a day and a half ago, one abandoned a minute ago,
    # and one as old whose import is queued (waiting behind other work)
    def start_upload() -> Path:
        answer = manager_client.post(
            reverse("labeling:import_upload", args=[project.slug]),
            {"files": [SimpleUploadedFile("a.png", png_bytes(1))]},
        )
        return next(p for p in staging_folders(settings, project) if p.name == answer.json()["token"])

    abandoned, fresh, held = start_upload(), start_upload(), start_upload()
    Job.objects.create(project=project, kind=JobKind.IMPORT, status=JobStatus.QUEUED, params={"staging_dir": str(held)})
    long_ago = time.time() - 36 * 3600
    for folder in (abandoned, held):
        for path in (folder, *folder.iterdir()):
            os.utime(path, (long_ago, long_ago))

    # When the housekeeping sweep runs
    result = staging_dirs_sweep_task()

    # Then only the abandoned upload is gone
    assert result == {"removed": 1}
    assert sorted(staging_folders(settings, project)) == sorted([fresh, held])
