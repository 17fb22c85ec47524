"""POST /api/projects/: a script creates a project with its classes and settings, checked as the pages check them."""

from __future__ import annotations

import pytest
from rest_framework import serializers
from rest_framework.test import APIClient

from labeling.api.projects import ProjectCreateInputSerializer
from labeling.models import LabelClass, Membership, Project, Role
from labeling.selectors.classes import class_paths, class_tree
from tests.factories import taxonomy_paths, token_client
from tests.schema_conformance import assert_matches_schema

pytestmark = pytest.mark.django_db

URL = "/api/projects/"


@pytest.fixture
def creator(user_factory, allow_project_creation):
    return allow_project_creation(user_factory(username="creator"))


def test_a_project_creator_makes_a_flat_project_with_150_classes_and_its_settings(creator):
    # Given a project creator's token and 150 class names
    client = token_client(creator)
    names = [f"class {n:03d}" for n in range(150)]

    # When they create a project with those classes and some settings
    answer = client.post(
        URL,
        {"name": "Birds", "classes": names, "instructions": "Look at the beak.", "annotations_per_item": 3,
         "retrain_every": 50, "min_labels_to_train": 40, "image_size": 192, "al_strategy": "entropy",
         "review_sample_rate": 0.2, "flip_average": False, "training_mode": "head"},
        format="json",
    )  # fmt: skip

    # Then it answers 201 with the project as GET shows it, the creator its manager
    assert answer.status_code == 201, answer.content
    assert_matches_schema(answer, "/api/projects/", "POST")
    body = answer.json()
    assert body["slug"] == "birds"
    assert answer["Location"] == "/api/projects/birds/"
    assert body == client.get(f"/api/projects/{body['slug']}/").json()
    assert body["role"] == Role.MANAGER
    assert "manage" in body["capabilities"]
    project = Project.objects.get(slug="birds")
    assert (project.annotations_per_item, project.retrain_every, project.min_labels_to_train) == (3, 50, 40)
    assert (project.image_size, project.al_strategy, project.review_sample_rate) == (192, "entropy", 0.2)
    assert (project.flip_average, project.training_mode, project.instructions) == (False, "head", "Look at the beak.")
    # settings not given keep the defaults of a project made on the page
    assert project.holdout_fraction == Project._meta.get_field("holdout_fraction").default
    assert project.created_by == creator
    assert Membership.objects.get(project=project).user == creator
    # every class, in order, as the class list shows
    classes = client.get(f"/api/projects/{project.slug}/classes/").json()
    assert [c["name"] for c in classes] == names


def test_a_multi_label_taxonomy_with_nested_paths(creator):
    # Given a 150-class, four-level taxonomy given as leaf paths, in both spellings
    paths = taxonomy_paths()
    given = [p.replace("/", " / ") if i % 2 else p for i, p in enumerate(paths)]

    # When a multi-label project is created with it and an explicit slug
    answer = token_client(creator).post(
        URL, {"name": "Things", "slug": "things-v2", "task_type": "multi", "classes": given}, format="json"
    )

    # Then every leaf and every parent exists once, in the hierarchy the paths name
    assert answer.status_code == 201, answer.content
    assert answer.json()["slug"] == "things-v2"
    assert answer.json()["task_type"] == "multi"
    project = Project.objects.get(slug="things-v2")
    stored = set(class_paths(class_tree(project=project)).values())
    assert set(paths) <= stored
    assert len(stored) == 150
    assert LabelClass.objects.get(project=project, name="one", parent__name="red", parent__parent__name="wild",
                                  parent__parent__parent__name="animals")  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"annotations_per_item": 21}, "annotations_per_item", "from 1 to 20"),
        ({"annotations_per_item": 0}, "annotations_per_item", "from 1 to 20"),
        ({"image_size": 31}, "image_size", "from 32 to 512 pixels"),
        ({"image_size": 4096}, "image_size", "from 32 to 512 pixels"),
        ({"min_labels_to_train": 1}, "min_labels_to_train", "at least two labeled images"),
        ({"retrain_every": 0}, "retrain_every", "at least one new label"),
        ({"holdout_fraction": 1.0}, "holdout_fraction", ""),
        ({"review_sample_rate": -0.1}, "review_sample_rate", ""),
        ({"task_type": "taxonomy"}, "task_type", ""),
        ({"al_strategy": "best"}, "al_strategy", ""),
        ({"backbone": "resnet50", "backbone_weights": "bundled"}, "backbone", ""),
        ({"backbone_weights": "/etc/passwd"}, "backbone_weights", "other files cannot be used"),
        ({"name": "evil\u202egnp.exe"}, "name", "direction-control"),
        ({"name": ""}, "name", ""),
        ({"classes": ["cat", "a//b", "dog", "x\ty"]}, "classes", "Class 2 ('a//b')"),
        ({"classes": ["/".join(["deep"] * 13)]}, "classes", "at most 12"),
        ({"slug": "no spaces here"}, "slug", ""),
    ],
)
def test_bad_input_is_refused_by_field_and_creates_nothing(creator, body, field, says):
    answer = token_client(creator).post(URL, {"name": "Refused", **body}, format="json")
    assert answer.status_code == 400, answer.content
    errors = answer.json()
    assert field in errors, errors
    assert says in " ".join(errors[field])
    assert Project.objects.count() == 0
    assert LabelClass.objects.count() == 0


