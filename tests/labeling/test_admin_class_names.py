"""The Django admin's class form holds a new or changed class name to the settings page's rule: a name with "/" would
be read back as a path (b under a) by every export and import. An older row whose name has "/" can still be saved
unchanged, so staff can edit its other fields."""

from __future__ import annotations

from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from labeling.models import LabelClass
from tests.factories import page_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(user_factory) -> Client:
    return page_client(user_factory(is_staff=True, is_superuser=True))


def form_data(label_class, **changes) -> dict:
    data = {"project": label_class.project_id, "name": label_class.name, "hotkey": label_class.hotkey,
            "color": label_class.color, "order": label_class.order, "_save": "Save"}  # fmt: skip
    if label_class.parent_id:
        data["parent"] = label_class.parent_id
    return {**data, **changes}


def test_the_admin_refuses_a_slash_in_a_new_name_and_stores_nothing(staff, project_factory):
    project = project_factory()
    response = staff.post(
        reverse("admin:labeling_labelclass_add"),
        {"project": project.pk, "name": "cats/dogs", "hotkey": "", "color": "#336699", "order": 0, "_save": "Save"},
    )
    assert response.status_code == 200
    assert "cannot contain '/'" in unescape(response.content.decode())
    assert not LabelClass.objects.filter(project=project).exists()


def test_the_admin_refuses_renaming_to_a_slash_but_saves_an_older_slash_name_unchanged(staff, label_class_factory):
    cls = label_class_factory(name="cat")
    url = reverse("admin:labeling_labelclass_change", args=[cls.pk])
    response = staff.post(url, form_data(cls, name="cat/kitten"))
    assert response.status_code == 200
    assert "cannot contain '/'" in unescape(response.content.decode())
    assert LabelClass.objects.get(pk=cls.pk).name == "cat"

    older = label_class_factory(project=cls.project, name="n/a")  # made before the rule
    response = staff.post(reverse("admin:labeling_labelclass_change", args=[older.pk]), form_data(older, hotkey="x"))
    assert response.status_code == 302
    assert LabelClass.objects.get(pk=older.pk).hotkey == "x"


def test_the_admin_stores_a_new_name_trimmed_and_in_nfc(staff, project_factory):
    # Given "Café" typed as "Cafe" + a combining acute, with a zero-width space after it (pasted from a document)
    project = project_factory()
    response = staff.post(
        reverse("admin:labeling_labelclass_add"),
        {"project": project.pk, "name": "Cafe\u0301\u200b", "hotkey": "", "color": "#336699", "order": 0,
         "_save": "Save"},
    )  # fmt: skip

    # Then the class is stored as every other way of making one stores it: one "é", nothing invisible
    assert response.status_code == 302
    assert list(LabelClass.objects.filter(project=project).values_list("name", flat=True)) == ["Caf\u00e9"]


def test_the_admin_refuses_a_twin_in_another_unicode_spelling_and_changes_nothing(staff, label_class_factory):
    # Given a class "Café" stored before names were normalised (decomposed) and a sibling "Tea"
    cafe = label_class_factory(name="Cafe\u0301")
    tea = label_class_factory(project=cafe.project, name="Tea")

    # When staff add a "Café" typed with one "é", or rename "Tea" to it
    added = staff.post(
        reverse("admin:labeling_labelclass_add"),
        {"project": cafe.project_id, "name": "Caf\u00e9", "hotkey": "", "color": "#336699", "order": 0,
         "_save": "Save"},
    )  # fmt: skip
    renamed = staff.post(reverse("admin:labeling_labelclass_change", args=[tea.pk]), form_data(tea, name="Caf\u00e9"))

    # Then both are refused with the reason, and the project keeps its two classes as they were
    for response in (added, renamed):
        assert response.status_code == 200
        assert "already exists here (in other Unicode characters that read the same)" in unescape(
            response.content.decode()
        )
    assert sorted(LabelClass.objects.filter(project=cafe.project).values_list("name", flat=True)) == [
        "Cafe\u0301",
        "Tea",
    ]
    # ... while the decomposed class itself can still be saved unchanged (its other fields edited)
    response = staff.post(reverse("admin:labeling_labelclass_change", args=[cafe.pk]), form_data(cafe, hotkey="c"))
    assert response.status_code == 302
    assert LabelClass.objects.get(pk=cafe.pk).hotkey == "c"


def test_the_admin_names_an_exact_duplicate_as_the_other_pages_do(staff, label_class_factory):
    # Reported (h58 P3): the admin answered a clash with 'Constraint "labelclass_unique_root_name" is violated.'
    tea = label_class_factory(name="Tea")
    response = staff.post(
        reverse("admin:labeling_labelclass_add"),
        {"project": tea.project_id, "name": "Tea", "hotkey": "", "color": "#336699", "order": 0, "_save": "Save"},
    )
    text = unescape(response.content.decode())
    assert response.status_code == 200
    assert "A class named 'Tea' already exists here." in text
    assert "Constraint" not in text
    assert LabelClass.objects.filter(project=tea.project).count() == 1
