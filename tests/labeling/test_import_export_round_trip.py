"""A Labelloop dataset export imports into another project with the same classes, hierarchy and spelling.

Each test builds the source project the way a team does (an import with a labels CSV), exports it with the
command, and imports the zip, its unzipped folder or the dropped folder into a new project.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from PIL import Image

from labeling.models import Item, Job, ResolvedLabel, Role, TaskType

pytestmark = pytest.mark.django_db

# Deep paths, accents, another script, a Windows device name, punctuation, and two paths that flatten alike.
PATHS = [
    "animals/mammals/cat",
    "animals/mammals/dog",
    "animals/birds",
    "vehicles/air/plane café",
    "動物/猫",
    "con",
    "a b?c",
    "x/y_z",
    "x_y/z",
]


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", (20, 20), (seed * 37 % 256, seed * 91 % 256, seed * 13 % 256))
    image.putpixel((0, 0), (seed % 256, seed // 256, 3))
    image.save(buffer, "PNG")
    return buffer.getvalue()


def labels_by_content(project) -> dict[str, list[str]]:
    """sha256 of the image -> its class paths ("a / b"): comparable across projects."""
    return {
        r.item.sha256: sorted(c.path for c in r.classes.all())
        for r in ResolvedLabel.objects.filter(project=project).select_related("item").prefetch_related("classes")
    }


def source_project(project_factory, tmp_path: Path, *, multi: bool = False):
    """A project whose 27 images were imported with a labels CSV (3 per path; multi-label: two paths each)."""
    project = project_factory(task_type=TaskType.MULTI if multi else TaskType.SINGLE)
    folder = tmp_path / "source"
    folder.mkdir()
    rows = ["filename,label"]
    for i in range(3 * len(PATHS)):
        (folder / f"{i}.png").write_bytes(png(i))
        paths = [PATHS[i % len(PATHS)]] + ([PATHS[(i + 1) % len(PATHS)]] if multi else [])
        rows.append(f'{i}.png,"{";".join(paths)}"')
    (tmp_path / "labels.csv").write_text("\n".join(rows), encoding="utf-8")
    call_command("import_images", project.slug, str(folder), "--csv", str(tmp_path / "labels.csv"), verbosity=0)
    assert len(labels_by_content(project)) == 3 * len(PATHS)
    return project


def export(project, tmp_path: Path, fmt: str) -> tuple[Path, dict]:
    out = tmp_path / f"{project.slug}-{fmt}.zip"
    call_command("export_dataset", project.slug, "--format", fmt, "--out", str(out), verbosity=0)
    with zipfile.ZipFile(out) as zf:
        return out, json.loads(zf.read("manifest.json"))


@pytest.mark.parametrize("fmt", ["imagefolder", "hf"])
def test_an_export_zip_imports_with_its_taxonomy_and_exports_with_the_same_hash(project_factory, tmp_path, fmt):
    source = source_project(project_factory, tmp_path)
    zip_path, manifest = export(source, tmp_path, fmt)
    if fmt == "imagefolder":  # what a user unzipping it sees: every script kept, nothing unsafe, nothing clashing
        folders = {c["path"]: c["folder"] for c in manifest["classes"]}
        assert folders["vehicles/air/plane café"] == "vehicles__air__plane_café"
        assert folders["動物/猫"] == "動物__猫"
        assert folders["con"] == "con_"
        assert folders["a b?c"] == "a_b_c"
        assert len({f.lower() for f in folders.values()}) == len(PATHS)

    target = project_factory()
    call_command("import_images", target.slug, str(zip_path), "--labels-from-folders", verbosity=0)

    job = Job.objects.filter(project=target).latest("pk")
    assert (job.result["imported"], job.result["rejected"], job.errors) == (27, 0, [])  # the manifest is no refusal
    assert labels_by_content(target) == labels_by_content(source)
    again = tmp_path / "again"
    again.mkdir()
    assert export(target, again, fmt)[1]["dataset_hash"] == manifest["dataset_hash"]


def test_a_multi_label_hf_export_imports_every_label(project_factory, tmp_path):
    source = source_project(project_factory, tmp_path, multi=True)
    zip_path, _ = export(source, tmp_path, "hf")
    target = project_factory(task_type=TaskType.MULTI)
    call_command("import_images", target.slug, str(zip_path), "--labels-from-folders", verbosity=0)
    labels = labels_by_content(target)
    assert labels == labels_by_content(source)
    assert {len(v) for v in labels.values()} == {2}


def test_the_unzipped_export_folder_dropped_in_the_browser_gives_the_same_labels(
    project_factory, member_of, tmp_path, django_capture_on_commit_callbacks
):
    source = source_project(project_factory, tmp_path)
    zip_path, _ = export(source, tmp_path, "imagefolder")
    with zipfile.ZipFile(zip_path) as zf:
        files = {f"my-export/{n}": zf.read(n) for n in zf.namelist() if not n.endswith("/")}
    target = project_factory()
    client = Client()
    client.force_login(member_of(target, Role.MANAGER))
    staged = client.post(
        reverse("labeling:import_upload", args=[target.slug]),
        {"files": [SimpleUploadedFile(n.rsplit("/", 1)[-1], d) for n, d in files.items()], "names": list(files)},
    ).json()
    assert staged["staged"] == 28  # 27 images and the manifest
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("labeling:import_start", args=[target.slug]),
            {"token": staged["token"], "labels_from_folders": "on", "dropped_folder": "my-export"},
        )
    job = Job.objects.get(project=target)
    assert (job.result["imported"], job.result["rejected"]) == (27, 0)
    assert labels_by_content(target) == labels_by_content(source)


def test_without_folder_labels_the_images_come_unlabeled_and_the_manifest_is_not_refused(project_factory, tmp_path):
    source = source_project(project_factory, tmp_path)
    zip_path, _ = export(source, tmp_path, "imagefolder")
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(folder)
    target = project_factory()
    call_command("import_images", target.slug, str(folder), verbosity=0)
    job = Job.objects.get(project=target)
    assert (job.result["imported"], job.result["rejected"], job.errors) == (27, 0, [])
    assert not ResolvedLabel.objects.filter(project=target).exists()


def test_a_manifest_that_is_not_a_labelloop_export_changes_nothing(project_factory, tmp_path):
    """Someone else's manifest.json: folders are classes as they are named, and the file is refused as usual."""
    folder = tmp_path / "data"
    (folder / "train" / "a__b").mkdir(parents=True)
    (folder / "train" / "a__b" / "1.png").write_bytes(png(1))
    (folder / "manifest.json").write_text(json.dumps({"format": "imagefolder", "classes": [{"folder": "a__b"}]}))
    target = project_factory()
    call_command("import_images", target.slug, str(folder), "--labels-from-folders", verbosity=0)
    assert list(labels_by_content(target).values()) == [["a__b"]]
    job = Job.objects.get(project=target)
    assert [e["name"] for e in job.errors] == ["manifest.json"]


def test_a_damaged_metadata_line_leaves_that_image_unlabeled_and_says_so(project_factory, tmp_path):
    source = source_project(project_factory, tmp_path)
    zip_path, _ = export(source, tmp_path, "hf")
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(zip_path) as zf, zipfile.ZipFile(damaged, "w") as out:
        for info in zf.infolist():
            data = zf.read(info)
            if info.filename == "train/metadata.jsonl":
                lines = data.decode().splitlines()
                lines[0] = '{"file_name": '
                data = "\n".join(lines).encode()
            out.writestr(info, data)
    target = project_factory()
    call_command("import_images", target.slug, str(damaged), "--labels-from-folders", verbosity=0)
    job = Job.objects.get(project=target)
    assert job.result["imported"] == 27
    assert job.result["label_errors"] == 1
    assert [e["name"] for e in job.errors] == ["train/metadata.jsonl line 1"]
    assert Item.objects.filter(project=target).count() - len(labels_by_content(target)) == 1
