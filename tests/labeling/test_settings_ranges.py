"""What the project settings accept: image size, retraining cadence, labels before the first model and annotators per
image within ranges the shared worker and the queue can honour, each refusal naming its range; project names without
the Unicode controls that display text in another order than it was typed. The REST API only reads these fields."""

from __future__ import annotations

import re

import pytest
from django.forms.models import model_to_dict
from django.urls import reverse

from labeling.models import Project, Role
from tests.factories import api_client, page_client
from tests.labeling.test_project_permissions import NEW_PROJECT, error_of
from tests.labeling.test_settings_page import settings_post

pytestmark = pytest.mark.django_db

SPOOFED = "report\u202egnp.exe"  # shows as "reportexe.png"
DIRECTION_MESSAGE = "contains a right-to-left override or other direction-control character"


def stored(project) -> dict:
    return model_to_dict(Project.objects.get(pk=project.pk))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("image_size", 0, "choose an image size from 32 to 512 pixels."),
        ("image_size", 8, "choose an image size from 32 to 512 pixels."),
        ("image_size", 31, "choose an image size from 32 to 512 pixels."),
        ("image_size", 513, "choose an image size from 32 to 512 pixels."),
        ("image_size", 32767, "choose an image size from 32 to 512 pixels."),
        ("retrain_every", 0, "A run needs at least one new label to learn from: choose from 1 to 1,000,000."),
        ("min_labels_to_train", 0, "A model needs at least two labeled images to learn from: choose from 2 to"),
        ("min_labels_to_train", 1, "A model needs at least two labeled images to learn from: choose from 2 to"),
        ("annotations_per_item", 21, "choose from 1 to 20."),
        ("annotations_per_item", 1000, "choose from 1 to 20."),
    ],
)
def test_a_value_out_of_range_is_refused_with_its_range_and_nothing_changes(project, member_of, field, value, message):
    # Given a manager on the settings page of a project with the default settings
    manager = page_client(member_of(project, Role.MANAGER))
    before = stored(project)

    # When they save the form with one value out of range (and a new name beside it)
    response = settings_post(manager, project, name="Renamed", **{field: value})

    # Then the form comes back saying which values are allowed, and nothing is saved, the name included
    assert response.status_code == 200
    assert message in error_of(response)
    assert stored(project) == before
    # ... and the page's title and header name the project as stored, not as typed (stop 55's tester: a manager
    # read "Renamed" at the top and believed the rename had worked); the form keeps what was typed, to fix and resend
    html = response.content.decode()
    assert "Renamed" not in re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert "Renamed" not in html.split("<main", 1)[0]
    assert 'value="Renamed"' in html


def test_zero_annotators_per_image_reads_as_a_sentence_not_a_constraint_name(project, member_of):
    manager = page_client(member_of(project, Role.MANAGER))
    before = stored(project)

    response = settings_post(manager, project, annotations_per_item=0)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Each image needs at least one annotator" in error_of(response)
    assert "choose from 1 to 20." in error_of(response)
    assert "project_overlap_positive" not in html
    assert "Constraint" not in html
    assert stored(project) == before


@pytest.mark.parametrize(
    "changes",
    [
        {"image_size": 32, "retrain_every": 1, "min_labels_to_train": 2, "annotations_per_item": 1},
        {"image_size": 512, "retrain_every": 1_000_000, "min_labels_to_train": 1_000_000, "annotations_per_item": 20},
    ],
    ids=["lowest", "highest"],
)
def test_the_ends_of_each_range_are_saved(project, member_of, changes):
    manager = page_client(member_of(project, Role.MANAGER))

    response = settings_post(manager, project, **changes)

    assert response.status_code == 302
    saved = stored(project)
    assert {key: saved[key] for key in changes} == changes


def test_the_page_says_the_image_size_range_and_the_browser_holds_to_it(project, member_of):
    manager = page_client(member_of(project, Role.MANAGER))

    html = manager.get(reverse("labeling:project_settings", args=[project.slug])).content.decode()

    assert "(32 to 512;" in html
    assert 'name="image_size" value="128" min="32" max="512"' in html
    assert 'name="annotations_per_item" value="1" min="1" max="20"' in html


