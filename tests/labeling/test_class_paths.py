"""One class path: pages show "a / b / c", exports and imports use "a/b/c", and both name the same class."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from PIL import Image
from rest_framework.test import APIClient

from labeling.constants import MAX_CLASS_DEPTH
from labeling.models import Job, LabelClass, ResolvedLabel, Role
from labeling.selectors.classes import class_paths, class_tree
from labeling.selectors.exports import ExportFilters
from labeling.selectors.queue import label_classes_for_labeling
from labeling.services.exports import dataset_export_write, export_storage
from labeling.services.imports import import_job_create, import_run
from labeling.services.projects import label_class_create, label_classes_from_paths

pytestmark = pytest.mark.django_db

DISPLAY = "animal / mammal / feline / cat"
STORED = "animal/mammal/feline/cat"


@pytest.fixture
def taxonomy(project):
    """animal / mammal / feline / cat (4 levels) and a sibling branch animal / mammal / canine / dog."""
    animal = label_class_create(project=project, name="animal")
    mammal = label_class_create(project=project, name="mammal", parent=animal)
    feline = label_class_create(project=project, name="feline", parent=mammal)
    canine = label_class_create(project=project, name="canine", parent=mammal)
    cat = label_class_create(project=project, name="cat", parent=feline)
    dog = label_class_create(project=project, name="dog", parent=canine)
    return project, cat, dog


def _png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), (seed * 40 % 256, 90, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def _import_with_labels(project, where, rows: dict[str, str]) -> dict:
    folder = where / "imgs"
    folder.mkdir(parents=True)
    for name in rows:
        (folder / name).write_bytes(_png(len(name) * 7 + ord(name[0])))
    labels = where / "labels.csv"
    labels.write_text("filename,label\n" + "".join(f"{name},{path}\n" for name, path in rows.items()))
    job = import_job_create(
        project=project, sources=[{"type": "folder", "path": str(folder), "name": "imgs"}], csv_path=str(labels)
    )
    return import_run(job_id=job.pk)


def _exported_labels(project) -> tuple[dict, dict[str, str]]:
    result = dataset_export_write(project=project, fmt="jsonl", filters=ExportFilters())
    with export_storage().open(result["files"][0], "rb") as fh, zipfile.ZipFile(fh) as zf:
        records = [json.loads(line) for line in zf.read("labels.jsonl").decode().splitlines()]
    return result["manifest"], {r["original_name"]: r["label"] for r in records}


def test_pages_show_the_display_path_and_the_stored_path_is_the_same_names(taxonomy):
    project, cat, _ = taxonomy
    assert cat.path == DISPLAY
    menu = {option.id: option.path for option in label_classes_for_labeling(project=project)}
    assert menu[cat.pk] == DISPLAY
    assert class_paths(class_tree(project=project))[cat.pk] == STORED
    assert class_paths(class_tree(project=project), display=True)[cat.pk] == DISPLAY


def test_an_import_finds_the_existing_classes_by_path_in_either_spelling(taxonomy, tmp_path):
    # given a 4-level taxonomy made in the taxonomy editor
    project, cat, dog = taxonomy
    before = LabelClass.objects.filter(project=project).count()
    # when a label CSV names its leaves by path, stored and display spelling
    result = _import_with_labels(project, tmp_path, {"a.png": STORED, "b.png": "animal / mammal / canine / dog"})
    # then both items get the existing leaves and no class is created
    assert result["labeled"] == 2
    assert LabelClass.objects.filter(project=project).count() == before
    labels = {r.item.original_name: r.classes.get() for r in ResolvedLabel.objects.select_related("item")}
    assert labels == {"a.png": cat, "b.png": dog}


def test_the_export_names_labels_by_the_path_an_import_reads_back(taxonomy, project_factory, tmp_path):
    # given items labeled with the 4-level leaves
    project, cat, dog = taxonomy
    _import_with_labels(project, tmp_path / "first", {"a.png": STORED, "b.png": "animal/mammal/canine/dog"})
    # when the project is exported
    manifest, labels = _exported_labels(project)
    # then labels and manifest use the stored path
    assert labels == {"a.png": STORED, "b.png": "animal/mammal/canine/dog"}
    assert {c["id"]: c["path"] for c in manifest["classes"]} == {cat.pk: STORED, dog.pk: "animal/mammal/canine/dog"}
    # and an import labeled with the export's names finds the same classes: nothing new is created
    result = _import_with_labels(project, tmp_path / "second", {"c.png": labels["a.png"], "d.png": labels["b.png"]})
    assert result["labeled"] == 2
    assert LabelClass.objects.filter(project=project).count() == 6
    assert ResolvedLabel.objects.get(item__original_name="c.png").classes.get() == cat


def test_an_export_filter_typed_as_the_page_shows_it_picks_the_class(taxonomy, tmp_path):
    project, _, _ = taxonomy
    _import_with_labels(project, tmp_path, {"a.png": STORED, "b.png": "animal/mammal/canine/dog"})
    result = dataset_export_write(project=project, fmt="jsonl", filters=ExportFilters(classes=(DISPLAY,)))
    assert result["item_count"] == 1
    assert [c["path"] for c in result["manifest"]["classes"]] == [STORED]


def test_a_class_name_holding_a_slash_shows_as_it_was_typed(taxonomy, label_class_factory):
    # A class made before new names refused a "/" (the row as the database holds it)
    project, cat, _ = taxonomy
    odd = label_class_factory(project=project, name="n/a", parent=cat)
    assert odd.path == f"{DISPLAY} / n/a"
    assert class_paths(class_tree(project=project))[odd.pk] == f"{STORED}/n/a"


def test_a_class_path_deeper_than_the_limit_is_refused_and_creates_nothing(taxonomy, tmp_path, member_of):
    """A hostile labels CSV asked for 1,500 levels in one row: the settings page then never answered."""
    project = taxonomy[0]
    before = LabelClass.objects.filter(project=project).count()
    deepest = "/".join(f"level{i}" for i in range(MAX_CLASS_DEPTH))
    result = _import_with_labels(project, tmp_path, {"a.png": deepest, "b.png": "/".join(f"x{i}" for i in range(1500))})
    assert (result["labeled"], result["label_errors"]) == (1, 1)
    job = Job.objects.get(project=project)
    assert "1500 levels of classes; at most 12" in job.errors[0]["reason"]
    assert LabelClass.objects.filter(project=project).count() == before + MAX_CLASS_DEPTH
    assert not LabelClass.objects.filter(project=project, name="x0").exists()

    # The taxonomy editor and the API hold the same line below the deepest class.
    leaf = LabelClass.objects.get(project=project, name=f"level{MAX_CLASS_DEPTH - 1}")
    with pytest.raises(ValidationError, match="at most 12 levels"):
        label_class_create(project=project, name="one more", parent=leaf)
    api = APIClient()
    api.force_authenticate(member_of(project, Role.MANAGER))
    answer = api.post(f"/api/projects/{project.slug}/classes/create/", {"name": "one more", "parent": leaf.pk})
    assert answer.status_code == 400
    assert "at most 12 levels" in str(answer.json())
    with pytest.raises(ValidationError, match=r"at most 12 levels \(13 given\)"):
        label_classes_from_paths(project=project, paths=["ok", deepest + "/one more"])
    assert not LabelClass.objects.filter(project=project, name__in=["ok", "one more"]).exists()


def test_pages_of_a_deep_wide_taxonomy_read_the_tree_once(
    project, member_of, item_factory, django_assert_max_num_queries
):
    """Each class's path walked its parents a query per level: a 5,000-class, 8-level taxonomy made the settings
    page 9,000 queries and 37 s, the overview 7 s and the quality page 13 s."""
    paths = [f"a{i % 2}/b{i % 3}/c{i % 5}/d{i % 7}/e/f/g/h/i/j/k/leaf{i}" for i in range(200)]
    label_classes_from_paths(project=project, paths=paths)
    assert LabelClass.objects.filter(project=project).count() > 1000
    item_factory(project=project)
    client = Client()
    client.force_login(member_of(project, Role.MANAGER))
    # (the quality page names the first 30 classes without ratings, then "…"; the settings page shows 200 classes a
    # page above 500, and finds one by name)
    for page, leaf in (("settings/?classes_find=leaf139", 139), ("", 139), ("quality/", 0)):
        with django_assert_max_num_queries(30):
            answer = client.get(f"/p/{project.slug}/{page}")
        assert answer.status_code == 200
        parts = f"a{leaf % 2}/b{leaf % 3}/c{leaf % 5}/d{leaf % 7}/e/f/g/h/i/j/k/leaf{leaf}".split("/")
        assert " / ".join(parts) in answer.content.decode()


def test_a_class_whose_path_another_class_has_is_refused_both_ways(taxonomy, member_of, label_class_factory):
    # Given a root class named "a/b", made before new names refused a "/"
    project = taxonomy[0]
    label_class_factory(project=project, name="a/b")
    a = label_class_create(project=project, name="a")

    # When a manager adds "b" under "a" (the API, as the page does), the stored path would be "a/b" too: refused
    api = APIClient()
    api.force_authenticate(member_of(project, Role.MANAGER))
    answer = api.post(f"/api/projects/{project.slug}/classes/create/", {"name": "b", "parent": a.pk}, format="json")
    assert answer.status_code == 400
    assert "would have the path 'a/b', as an existing class does" in str(answer.json())
    assert not LabelClass.objects.filter(project=project, name="b").exists()

    # And the other way round: with "c" under "a", a new root class "a/c" is refused, as any name with a "/" is now
    label_class_create(project=project, name="c", parent=a)
    for name in ("a/c", "a/d"):
        with pytest.raises(ValidationError, match="A class name cannot contain '/'"):
            label_class_create(project=project, name=name)
    assert label_class_create(project=project, name="d", parent=a).path == "a / d"
