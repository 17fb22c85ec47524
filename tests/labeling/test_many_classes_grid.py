"""The grid and settings pages at a tester's size, in a browser: a single-label project with a three-level taxonomy of
160 classes (120 leaves), some of whose names run to 130-190 characters. In a 1280 px window no page scrolls sideways
(the class menus stay inside their cards; the browser cuts the long paths short), and the settings form is near the
top of the settings page."""

from __future__ import annotations

import pytest

from labeling.models import Role, TaskType
from labeling.selectors.queue import label_classes_for_labeling
from labeling.services.projects import label_classes_from_paths
from tests.labeling.test_many_classes_pages import many_class_paths

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

# How far the page reaches past the right edge of the window, and the outermost elements that stick out.
PAST_THE_EDGE = """() => { const w = window.innerWidth, out = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect(), p = el.parentElement && el.parentElement.getBoundingClientRect();
    if (r.width > 0 && r.right > w + 1 && !(p && p.right > w + 1)) out.push(el.tagName + '.' + el.className);
  }
  return {scroll: document.documentElement.scrollWidth, width: w, out: out.slice(0, 5)}; }"""


def test_long_class_paths_do_not_widen_the_grid_page(page, login, project_factory, item_factory, member_of):
    # Given a single-label project with 160 classes, some with names of up to 190 characters, and images to show
    project = project_factory(name="Atlas", slug="atlas", task_type=TaskType.SINGLE, holdout_fraction=0.0)
    paths = many_class_paths()
    label_classes_from_paths(project=project, paths=paths)
    assert max(len(p) for p in paths) > 190
    for n in range(24):
        item_factory(project=project, priority=100 - n)
    user = member_of(project, Role.ANNOTATOR, "ann")
    login(user.username)

    # When an annotator opens the grid in a 1280 px window
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"/p/{project.slug}/grid/")
    page.wait_for_load_state("load")

    # Then the page is no wider than the window
    found = page.evaluate(PAST_THE_EDGE)
    assert found["scroll"] <= found["width"], found
    # ... and both class menus are there, each inside its card, listing every class
    for selector in ("select[name=class]", "#grid-class"):
        box = page.locator(selector).bounding_box()
        assert 0 <= box["x"] <= box["x"] + box["width"] <= 1280, (selector, box)
    assert page.locator("select[name=class] option").count() == len(label_classes_for_labeling(project=project)) + 1


def test_settings_page_is_no_wider_than_the_window_and_its_forms_are_near_the_top(
    page, login, project_factory, member_of
):
    # Given the same 160 classes
    project = project_factory(name="Atlas", slug="atlas", task_type=TaskType.SINGLE, holdout_fraction=0.0)
    label_classes_from_paths(project=project, paths=many_class_paths())
    login(member_of(project, Role.MANAGER, "mia").username)

    # When the manager opens the settings page in a 1280 px window
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"/p/{project.slug}/settings/")
    page.wait_for_load_state("load")

    # Then the page is no wider than the window (the add-class form's parent menu lists every path)
    found = page.evaluate(PAST_THE_EDGE)
    assert found["scroll"] <= found["width"], found
    # ... and the project settings start within two screens, not below 160 rows of classes
    heading = page.get_by_role("heading", name="Project settings").bounding_box()
    assert heading["y"] < 1800, heading
    # ... while the folded class list opens on a click and shows every class's archive button
    page.locator("#class-list > summary").click()
    assert page.locator("#class-list form button:visible").count() == 160