def test_a_project_saved_with_an_old_out_of_range_value_still_opens_and_is_asked_to_fix_it(project_factory, member_of):
    # Given a project stored before the ranges existed, at 1,024 px and retraining after "0" labels
    project = project_factory(image_size=1024, retrain_every=0)
    manager = page_client(member_of(project, Role.MANAGER))

    # When its manager opens the settings and saves another change, then fixes the values
    page = manager.get(reverse("labeling:project_settings", args=[project.slug]))
    refused = settings_post(manager, project, al_strategy="entropy")
    fixed = settings_post(manager, project, al_strategy="entropy", image_size=256, retrain_every=20)

    # Then the page opens with the stored values, the save names both values to fix, and the fixed form saves
    assert page.status_code == 200
    assert 'name="image_size" value="1024"' in page.content.decode()
    assert refused.status_code == 200
    assert "choose an image size from 32 to 512 pixels." in error_of(refused)
    assert "choose from 1 to 1,000,000." in error_of(refused)
    assert fixed.status_code == 302
    project.refresh_from_db()
    assert (project.al_strategy, project.image_size, project.retrain_every) == ("entropy", 256, 20)


def test_the_api_cannot_write_the_settings(project, member_of):
    # Given a manager with the REST API
    api = api_client(member_of(project, Role.MANAGER))
    url = f"/api/projects/{project.slug}/"
    before = stored(project)

    # When they PATCH or PUT an image size of 32,767 px
    answers = [send(url, {"image_size": 32767}, format="json") for send in (api.patch, api.put)]

    # Then the project answers only reads, and nothing changes
    assert [answer.status_code for answer in answers] == [405, 405]
    assert stored(project) == before
    assert api.get(url).json()["image_size"] == 128


@pytest.fixture
def creator(user_factory, allow_project_creation):
    return allow_project_creation(user_factory())


def test_a_new_project_named_with_a_right_to_left_override_is_refused(creator):
    response = page_client(creator).post(reverse("labeling:project_create"), {**NEW_PROJECT, "name": SPOOFED})

    assert response.status_code == 200
    assert f"The name {DIRECTION_MESSAGE} (U+202E)" in error_of(response)
    assert not Project.objects.exists()


def test_a_new_project_with_a_thousand_annotators_per_image_is_refused(creator):
    response = page_client(creator).post(
        reverse("labeling:project_create"), {**NEW_PROJECT, "annotations_per_item": 1000}
    )

    assert response.status_code == 200
    assert "choose from 1 to 20." in error_of(response)
    assert not Project.objects.exists()


@pytest.mark.parametrize("code", [*range(0x202A, 0x202F), *range(0x2066, 0x206A)], ids=lambda c: f"U+{c:04X}")
def test_a_rename_to_a_name_holding_a_direction_control_is_refused(project, member_of, code):
    manager = page_client(member_of(project, Role.MANAGER))
    before = stored(project)

    response = settings_post(manager, project, name=f"Cats{chr(code)} and dogs")

    assert response.status_code == 200
    assert f"The name {DIRECTION_MESSAGE} (U+{code:04X})" in error_of(response)
    assert stored(project) == before


def test_right_to_left_scripts_are_welcome_in_a_name(project, member_of, creator):
    # Hebrew and Arabic text lay themselves out right to left without any control character.
    manager = page_client(member_of(project, Role.MANAGER))

    renamed = settings_post(manager, project, name="חתולים וכלבים")
    creating, url = page_client(creator), reverse("labeling:project_create")
    offer = creating.post(url, {**NEW_PROJECT, "name": "قطط وكلاب"})
    # (a name with no letters for a web address comes back once, offering its slug: pressing Create keeps it)
    offered = re.search(r'name="offered" value="([^"]+)"', offer.content.decode())[1]
    created = creating.post(url, {**NEW_PROJECT, "name": "قطط وكلاب", "slug": offered, "offered": offered})

    assert renamed.status_code == 302
    assert created.status_code == 302
    assert set(Project.objects.values_list("name", flat=True)) == {"חתולים וכלבים", "قطط وكلاب"}


def test_the_new_project_form_starts_at_one_annotator_per_image(
    client, member_of, project_factory, allow_project_creation
):
    """The ranged field dropped the model's default: the form came up empty and the browser refused to send it."""
    user = member_of(project_factory(), Role.MANAGER)
    allow_project_creation(user)
    client.force_login(user)
    html = client.get(reverse("labeling:project_create")).content.decode()
    field = re.search(r'<input[^>]*name="annotations_per_item"[^>]*>', html).group(0)
    assert 'value="1"' in field
