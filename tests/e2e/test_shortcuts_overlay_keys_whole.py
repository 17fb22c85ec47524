"""Labeling page, in headless Chromium at 1280 px: in the shortcuts overlay of a project with subclasses, a key's name
stays on one line ("Backspace" broke into "Backspa" / "ce" in the narrow key column)."""

import pytest

from labeling.models import Role
from tests.e2e.conftest import CARD

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def test_backspace_stays_whole_in_the_shortcuts(
    page, login, project_factory, label_class_factory, item_factory, member_of
):
    # Given an annotator on the labeling page of a project with a class under another, on a 1280 px window
    project = project_factory(name="Zoo", slug="zoo")
    animal = label_class_factory(project=project, name="animal", hotkey="1")
    label_class_factory(project=project, name="cat", hotkey="2", parent=animal)
    item_factory(project=project)
    member_of(project, Role.ANNOTATOR, "ann")
    page.set_viewport_size({"width": 1280, "height": 900})
    login("ann")
    page.goto("/p/zoo/label/")
    page.wait_for_function(CARD)

    # When the annotator opens the shortcuts
    page.keyboard.press("?")

    # Then Backspace is one key cap on one line, as high as Esc's
    backspace = page.locator("#shortcuts-overlay kbd", has_text="Backspace").first
    esc = page.locator("#shortcuts-overlay kbd", has_text="Esc").first
    assert backspace.is_visible()
    assert backspace.bounding_box()["height"] <= esc.bounding_box()["height"] + 1
