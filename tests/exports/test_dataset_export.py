"""Dataset exports: formats, splits, stable names, filters, manifest and dataset hash, bad input."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from labeling.models import Job, JobKind, JobStatus, Review, Role, TaskType, Verdict
from labeling.selectors.export_names import export_file_name, sanitize_name
from labeling.selectors.exports import ExportFilters, export_plan
from labeling.services import resolution
from labeling.services.annotations import annotation_create
from tests.exports.conftest import run_export
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_imagefolder_zip_loads_in_torchvision_with_the_manifest_counts_and_indices(labeled_project, tmp_path):
    project, classes, items, _ = labeled_project
    out, manifest = run_export(project, tmp_path, "imagefolder")
    target = tmp_path / "unzipped"
    with zipfile.ZipFile(out) as zf:
        zf.extractall(target)
    code = (
        "import json, sys\n"
        "from torchvision.datasets import ImageFolder\n"
        "root = sys.argv[1]\n"
        "out = {}\n"
        "for split in ('train', 'val', 'test'):\n"
        "    ds = ImageFolder(f'{root}/{split}', allow_empty=True)\n"
        "    counts = {}\n"
        "    for _, target in ds.samples:\n"
        "        counts[ds.classes[target]] = counts.get(ds.classes[target], 0) + 1\n"
        "    size = list(ds[0][0].size) if len(ds) else None\n"  # val may be empty: the split is by image hash
        "    out[split] = {'n': len(ds), 'class_to_idx': ds.class_to_idx, 'counts': counts, 'size': size}\n"
        "print(json.dumps(out))\n"
    )
    run = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    loaded = json.loads(run.stdout)
    assert manifest["counts"]["items"] == 24
    assert manifest["counts"]["per_split"]["test"] == 6  # the holdout items
    assert sum(loaded[s]["n"] for s in loaded) == 24
    folder_of = {c["path"]: c["folder"] for c in manifest["classes"]}
    for split in ("train", "val", "test"):
        assert loaded[split]["n"] == manifest["counts"]["per_split"][split]
        assert loaded[split]["class_to_idx"] == manifest["class_map"]
        expected = {folder_of[p]: n for p, n in manifest["counts"]["per_split_class"][split].items()}
        assert loaded[split]["counts"] == expected
        assert loaded[split]["size"] == ([32, 32] if loaded[split]["n"] else None)
    assert loaded["train"]["n"] > 0
    assert manifest["class_map"] == {"bird": 0, "cat": 1, "dog": 2}
    # Every holdout item is in test, with its class folder.
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
    for item in items:
        if item.split == "holdout":
            name = export_file_name(original_name=item.original_name, storage_name=item.file.name)
            assert f"test/{classes[items.index(item) % 3].name}/{name}" in names


def test_a_split_without_a_class_keeps_its_empty_folder_and_the_manifest_says_how_to_load_it(labeled_project, tmp_path):
    # Given a project whose holdout has no bird
    project, classes, items, _ = labeled_project
    birds = [item for k, item in enumerate(items) if item.split == "holdout" and classes[k % 3].name == "bird"]
    assert birds
    for item in birds:
        item.delete()

    out, manifest = run_export(project, tmp_path, "imagefolder")

    # Then test/bird is there and empty, so the indices agree with train's, and the manifest names it and the call
    with zipfile.ZipFile(out) as zf:
        assert "test/bird/" in zf.namelist()
        assert not [n for n in zf.namelist() if n.startswith("test/bird/") and n != "test/bird/"]
    assert "test/bird" in manifest["imagefolder"]["empty_folders"]
    assert "train/bird" not in manifest["imagefolder"]["empty_folders"]
    assert "allow_empty=True" in manifest["imagefolder"]["load"]


def test_file_names_are_stable_and_never_collide(labeled_project, tmp_path):
    project, _, items, _ = labeled_project
    out1, _ = run_export(project, tmp_path)
    out2, _ = run_export(project, tmp_path)
    with zipfile.ZipFile(out1) as a, zipfile.ZipFile(out2) as b:
        files1 = sorted(n for n in a.namelist() if not n.endswith("/") and n != "manifest.json")
        files2 = sorted(n for n in b.namelist() if not n.endswith("/") and n != "manifest.json")
    assert files1 == files2
    basenames = [f.rsplit("/", 1)[1] for f in files1]
    assert len(set(basenames)) == len(basenames) == 24
    # The two "cat.png" items are both there, told apart by their contents; a name no other image has is kept.
    assert {f"cat_{items[0].sha256[:8]}.png", f"cat_{items[3].sha256[:8]}.png"} <= set(basenames)
    assert "img_002.png" in basenames


def test_unsafe_and_case_colliding_class_names_get_unique_safe_folders(
    project_factory, item_factory, label_class_factory, member_of, tmp_path
):
    project = project_factory()
    names = ["Dog", "dog", "../etc", "a b?c"]
    classes = [label_class_factory(project=project, name=n) for n in names]
    user = member_of(project, Role.ANNOTATOR)
    for i in range(8):
        annotation_create(item=item_factory(project=project), user=user, class_ids=[classes[i % 4].pk])
    out, manifest = run_export(project, tmp_path)
    folders = [c["folder"] for c in manifest["classes"]]
    assert len({f.lower() for f in folders}) == 4
    assert all("/" not in f and not f.startswith(".") for f in folders)
    with zipfile.ZipFile(out) as zf:
        assert not [n for n in zf.namelist() if ".." in n or n.startswith("/")]
    assert sanitize_name("../../x", fallback="c") == "x"
    assert export_file_name(original_name="dir\\evil/../x y.JPG", storage_name="a/b.jpg") == "x_y.jpg"


def test_same_labels_give_the_same_hash_in_every_format_and_a_change_changes_it(labeled_project, tmp_path):
    project, classes, items, _ = labeled_project
    hashes = {run_export(project, tmp_path, fmt)[1]["dataset_hash"] for fmt in ("imagefolder", "csv", "jsonl", "hf")}
    assert len(hashes) == 1
    before = hashes.pop()
    assert before == run_export(project, tmp_path, "jsonl")[1]["dataset_hash"]
    # A reviewer corrects one label: the hash moves.
    annotation = items[0].annotations.first()
    review = Review.objects.create(annotation=annotation, reviewer=UserFactory(), verdict=Verdict.CORRECT)
    review.corrected_classes.set([classes[1]])
    resolution.resolved_label_recompute(item=items[0])
    after = run_export(project, tmp_path, "jsonl")[1]["dataset_hash"]
    assert after != before


def test_manifest_names_code_version_filters_and_class_map(labeled_project, tmp_path):
    project, *_ = labeled_project
    _, manifest = run_export(project, tmp_path, "csv", "--classes", "cat,dog", "--min-annotators", "1")
    assert manifest["filters"] == {
        "only_reviewed": False,
        "only_agreed": False,
        "min_annotators": 1,
        "classes": ["cat", "dog"],
        "val_fraction": 0.1,
    }
    assert manifest["code_version"]
    assert manifest["code_version"] != "unknown"
    assert manifest["created_at"]
    assert manifest["class_map"] == {"cat": 0, "dog": 1}
    assert manifest["counts"]["per_class"] == {"cat": 8, "dog": 8}


def test_csv_and_jsonl_rows_carry_labels_splits_and_file_names(labeled_project, tmp_path):
    project, _classes, items, member = labeled_project
    out, manifest = run_export(project, tmp_path, "csv")
    with zipfile.ZipFile(out) as zf:
        rows = list(csv.DictReader(io.StringIO(zf.read("labels.csv").decode())))
    assert len(rows) == 24
    by_id = {int(r["item_id"]): r for r in rows}
    assert by_id[items[1].pk]["split"] == "test"
    assert by_id[items[4].pk]["label"] == "dog"
    assert int(by_id[items[4].pk]["label_index"]) == manifest["class_map"]["dog"]
    out, _ = run_export(project, tmp_path, "jsonl")
    with zipfile.ZipFile(out) as zf:
        lines = [json.loads(line) for line in zf.read("labels.jsonl").decode().splitlines()]
    assert [r["item_id"] for r in lines] == sorted(i.pk for i in items)
    assert {r["sha256"] for r in lines} == {i.sha256 for i in items}
    # Each row links its image by its content, so a browser or script may keep it (a bare item-id URL names
    # another image once a database is created afresh)
    for row in (lines[0], next(r for r in rows if int(r["item_id"]) == lines[0]["item_id"])):
        assert (
            row["media_url"] == f"/p/{project.slug}/media/{lines[0]['item_id']}/original/?v={lines[0]['sha256'][:16]}"
        )
    client = Client()
    client.force_login(member)
    response = client.get(lines[0]["media_url"])
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, max-age=86400, immutable"


def test_hf_layout_has_metadata_per_split_matching_the_images(labeled_project, tmp_path):
    project, *_ = labeled_project
    out, manifest = run_export(project, tmp_path, "hf")
    target = tmp_path / "hf"
    with zipfile.ZipFile(out) as zf:
        zf.extractall(target)
    total = 0
    for split, key in (("train", "train"), ("validation", "val"), ("test", "test")):
        meta = target / split / "metadata.jsonl"
        if manifest["counts"]["per_split"][key] == 0:
            continue
        rows = [json.loads(line) for line in meta.read_text().splitlines()]
        assert len(rows) == manifest["counts"]["per_split"][key]
        for row in rows:
            assert (target / split / row["file_name"]).is_file()
            assert row["label"] in {"cat", "dog", "bird"}
        total += len(rows)
    assert total == 24
    code = (
        "import sys\n"
        "try:\n    import datasets\nexcept ImportError:\n    print('SKIP'); sys.exit(0)\n"
        "ds = datasets.load_dataset('imagefolder', data_dir=sys.argv[1])\n"
        "print(sum(len(ds[s]) for s in ds))\n"
    )
    run = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() in ("SKIP", "24")


def test_filters_only_agreed_min_annotators_classes_only_reviewed(
    project_factory, item_factory, label_class_factory, member_of
):
    project = project_factory(annotations_per_item=3)
    cat, dog = label_class_factory(project=project, name="cat"), label_class_factory(project=project, name="dog")
    users = [member_of(project, Role.ANNOTATOR) for _ in range(3)]
    agreed, majority, dogs = (item_factory(project=project) for _ in range(3))
    for user, (a, m, d) in zip(users, [(cat, cat, dog), (cat, cat, dog), (cat, dog, dog)], strict=True):
        annotation_create(item=agreed, user=user, class_ids=[a.pk])
        annotation_create(item=majority, user=user, class_ids=[m.pk])
        annotation_create(item=dogs, user=user, class_ids=[d.pk])

    def ids(**kw):
        return {r.item_id for r in export_plan(project=project, filters=ExportFilters(**kw)).rows}

    assert ids() == {agreed.pk, majority.pk, dogs.pk}
    assert ids(only_agreed=True) == {agreed.pk, dogs.pk}
    assert ids(min_annotators=3) == {agreed.pk, majority.pk, dogs.pk}
    assert ids(min_annotators=4) == set()
    assert ids(classes=("dog",)) == {dogs.pk}
    assert ids(only_reviewed=True) == set()
    Review.objects.create(annotation=agreed.annotations.first(), reviewer=users[0], verdict=Verdict.ACCEPT)
    resolution.resolved_label_recompute(item=agreed)
    assert ids(only_reviewed=True) == {agreed.pk}


def test_bad_input_is_refused_clearly_and_creates_nothing(labeled_project, project_factory, tmp_path):
    project, *_ = labeled_project
    before = Job.objects.count()
    with pytest.raises(CommandError, match="Unknown class"):
        call_command("export_dataset", project.slug, "--classes", "cat,unicorn", "--out", str(tmp_path), verbosity=0)
    with pytest.raises(CommandError, match="No project"):
        call_command("export_dataset", "nope", verbosity=0)
    multi = project_factory(task_type=TaskType.MULTI)
    with pytest.raises(CommandError, match="multi-label"):
        call_command("export_dataset", multi.slug, "--format", "imagefolder", verbosity=0)
    assert Job.objects.count() == before
    assert not list(tmp_path.iterdir())


def test_a_missing_original_is_reported_and_the_rest_is_exported(labeled_project, tmp_path):
    project, _, items, _ = labeled_project
    items[5].file.storage.delete(items[5].file.name)
    _out, manifest = run_export(project, tmp_path)
    assert manifest["counts"]["items"] == 23
    assert manifest["errors"][0]["name"] == items[5].original_name
    job = Job.objects.filter(kind=JobKind.EXPORT_DATASET).latest("created_at")
    assert job.status == JobStatus.SUCCEEDED
    assert job.errors
    assert job.result["item_count"] == 23


def test_multi_label_export_lists_every_label(project_factory, item_factory, label_class_factory, member_of, tmp_path):
    project = project_factory(task_type=TaskType.MULTI)
    sky, sea = label_class_factory(project=project, name="sky"), label_class_factory(project=project, name="sea")
    user = member_of(project, Role.ANNOTATOR)
    both = item_factory(project=project)
    annotation_create(item=both, user=user, class_ids=[sky.pk, sea.pk])
    _, manifest = run_export(project, tmp_path, "hf")
    out, _ = run_export(project, tmp_path, "jsonl")
    with zipfile.ZipFile(out) as zf:
        row = json.loads(zf.read("labels.jsonl").decode().splitlines()[0])
    assert row["labels"] == ["sea", "sky"]
    assert manifest["counts"]["per_class"] == {"sea": 1, "sky": 1}


def test_the_command_line_bar_is_redrawn_at_most_ten_times_a_second_not_once_per_image(labeled_project, capsys):
    """In a log file (a cron job, a CI step) every redraw is kept: one per image made 10,000 for 10,000 images."""
    import time

    project, *_ = labeled_project
    started = time.monotonic()
    call_command("export_dataset", project.slug, "--format", "csv", verbosity=1)
    elapsed = time.monotonic() - started
    redraws = capsys.readouterr().err.count("\r")
    assert 0 < redraws <= 3 + 10 * elapsed, (redraws, elapsed)  # 24 images: 27 redraws before
