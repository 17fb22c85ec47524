"""Import sources: zips (zip slip), server folders as ImageFolder, label CSVs, and the import_images command."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.core.management import CommandError, call_command
from PIL import Image

from labeling.models import Item, ItemState, Job, JobStatus, LabelClass, LabelSource, ResolvedLabel, TaskType
from labeling.selectors.jobs import job_errors
from labeling.services.imports import import_job_create, import_run, item_create_from_bytes

pytestmark = pytest.mark.django_db


def png(seed: int, size=(24, 24)) -> bytes:
    image = Image.new("RGB", size, (seed * 7 % 256, seed * 13 % 256, seed * 29 % 256))
    image.putpixel((0, 0), (seed % 256, seed // 256 % 256, 1))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def run_import(project, sources, **kwargs) -> tuple[dict, Job]:
    job = import_job_create(project=project, sources=sources, **kwargs)
    result = import_run(job_id=job.pk)
    job.refresh_from_db()
    return result, job


def labels_of(project) -> dict[str, list[str]]:
    return {
        r.item.original_name: sorted(c.path for c in r.classes.all())
        for r in ResolvedLabel.objects.filter(project=project).select_related("item")
    }


def test_zip_import_refuses_zip_slip_and_skips_junk(project, tmp_path):
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("good/a.png", png(1))
        zf.writestr("../evil.png", png(2))
        zf.writestr("/abs.png", png(3))
        zf.writestr("__MACOSX/good/._a.png", b"resource fork")
        zf.writestr(".DS_Store", b"junk")
        zf.writestr("good/", b"")
        zf.writestr("good/b.png", png(4))
    result, job = run_import(project, [{"type": "zip", "path": str(archive), "name": "upload.zip"}])
    assert result["imported"] == 2
    assert sorted(Item.objects.filter(project=project).values_list("original_name", flat=True)) == [
        "good/a.png",
        "good/b.png",
    ]
    reasons = {e["name"]: e["reason"] for e in job.errors}
    assert "zip slip" in reasons["upload.zip:../evil.png"]
    assert "zip slip" in reasons["upload.zip:/abs.png"]
    assert job.status == JobStatus.SUCCEEDED
    assert result["rejected"] == 2
    assert not (tmp_path.parent / "evil.png").exists()


def test_zip_of_an_imagefolder_gives_classes_ignoring_the_wrapping_folder(project, tmp_path):
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pets/cat/1.png", png(1))
        zf.writestr("pets/dog/2.png", png(2))
    run_import(project, [{"type": "zip", "path": str(archive), "name": "pets.zip"}], labels_from_folders=True)
    assert labels_of(project) == {"pets/cat/1.png": ["cat"], "pets/dog/2.png": ["dog"]}


def test_a_bad_file_never_stops_the_batch(project, tmp_path):
    (tmp_path / "a.png").write_bytes(png(1))
    (tmp_path / "b.jpg").write_bytes(b"not really")
    (tmp_path / "c.png").write_bytes(png(3))
    (tmp_path / "copy-of-a.png").write_bytes(png(1))
    result, job = run_import(project, [{"type": "folder", "path": str(tmp_path), "name": "x"}])
    assert (result["imported"], result["rejected"], result["duplicates"]) == (2, 1, 1)
    assert {e["name"]: e["reason"] for e in job.errors} == {
        "b.jpg": "a text file, not an image",
        "copy-of-a.png": "duplicate of a.png",
    }
    assert job.done == job.total == 4


def test_a_file_the_storage_refuses_leaves_no_half_item_and_the_rest_of_its_batch_imports(
    project, tmp_path, monkeypatch
):
    # Given three files, and a storage that refuses the thumbnail of b.png (after its original was stored)
    for n, name in enumerate(["a.png", "b.png", "c.png"], start=1):
        (tmp_path / name).write_bytes(png(n))
    refused = hashlib.sha256(png(2)).hexdigest()
    real_save = FileSystemStorage._save

    def save(storage, name, content):
        if "/thumbs/" in name and refused in name:
            raise OSError("disk full")
        return real_save(storage, name, content)

    monkeypatch.setattr(FileSystemStorage, "_save", save)

    # When the folder is imported (one batch: the batch fails, then each file is stored on its own)
    result, job = run_import(project, [{"type": "folder", "path": str(tmp_path), "name": "x"}])

    # Then b.png is rejected by name and reason, a.png and c.png are imported,
    # and nothing of b.png remains: no row, no stored original
    assert (result["imported"], result["rejected"]) == (2, 1)
    assert job_errors(job=job) == [
        {"name": "b.png", "reason": "could not be stored (OSError: disk full)", "kind": "unreadable"}
    ]
    items = Item.objects.filter(project=project)
    assert sorted(items.values_list("original_name", flat=True)) == ["a.png", "c.png"]
    media = Path(settings.MEDIA_ROOT)
    stored = sorted(p.relative_to(media).as_posix() for p in (media / "projects" / str(project.pk)).rglob("*.*"))
    assert stored == sorted(name for item in items for name in (item.file.name, item.thumbnail.name))
    assert not [name for name in stored if refused in name]


def test_import_with_decoder_threads_gives_the_same_items(project, tmp_path):
    for n in range(80):
        (tmp_path / f"{n:03d}.png").write_bytes(png(n))
    (tmp_path / "zzz.png").write_bytes(b"")
    job = import_job_create(project=project, sources=[{"type": "folder", "path": str(tmp_path), "name": "x"}])
    result = import_run(job_id=job.pk, threads=2)
    assert result["imported"] == 80
    assert result["rejected"] == 1
    assert Item.objects.filter(project=project).exclude(phash="").count() == 80


def test_imagefolder_import_through_the_command_creates_classes_and_labels(project, tmp_path, capsys):
    for name, data in [("cat/1.png", png(1)), ("dog/2.png", png(2)), ("animals/bird/3.png", png(3))]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    call_command("import_images", project.slug, str(tmp_path), "--labels-from-folders")
    out = capsys.readouterr().out
    assert "3 imported" in out
    assert "rejected cat/notes.txt: a text file, not an image" in out
    assert labels_of(project) == {"cat/1.png": ["cat"], "dog/2.png": ["dog"], "animals/bird/3.png": ["animals / bird"]}
    assert set(Item.objects.filter(project=project).values_list("state", flat=True)) == {ItemState.LABELED}
    assert set(ResolvedLabel.objects.values_list("source", flat=True)) == {LabelSource.IMPORT}
    bird = LabelClass.objects.get(project=project, name="bird")
    assert bird.parent.name == "animals"
    assert Job.objects.get(project=project).status == JobStatus.SUCCEEDED  # the UI sees the command's run


def test_train_and_test_folders_are_not_classes(project, tmp_path):
    for name, data in [("train/cat/1.png", png(1)), ("test/cat/2.png", png(2))]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    call_command("import_images", project.slug, str(tmp_path), "--labels-from-folders", verbosity=0)
    assert list(LabelClass.objects.filter(project=project).values_list("name", flat=True)) == ["cat"]


def test_command_fails_clearly_for_a_missing_project_or_path(project, tmp_path):
    with pytest.raises(CommandError, match="No project"):
        call_command("import_images", "nope", str(tmp_path))
    with pytest.raises(CommandError, match="does not exist"):
        call_command("import_images", project.slug, str(tmp_path / "missing"))
    assert Job.objects.count() == 0


def test_csv_labels_attach_to_the_batch_and_to_earlier_items(project_factory, tmp_path):
    project = project_factory(task_type=TaskType.MULTI)
    item_create_from_bytes(project=project, name="old.png", data=png(9))
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.png").write_bytes(png(1))
    (folder / "b.png").write_bytes(png(2))
    labels = tmp_path / "labels.csv"
    labels.write_text("filename,label\na.png,animals/cat\nb.png,cat;outdoor\nold.png,outdoor\nghost.png,cat\n")
    result, job = run_import(project, [{"type": "folder", "path": str(folder), "name": "imgs"}], csv_path=str(labels))
    assert labels_of(project) == {
        "a.png": ["animals / cat"],
        "b.png": ["cat", "outdoor"],
        "old.png": ["outdoor"],
    }
    assert result["labeled"] == 3
    assert {"name": "ghost.png", "reason": "no item with this name", "kind": "label for no item"} in job_errors(job=job)
    assert Item.objects.get(project=project, original_name="old.png").state == ItemState.LABELED


def test_a_csv_row_for_a_file_skipped_as_a_duplicate_says_so(project_factory, tmp_path):
    # Given an upload where c.png and d.png are byte copies of a.png, and a labels CSV that gives c.png a.png's label
    # and d.png another one
    project = project_factory(task_type=TaskType.MULTI)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("a.png", "c.png", "d.png"):
        (folder / name).write_bytes(png(1))
    (folder / "b.png").write_bytes(png(2))
    labels = tmp_path / "labels.csv"
    labels.write_text("filename,label\na.png,cat;dog\nb.png,cat\nc.png,dog;cat\nd.png,animals / cat\n")

    # When it is imported
    result, job = run_import(project, [{"type": "folder", "path": str(folder), "name": "imgs"}], csv_path=str(labels))

    # Then a.png keeps its label; the copy with the same label raises nothing, and the other copy's row says its file
    # was a duplicate and its label not applied, instead of "no item with this name"
    assert labels_of(project) == {"a.png": ["cat", "dog"], "b.png": ["cat"]}
    assert result["duplicates"] == 2
    label_rows = [
        e for e in job_errors(job=job) if e["name"] in ("c.png", "d.png") and "duplicate of" not in e["reason"][:13]
    ]
    assert label_rows == [
        {
            "name": "d.png",
            "reason": "row's file is a duplicate of a.png, which keeps its own label (cat; dog); this row's label "
            "(animals/cat) was not applied",
            "kind": "label for a duplicate file",
        }
    ]
    assert not any(e["reason"] == "no item with this name" for e in job.errors)
    assert result["rejected_by_reason"]["label for a duplicate file"] == 1


def test_csv_with_two_labels_for_a_single_label_project_leaves_the_item_unlabeled(project, tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(png(1))
    labels = tmp_path / "labels.csv"
    labels.write_text("a.png,cat;dog\n")
    result, job = run_import(
        project, [{"type": "folder", "path": str(tmp_path / "imgs"), "name": "imgs"}], csv_path=str(labels)
    )
    assert result["imported"] == 1
    assert result["labeled"] == 0
    assert "single-label" in job.errors[0]["reason"]
    assert Item.objects.get(project=project).state == ItemState.UNLABELED


def test_a_duplicate_delivery_of_a_running_or_finished_job_does_nothing(project, tmp_path):
    from labeling.tasks import import_run_task

    (tmp_path / "a.png").write_bytes(png(1))
    job = import_job_create(project=project, sources=[{"type": "folder", "path": str(tmp_path), "name": "x"}])
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING)
    # An eager .get() checks celery's process-wide "inside a task" flag, which an eager task running in the
    # session's live-server thread sets meanwhile; this test is not a task, so it says so.
    assert import_run_task.apply(args=(job.pk,)).get() == {"job": job.pk, "skipped": True}
    assert Item.objects.count() == 0
    Job.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    assert import_run_task.apply(args=(job.pk,)).get()["imported"] == 1
    assert import_run_task.apply(args=(job.pk,)).get() == {"job": job.pk, "skipped": True}
    assert Item.objects.count() == 1


def test_truncated_files_fail_on_every_decoder_thread_whatever_other_code_chose(project, tmp_path, monkeypatch):
    # Given code elsewhere in the process that lets Pillow load truncated images, and a folder where
    # every third file is cut short
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    for n in range(150):
        data = png(n, (64, 48))
        (tmp_path / f"{n:03d}.png").write_bytes(data[: len(data) // 2] if n % 3 == 0 else data)

    # When it is imported on four decoder threads
    job = import_job_create(project=project, sources=[{"type": "folder", "path": str(tmp_path), "name": "x"}])
    result = import_run(job_id=job.pk, threads=4)

    # Then each cut file is rejected as truncated, the rest imported, and the other code's choice is back
    job.refresh_from_db()
    assert (result["imported"], result["rejected"]) == (100, 50)
    assert {e["name"] for e in job.errors} == {f"{n:03d}.png" for n in range(0, 150, 3)}
    assert all("truncated" in e["reason"] or "corrupt" in e["reason"] for e in job.errors)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True


def test_a_pipe_in_a_server_folder_is_refused_instead_of_blocking_the_import(project, tmp_path):
    # Given a folder with an image and a named pipe (reading it would wait for a writer forever)
    (tmp_path / "a.png").write_bytes(png(1))
    os.mkfifo(tmp_path / "b.png")

    # When it is imported, then the image is in and the pipe is refused by name
    result, job = run_import(project, [{"type": "folder", "path": str(tmp_path), "name": "x"}])
    assert job.status == JobStatus.SUCCEEDED
    assert result["imported"] == 1
    assert job_errors(job=job) == [
        {"name": "b.png", "reason": "not a regular file: refused", "kind": "not a regular file"}
    ]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", ["pipe.png", "pipe.zip"])
def test_a_pipe_named_on_the_command_line_is_refused_instead_of_blocking(project, tmp_path, capsys, name):
    # Given a named pipe with no writer, passed as the image or zip to import
    os.mkfifo(tmp_path / name)

    # When the command imports it, then it ends at once with the pipe refused by name
    call_command("import_images", project.slug, str(tmp_path / name))
    assert f"rejected {name}: not a regular file: refused" in capsys.readouterr().out
    job = Job.objects.get(project=project)
    assert job.status == JobStatus.SUCCEEDED
    assert job.result["rejected"] == 1


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ('filename;label\na.png;animals/café\nb.png;"cat;outdoor"\n', "utf-8"),  # Excel where "," is the decimal mark
        ("filename,label\na.png,animals/café\nb.png,cat;outdoor\n", "cp1252"),  # Excel's "CSV (Comma delimited)"
        ("a.png\tanimals/café\nb.png\tcat;outdoor\n", "utf-8"),  # a TSV
    ],
    ids=["semicolons", "windows-1252", "tabs"],
)
def test_labels_csv_as_spreadsheets_save_it(project_factory, tmp_path, text, encoding):
    project = project_factory(task_type=TaskType.MULTI)
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(png(1))
    (tmp_path / "imgs" / "b.png").write_bytes(png(2))
    labels = tmp_path / "labels.csv"
    labels.write_bytes(text.encode(encoding))
    result, job = run_import(
        project, [{"type": "folder", "path": str(tmp_path / "imgs"), "name": "imgs"}], csv_path=str(labels)
    )
    assert (result["labeled"], job.errors) == (2, [])
    assert labels_of(project) == {"a.png": ["animals / café"], "b.png": ["cat", "outdoor"]}
