"""Classes named "0" to "9" get keys 0 to 9 (a reviewer types `c 0` for class "0"), not 1-9 then "a"."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labeling.models import LabelClass, Project
from labeling.services.projects import label_class_create
from tests.factories import page_client
from tests.labeling.test_project_permissions import NEW_PROJECT

pytestmark = pytest.mark.django_db


def test_a_project_of_digit_classes_made_on_the_page_keys_each_digit_by_itself(user_factory, allow_project_creation):
    # Given a new project whose classes are the ten digits and two words, made from the page
    creator = allow_project_creation(user_factory())
    classes = "\n".join(["zero-ish", *map(str, range(10)), "other"])
    page_client(creator).post(reverse("labeling:project_create"), {**NEW_PROJECT, "name": "Digits", "classes": classes})

    # Then each digit class has its own digit as key, and the words take the keys left
    keys = dict(LabelClass.objects.filter(project=Project.objects.get()).values_list("name", "hotkey"))
    assert {str(d): keys[str(d)] for d in range(10)} == {str(d): str(d) for d in range(10)}
    assert keys["zero-ish"] == "a"
    assert keys["other"] == "c"  # b is the page's (image background)


def test_a_digit_class_added_later_takes_its_digit_when_free(project_factory):
    project = project_factory()
    first = label_class_create(project=project, name="cat")
    seven = label_class_create(project=project, name="7")
    one = label_class_create(project=project, name="1")  # "1" is cat's already

    assert (first.hotkey, seven.hotkey, one.hotkey) == ("1", "7", "2")
