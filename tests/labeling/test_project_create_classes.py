"""The class list of the new-project page: a list with a bad line comes back with every bad line named, and no
project is made; the same rules hold for a class added later (page and API) as for an imported label's class."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labeling.models import LabelClass, Project
from labeling.selectors.classes import class_paths, class_tree
from tests.factories import api_client, page_client
from tests.labeling.test_project_permissions import NEW_PROJECT, error_of

pytestmark = pytest.mark.django_db

DEEP = "/".join("abcdefghijklm")  # 13 levels: one more than a taxonomy may have


@pytest.fixture
def creator(user_factory, allow_project_creation):
    return allow_project_creation(user_factory())


def test_a_class_list_with_bad_lines_names_each_and_creates_nothing(creator):
    classes = "\n".join(["vehicles/land/car", DEEP, "animals//dog", "x" * 250, "tab\tname", "animals/cat"])

    response = page_client(creator).post(reverse("labeling:project_create"), {**NEW_PROJECT, "classes": classes})

    # The form comes back with the list as typed and every bad line by its number; no project, no class
    assert response.status_code == 200
    errors = error_of(response)
    assert "Line 2: 13 levels of classes; at most 12." in errors
    assert "Line 3: empty class name between slashes in 'animals//dog'." in errors
    assert "Line 4: class name 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'… is over 200 characters." in errors
    assert "Line 5: class name 'tab\\tname' contains a control character." in errors
    assert "Line 1" not in errors
    assert "vehicles/land/car" in response.content.decode()
    assert not Project.objects.exists()
    assert not LabelClass.objects.exists()


def test_a_good_class_list_is_created_whole_in_its_one_spelling(creator):
    classes = "vehicles / land / car\n\n  vehicles/land/car\n/animals/cat/\nanimals/dog\n"

    response = page_client(creator).post(reverse("labeling:project_create"), {**NEW_PROJECT, "classes": classes})

    assert response.status_code == 302
    project = Project.objects.get(name="Mine")
    assert sorted(class_paths(class_tree(project=project)).values()) == [
        "animals",
        "animals/cat",
        "animals/dog",
        "vehicles",
        "vehicles/land",
        "vehicles/land/car",
    ]


def test_a_class_added_later_is_held_to_the_same_rules(creator):
    client = page_client(creator)
    client.post(reverse("labeling:project_create"), NEW_PROJECT)
    project = Project.objects.get(name="Mine")
    before = LabelClass.objects.count()

    page = client.post(
        reverse("labeling:project_settings", args=[project.slug]), {"action": "class", "name": "new\x07line"}
    )
    api = api_client(creator).post(
        f"/api/projects/{project.slug}/classes/create/", {"name": "tab\tname"}, format="json"
    )

    assert page.status_code == 200
    assert "contains a control character" in error_of(page)
    assert api.status_code == 400
    assert "contains a control character" in str(api.json())
    assert LabelClass.objects.count() == before
