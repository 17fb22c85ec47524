"""One rule for a class's name and one for a project's slug, wherever a class or a project is made: a single class's
name holds no "/" (it separates a path's levels), while a class list's "a/b" still nests b under a."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from labeling.models import LabelClass, Project, Role
from labeling.selectors.classes import class_paths, class_tree
from labeling.services.annotations import annotation_create
from labeling.services.projects import label_class_create, project_create, project_slug
from tests.factories import api_client, page_client, token_client
from tests.labeling.test_class_rename import _exported_labels
from tests.labeling.test_project_permissions import NEW_PROJECT, error_of

pytestmark = pytest.mark.django_db

SAYS = "A class name cannot contain '/' (“{name}”): it separates the levels of a path, so “a/b” means b under a."


@pytest.fixture
def creator(user_factory, allow_project_creation):
    return allow_project_creation(user_factory())


@pytest.mark.parametrize("name", ["a/b", "n/a", "animals/cat", "cats/"])
def test_a_class_name_with_a_slash_is_refused_where_a_class_is_added(project, member_of, name):
    # Reported: adding "a/b" made a root class that every export and re-import reads as b under a.
    # Given a project with one class, and its manager on the settings page and the API
    animals = label_class_create(project=project, name="animals")
    manager = member_of(project, Role.MANAGER)

    # When the manager adds a class whose name holds a "/", on the page and by the API
    page = page_client(manager).post(
        reverse("labeling:project_settings", args=[project.slug]), {"action": "class", "name": name}
    )
    api = api_client(manager).post(f"/api/projects/{project.slug}/classes/create/", {"name": name}, format="json")

    # Then both refuse it with the rename's words, say how to nest a class instead, and make nothing
    assert page.status_code == 200
    assert SAYS.format(name=name) in error_of(page)
    assert "choose that class as its parent (the add-class form's Parent" in error_of(page)
    assert api.status_code == 400
    assert SAYS.format(name=name) in api.json()["detail"][0]
    assert list(LabelClass.objects.filter(project=project)) == [animals]
    rename = api_client(manager).patch(
        f"/api/projects/{project.slug}/classes/{animals.pk}/", {"name": name}, format="json"
    )
    assert rename.json()["name"][0].startswith(SAYS.format(name=name))


def test_a_path_still_nests_where_the_input_is_a_class_list(creator):
    # When a user makes a project with "animals/cat" on the new-project page, by the API and with the command
    page = page_client(creator).post(reverse("labeling:project_create"), {**NEW_PROJECT, "classes": "animals/cat"})
    api = token_client(creator).post("/api/projects/", {"name": "Api", "classes": ["animals/cat"]}, format="json")
    out = io.StringIO()
    call_command("project_create", "Shell", "--classes", "animals/cat", "--owner", creator.username, stdout=out)

    # Then each has cat under animals, as before
    assert (page.status_code, api.status_code) == (302, 201)
    for name in ("Mine", "Api", "Shell"):
        project = Project.objects.get(name=name)
        assert sorted(class_paths(class_tree(project=project)).values()) == ["animals", "animals/cat"]
        assert not project.classes.filter(name__contains="/").exists()


def test_a_class_made_before_the_rule_keeps_its_name_page_and_export(
    project, member_of, item_factory, label_class_factory
):
    # Given a class "n/a" under "answers", made before new names refused a "/", and an image labeled with it
    answers = label_class_create(project=project, name="answers")
    odd = label_class_factory(project=project, name="n/a", parent=answers)
    annotation_create(
        item=item_factory(project=project, original_name="q.png"), user=member_of(project), class_ids=[odd.pk]
    )
    manager = page_client(member_of(project, Role.MANAGER))

    # Then the settings page shows it as typed, the export keeps its path, and saving its name unchanged is no error
    assert "answers / n/a" in manager.get(reverse("labeling:project_settings", args=[project.slug])).content.decode()
    assert _exported_labels(project) == {"q.png": "answers/n/a"}
    kept = manager.post(f"/p/{project.slug}/classes/{odd.pk}/rename/", {"name": "n/a"}, follow=True)
    assert not error_of(kept)
    assert LabelClass.objects.get(pk=odd.pk).name == "n/a"


def test_the_page_and_the_api_give_one_reason_for_a_bad_class(creator):
    # When the same bad class list is sent to the new-project page and the API
    entries = ["cat", "a//b", "x" * 250]
    page = page_client(creator).post(reverse("labeling:project_create"), {**NEW_PROJECT, "classes": "\n".join(entries)})
    api = token_client(creator).post("/api/projects/", {"name": "Api", "classes": entries}, format="json")

    # Then the page names lines and the API positions, each with the same reason
    assert "Line 2: empty class name between slashes in 'a//b'." in error_of(page)
    reasons = [re.sub(r"^Class \d+ \(.*?\): ", "", message) for message in api.json()["classes"]]
    assert reasons == [
        "empty class name between slashes in 'a//b'.",
        f"class name {'x' * 40!r}… is over 200 characters.",
    ]
    assert f"Line 3: {reasons[1]}" in error_of(page)
    assert not Project.objects.exists()


def test_a_slug_asked_for_is_the_slug_the_same_name_makes(creator):
    # Given a project made from an accented name with spaces and signs (its slug made from the name)
    name = "Été des Oiseaux & Abeilles!"
    made = project_create(name=name, created_by=creator)
    assert made.slug == project_slug(name) == "ete-des-oiseaux-abeilles"
    assert project_slug("Été des oiseaux " * 8) == ("ete-des-oiseaux-" * 5)[:70]  # room left for "-2"

    # When the operator asks for that same text as a new project's slug, it is the same address: refused as taken
    with pytest.raises(CommandError, match=f"slug: A project with the slug {made.slug!r} exists"):
        call_command("project_create", "Other", "--slug", name, "--owner", creator.username, stdout=io.StringIO())
    assert Project.objects.count() == 1