def test_every_bad_class_is_named_at_once(creator):
    answer = token_client(creator).post(URL, {"name": "P", "classes": ["ok", "", "a//b", "c\x01"]}, format="json")
    assert answer.status_code == 400
    assert [m.split(" (")[0] for m in answer.json()["classes"]] == ["Class 2", "Class 3", "Class 4"]
    assert Project.objects.count() == 0


def test_a_taken_slug_is_refused_instead_of_a_different_address(creator, project_factory):
    project_factory(slug="taken")
    answer = token_client(creator).post(URL, {"name": "Mine", "slug": "taken"}, format="json")
    assert answer.status_code == 400
    assert "taken" in answer.json()["slug"][0]
    assert Project.objects.count() == 1
    # without a slug, one is made from the name, free
    made = token_client(creator).post(URL, {"name": "taken"}, format="json")
    assert made.status_code == 201
    assert made.json()["slug"] == "taken-2"


def test_two_spellings_of_one_path_are_one_class(creator):
    answer = token_client(creator).post(URL, {"name": "Dups", "classes": ["a/b", "a / b", "a"]}, format="json")
    assert answer.status_code == 201
    project = Project.objects.get(slug="dups")
    assert sorted(class_paths(class_tree(project=project)).values()) == ["a", "a/b"]


def test_only_staff_and_project_creators_may_create(user_factory, project_factory, member_of):
    # Given a manager of another project (not a creator), and a staff user
    manager = member_of(project_factory(), Role.MANAGER)
    staff = user_factory(username="admin", is_staff=True)

    # Then the manager is refused with the way to get the permission, and nothing is made
    refused = token_client(manager).post(URL, {"name": "Nope"}, format="json")
    assert refused.status_code == 403
    assert "project creators" in refused.json()["detail"]
    assert APIClient().post(URL, {"name": "Nope"}, format="json").status_code == 401
    assert not Project.objects.filter(name="Nope").exists()

    # and staff may
    assert token_client(staff).post(URL, {"name": "Yes"}, format="json").status_code == 201


def test_the_schema_documents_the_settings_ranges():
    from config.api_urls import _schema

    component = _schema()["components"]["schemas"]["ProjectCreateInput"]["properties"]
    assert (component["image_size"]["minimum"], component["image_size"]["maximum"]) == (32, 512)
    assert (component["annotations_per_item"]["minimum"], component["annotations_per_item"]["maximum"]) == (1, 20)
    assert component["classes"]["type"] == "array"


def test_settings_left_out_keep_the_pages_defaults_in_form_encoded_and_json_bodies(creator):
    # Given the on/off settings the API takes (a form-encoded body that leaves one out is not an unticked box)
    fields = ProjectCreateInputSerializer().fields
    booleans = [name for name, field in fields.items() if isinstance(field, serializers.BooleanField)]
    assert {"flip_average", "preselect_suggestion"} <= set(booleans)
    client = token_client(creator)

    # When a project is made with a name and a class only, once form-encoded and once as JSON
    form = client.post(URL, {"name": "Form", "classes": "a"})
    json_body = client.post(URL, {"name": "Json", "classes": ["a"]}, format="json")

    # Then both have every such setting at a page-made project's default, and answer the same
    assert form.status_code == json_body.status_code == 201, form.content
    for slug in ("form", "json"):
        project = Project.objects.get(slug=slug)
        for name in booleans:
            assert getattr(project, name) == Project._meta.get_field(name).default, (slug, name)
    assert form.json()["flip_average"] is json_body.json()["flip_average"] is True
    # and a form that sends the setting still sets it
    off = client.post(URL, {"name": "Off", "flip_average": "false"})
    assert off.status_code == 201
    assert Project.objects.get(slug="off").flip_average is False


@pytest.mark.parametrize("fmt", ["json", "multipart"])
def test_unknown_fields_are_refused_by_name_and_create_nothing(creator, fmt):
    # When a script sends a setting the API does not have, and an owner it cannot set here
    answer = token_client(creator).post(
        URL, {"name": "x", "classes": ["a"], "frobnicate": True, "owner": "annotator"}, format=fmt
    )

    # Then it is refused, naming both and listing the fields there are; nothing is created
    assert answer.status_code == 400, answer.content
    message = " ".join(answer.json()["non_field_errors"])
    assert "Unknown field(s): frobnicate, owner. Known: name, slug, task_type" in message
    assert "flip_average" in message
    assert Project.objects.count() == 0


def test_an_unknown_field_is_named_beside_the_other_refusals(creator):
    answer = token_client(creator).post(URL, {"name": "x", "image_size": 1, "flip_averages": False}, format="json")
    assert answer.status_code == 400
    assert "image_size" in answer.json()
    assert "flip_averages" in answer.json()["non_field_errors"][0]
    assert Project.objects.count() == 0
