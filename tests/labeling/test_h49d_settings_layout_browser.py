"""In Chromium at 1366 px, the settings page of a 1,332-class taxonomy: the find box's button on the input's line,
the pager above the table as below it, clear of the table's rows. Saves screenshots (the `screenshot` fixture's
folder)."""

from __future__ import annotations

import pytest

from labeling.models import Role
from labeling.services.projects import label_classes_from_paths
from tests.labeling.test_h49d_settings_classes import three_level_paths

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


@pytest.fixture
def taxonomy(page, login, project_factory, member_of):
    """A manager of 1,332 classes (three levels), signed in on a 1366 px wide screen."""
    project = project_factory(name="Taxonomy", slug="tax")
    label_classes_from_paths(project=project, paths=three_level_paths())
    page.set_viewport_size({"width": 1366, "height": 768})
    login(member_of(project, Role.MANAGER, "mia").username)
    return project


def test_find_button_and_pagers_at_1366_px(page, taxonomy, screenshot):
    # Given a manager of 1,332 classes on a 1366 px wide screen (taxonomy)
    # When they open page 2 of the class table
    page.goto(f"/p/{taxonomy.slug}/settings/?classes=open&classes_page=2")

    # Then the Find button sits on the input's line
    box = page.locator("input[name=classes_find]").bounding_box()
    button = page.get_by_role("button", name="Find").bounding_box()
    assert abs((button["y"] + button["height"] / 2) - (box["y"] + box["height"] / 2)) < 4, (box, button)
    assert button["x"] > box["x"] + box["width"]
    # ... a pager is above the table, on screen without scrolling, and one below, clear of its last row
    pagers = page.locator("nav.class-pages")
    assert pagers.count() == 2
    table = page.locator("#class-list table").bounding_box()
    top, bottom = pagers.nth(0).bounding_box(), pagers.nth(1).bounding_box()
    assert top["y"] + top["height"] <= table["y"]
    assert top["y"] + top["height"] < 768
    assert bottom["y"] - (table["y"] + table["height"]) >= 8, (table, bottom)
    screenshot("settings-top-1366")
    pagers.nth(1).scroll_into_view_if_needed()
    screenshot("settings-bottom-pager-1366")
    # ... and the top pager's "Next" goes to page 3, the find kept
    page.fill("input[name=classes_find]", "leaf group0")
    page.get_by_role("button", name="Find").click()
    page.wait_for_load_state("load")
    pagers.nth(0).get_by_role("link", name="Next →").click()
    page.wait_for_load_state("load")
    status = "Classes 201–400 of 1,000 whose path holds every word of “leaf group0”, page 2 of 5."  # noqa: RUF001
    assert page.get_by_text(status).is_visible()
    screenshot("settings-find-page2-1366")


def test_a_new_class_is_shown_at_its_row_with_its_path_and_keys(page, taxonomy, screenshot):
    # Given a manager of 1,332 classes on a 1366 px wide screen (taxonomy), the class list folded
    page.goto(f"/p/{taxonomy.slug}/settings/")

    # When they add a class under group03 / sub03_2
    page.fill("input[name=name]:not([aria-label])", "leaf03_2_new")
    page.fill("input[name=parent_path]", "group03 / sub03_2")
    page.get_by_role("button", name="Add class").click()
    page.wait_for_load_state("load")

    # Then the message names its path and keys, and its row is on screen in the open class list
    message = page.get_by_text("Class “group03 / sub03_2 / leaf03_2_new” added: keys 4 → 3 → c when labeling.")
    assert message.is_visible()
    assert message.bounding_box()["y"] >= 0  # the jump to the row leaves the message on screen
    row = page.locator("tr", has_text="group03 / sub03_2 / leaf03_2_new")
    assert row.is_visible()
    assert row.evaluate("r => r.matches(':target')")
    assert row.bounding_box()["y"] < 768  # scrolled to it, not below the fold
    screenshot("settings-class-added-1366")
