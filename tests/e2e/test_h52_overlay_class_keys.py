"""Labeling page, in headless Chromium: the shortcuts overlay (?) names the keys the project's classes have. A project
whose classes are named 0 to 9 is keyed 0..9, and its overlay said "1…9, letters" (no 0, and no class has a letter)."""

import pytest

from labeling.models import Role
from labeling.services.projects import label_class_create, label_classes_from_paths
from tests.e2e.conftest import CARD

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def _digit_classes(project):
    for digit in range(10):
        label_class_create(project=project, name=str(digit))


def _thirteen_classes(project):
    for n in range(1, 14):
        label_class_create(project=project, name=f"swatch {n}")


def _taxonomy_of_forty(project):
    label_classes_from_paths(
        project=project, paths=[f"{group}/{group} {n}" for group in ("warm", "cold") for n in range(20)]
    )


@pytest.mark.parametrize(
    ("make_classes", "said"),
    [(_digit_classes, "0…9"), (_thirteen_classes, "1…9, letters"), (_taxonomy_of_forty, "1…9, letters")],
)
def test_the_shortcuts_name_the_keys_the_classes_have(
    page, login, project_factory, item_factory, member_of, make_classes, said
):
    # Given an annotator on the labeling page of a project with these classes, keyed as the product keys them
    project = project_factory(name="Keys", slug="keys")
    make_classes(project)
    item_factory(project=project)
    member_of(project, Role.ANNOTATOR, "ann")
    login("ann")
    page.goto("/p/keys/label/")
    page.wait_for_function(CARD)

    # When the annotator opens the shortcuts
    page.keyboard.press("?")

    # Then the first row names the class keys the project has
    first = page.locator("#shortcuts-overlay tr").first
    assert first.is_visible()
    assert first.locator("td").first.inner_text() == said
