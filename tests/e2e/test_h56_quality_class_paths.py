"""The label quality page's per-class table keeps each class path on one line beside the kappa chart (stop 56's
tester: at 1,280 px every "circle / green" wrapped onto two lines in a half-width card)."""

from __future__ import annotations

import pytest

from labeling.models import Role
from labeling.services.annotations import annotation_create
from labeling.services.projects import label_classes_from_paths

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

PATHS = [f"{shape}/{colour}" for shape in ("circle", "triangle") for colour in ("red", "orange", "yellow")]


def test_each_class_path_of_the_per_class_table_stays_on_one_line(
    page, login, screenshot, project_factory, item_factory, member_of
):
    # Given a two-level project that two annotators labeled with overlap, disagreeing on some images
    project = project_factory(name="Shapes QA", annotations_per_item=2)
    classes = label_classes_from_paths(project=project, paths=PATHS)
    leaves = [classes[p] for p in PATHS]
    ann1, ann2 = (member_of(project, Role.ANNOTATOR, name) for name in ("ann1", "ann2"))
    member_of(project, Role.MANAGER, "pm")
    for k in range(24):
        item = item_factory(project=project)
        annotation_create(item=item, user=ann1, class_ids=[leaves[k % 6].pk])
        annotation_create(item=item, user=ann2, class_ids=[leaves[(k + (k % 4 == 0)) % 6].pk])

    # When the manager opens the label quality page in a 1,280 px window
    page.set_viewport_size({"width": 1280, "height": 900})
    login("pm")
    page.goto(f"/p/{project.slug}/quality/")

    # Then every class cell is one line high, the chart is beside the table, and the page does not scroll sideways
    cells = page.locator("table#classes tbody td:first-child")
    assert cells.count() == 6
    line = page.locator("table#classes tbody td:nth-child(2)").first.bounding_box()["height"]
    for k in range(6):
        assert cells.nth(k).bounding_box()["height"] <= line + 1, cells.nth(k).inner_text()
    table_card = page.locator(".card", has=page.locator("table#classes")).bounding_box()
    chart_card = page.locator(".card", has_text="Per-class kappa").bounding_box()
    assert abs(table_card["y"] - chart_card["y"]) < 1
    assert chart_card["x"] > table_card["x"]
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    screenshot("h56_quality_class_paths")
