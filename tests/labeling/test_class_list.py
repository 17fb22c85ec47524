"""The card's class buttons are rendered once per taxonomy: every card still shows the project's classes as they
are now, and the model's suggestion chosen."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from labeling.models import Role, TaskType
from labeling.selectors.keys import classes_with_level_keys
from labeling.selectors.queue import label_classes_for_labeling
from labeling.services.projects import label_class_archive, label_class_create, label_classes_from_paths
from labeling.views.class_list import class_list_html

pytestmark = pytest.mark.django_db


def buttons(html: str) -> dict[str, str]:
    """data-path -> the button's class attribute, for every class button of a card."""
    return {m[2]: m[1] for m in re.finditer(r'class="(class-btn[^"]*)" data-id="\d+"[^>]*data-path="([^"]*)"', html)}


def test_every_card_shows_the_taxonomy_as_it_is_now(project, item_factory, member_of):
    label_classes_from_paths(project=project, paths=["animals/cat", "animals/dog", "car"])
    for _ in range(3):
        item_factory(project=project)
    client = Client()
    client.force_login(member_of(project, Role.ANNOTATOR))
    card = client.get(f"/p/{project.slug}/label/", HTTP_HX_REQUEST="true").content.decode()
    assert set(buttons(card)) == {"animals", "animals / cat", "animals / dog", "car"}

    # A class added, then one archived, by a manager while annotators label: the next card has them.
    label_class_create(project=project, name="bird")
    card = client.get(f"/p/{project.slug}/label/", HTTP_HX_REQUEST="true").content.decode()
    assert "bird" in buttons(card)
    car = project.classes.get(name="car")
    label_class_archive(project=project, class_id=car.pk)
    card = client.get(f"/p/{project.slug}/label/", HTTP_HX_REQUEST="true").content.decode()
    assert set(buttons(card)) == {"animals", "animals / cat", "animals / dog", "bird"}


@pytest.mark.parametrize("task_type", [TaskType.SINGLE, TaskType.MULTI])
def test_only_the_suggested_class_is_chosen_and_the_next_card_starts_clean(project_factory, task_type):
    project = project_factory(task_type=task_type)
    label_classes_from_paths(project=project, paths=["cat", "dog", "bird"])
    classes = classes_with_level_keys(label_classes_for_labeling(project=project))
    dog = next(c for c in classes if c.name == "dog")

    chosen = class_list_html(project=project, classes=classes, preselected=dog.id)
    assert buttons(chosen) == {"cat": "class-btn", "dog": "class-btn on", "bird": "class-btn"}
    ticked = re.findall(r'value="(\d+)" checked', chosen)
    assert ticked == ([str(dog.id)] if task_type == TaskType.MULTI else [])

    plain = class_list_html(project=project, classes=classes, preselected=None)
    assert set(buttons(plain).values()) == {"class-btn"}
    assert "checked" not in plain
