"""Renaming a class: a typo in a class name is fixed in place, its labels kept, under the rules a new class meets."""

from __future__ import annotations

import json
import zipfile

import pytest
from django.test import Client
from rest_framework.test import APIClient

from labeling.models import LabelClass, Role
from labeling.selectors.exports import ExportFilters
from labeling.services.annotations import annotation_create
from labeling.services.exports import dataset_export_write, export_storage
from labeling.services.projects import label_class_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def zoo(project, item_factory, member_of):
    """animals / mamals (a typo) / dog, with one image labeled dog by an annotator."""
    animals = label_class_create(project=project, name="animals")
    mamals = label_class_create(project=project, name="mamals", parent=animals)
    dog = label_class_create(project=project, name="dog", parent=mamals)
    label_class_create(project=project, name="birds", parent=animals)
    item = item_factory(project=project, original_name="rex.png")
    annotation_create(item=item, user=member_of(project, Role.ANNOTATOR), class_ids=[dog.pk])
    manager = Client()
    manager.force_login(member_of(project, Role.MANAGER))
    return project, mamals, dog, manager


def _exported_labels(project) -> dict[str, str]:
    result = dataset_export_write(project=project, fmt="jsonl", filters=ExportFilters())
    with export_storage().open(result["files"][0], "rb") as fh, zipfile.ZipFile(fh) as zf:
        return {r["original_name"]: r["label"] for r in map(json.loads, zf.read("labels.jsonl").decode().splitlines())}


def test_a_manager_renames_a_class_on_the_settings_page_and_its_labels_follow(zoo):
    project, mamals, dog, manager = zoo
    assert _exported_labels(project) == {"rex.png": "animals/mamals/dog"}

    answer = manager.post(f"/p/{project.slug}/classes/{mamals.pk}/rename/", {"name": " mammals "}, follow=True)

    page = answer.content.decode()
    assert "“mamals” is now “mammals”." in page
    assert "animals / mammals / dog" in page
    assert page.count("mamals") == 1  # in the message only
    # The label is the same row on the same class; the export names it by the new path.
    assert _exported_labels(project) == {"rex.png": "animals/mammals/dog"}
    assert LabelClass.objects.get(pk=dog.pk).path == "animals / mammals / dog"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("birds", "A class named 'birds' already exists here."),
        ("", "Empty class name."),
        ("x" * 201, "is over 200 characters"),
        ("bad\x07name", "contains a control character"),
    ],
)
def test_a_rename_the_rules_refuse_says_why_and_changes_nothing(zoo, name, reason):
    project, mamals, _, manager = zoo
    answer = manager.post(f"/p/{project.slug}/classes/{mamals.pk}/rename/", {"name": name}, follow=True)
    assert "“mamals” was not renamed" in answer.content.decode()
    assert reason.replace("'", "&#x27;") in answer.content.decode()
    assert LabelClass.objects.get(pk=mamals.pk).name == "mamals"


def test_a_rename_that_would_give_a_subclass_another_class_path_is_refused(zoo, label_class_factory):
    # Given a root class named "animals/mammals/dog" (made before new names refused a "/") beside animals / mamals / dog
    project, mamals, _, manager = zoo
    label_class_factory(project=project, name="animals/mammals/dog")

    # Renamed "mammals", the class's own path is free, but its dog would be "animals/mammals/dog" as the root class is
    answer = manager.post(f"/p/{project.slug}/classes/{mamals.pk}/rename/", {"name": "mammals"}, follow=True)

    assert "would share its path with another class" in answer.content.decode()
    assert LabelClass.objects.get(pk=mamals.pk).name == "mamals"
    assert manager.post(f"/p/{project.slug}/classes/{mamals.pk}/rename/", {"name": "mammalia"}).status_code == 302
    assert LabelClass.objects.get(pk=mamals.pk).name == "mammalia"


def test_only_a_manager_of_the_project_renames(zoo, project_factory, member_of):
    project, mamals, _, _ = zoo
    annotator = Client()
    annotator.force_login(member_of(project, Role.ANNOTATOR))
    assert annotator.post(f"/p/{project.slug}/classes/{mamals.pk}/rename/", {"name": "x"}).status_code == 403

    # A manager of another project: its own URL with this project's class id is a 404
    other = project_factory()
    stranger = Client()
    stranger.force_login(member_of(other, Role.MANAGER))
    assert stranger.post(f"/p/{other.slug}/classes/{mamals.pk}/rename/", {"name": "x"}).status_code == 404
    assert LabelClass.objects.get(pk=mamals.pk).name == "mamals"


def test_the_api_renames_and_archives_a_class(zoo, project_factory, member_of):
    project, mamals, dog, _ = zoo
    api = APIClient()
    api.force_authenticate(member_of(project, Role.MANAGER))
    url = f"/api/projects/{project.slug}/classes/{mamals.pk}/"

    answer = api.patch(url, {"name": "mammals"}, format="json")
    assert answer.status_code == 200
    assert answer.json()["path"] == "animals / mammals"
    paths = {c["id"]: c["path"] for c in api.get(f"/api/projects/{project.slug}/classes/").json()}
    assert paths[dog.pk] == "animals / mammals / dog"

    # A refused name changes nothing, archived in the same request included
    answer = api.patch(url, {"name": "birds", "archived": True}, format="json")
    assert answer.status_code == 400
    assert "already exists here" in str(answer.json()["name"])
    assert not LabelClass.objects.get(pk=mamals.pk).archived

    assert api.patch(url, {"archived": True}, format="json").json()["archived"] is True
    assert api.patch(url, {}, format="json").status_code == 400
    other = project_factory()
    assert api.patch(f"/api/projects/{other.slug}/classes/{mamals.pk}/", {"name": "x"}, format="json").status_code in (
        403,
        404,
    )
    assert api.patch(f"/api/projects/{project.slug}/classes/{2**40}/", {"name": "x"}, format="json").status_code == 404


@pytest.mark.parametrize("name", ["a/b", "mammals/", " /mammals", "mammals / cats"])
def test_a_rename_with_a_slash_is_refused_on_the_page_and_by_the_api_and_changes_nothing(zoo, member_of, name):
    # Reported: PATCH {"name": "a/b"} answered 200 and made a class that exports and imports read as b under a.
    project, mamals, _, manager = zoo
    before = sorted(LabelClass.objects.filter(project=project).values_list("pk", "name", "parent_id"))
    api = APIClient()
    api.force_authenticate(member_of(project, Role.MANAGER))

    answer = api.patch(f"/api/projects/{project.slug}/classes/{mamals.pk}/", {"name": name}, format="json")
    page = manager.post(f"/p/{project.slug}/classes/{mamals.pk}/rename/", {"name": name}, follow=True)

    assert answer.status_code == 400
    message = " ".join(answer.json()["name"])
    assert "A class name cannot contain '/'" in message
    assert "it separates the levels of a path" in message
    assert "To move a class under another, add a class of that name under the new parent" in message
    text = page.content.decode()
    assert "“mamals” was not renamed: A class name cannot contain &#x27;/&#x27;" in text
    assert sorted(LabelClass.objects.filter(project=project).values_list("pk", "name", "parent_id")) == before
    assert _exported_labels(project) == {"rex.png": "animals/mamals/dog"}
