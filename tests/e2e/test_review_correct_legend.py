"""Review page, in headless Chromium at 1280 px: the correction box's key hints (its legend, which wraps over several
lines) lie inside the box, under its top border. Drawn on the border, the border cut through their second line."""

import pytest

from labeling.models import Role
from labeling.services.annotations import annotation_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

# The legend's and the box's edges, and the box's top border width, in px.
BOXES = """() => {
  const box = document.getElementById('correct-classes');
  const legend = box.querySelector('legend');
  const b = box.getBoundingClientRect(), l = legend.getBoundingClientRect();
  return { box: [b.top, b.left, b.bottom, b.right], legend: [l.top, l.left, l.bottom, l.right],
           border: parseFloat(getComputedStyle(box).borderTopWidth) };
}"""


def test_the_correction_legend_lies_inside_its_box(
    page, login, project_factory, label_class_factory, item_factory, member_of, screenshot
):
    # Given a reviewer on the review card of a labeled image, on a 1280 px wide window
    project = project_factory(name="Digits", review_sample_rate=1.0)
    classes = [label_class_factory(project=project, name=str(n), hotkey=str(n)) for n in range(1, 9)]
    ann = member_of(project, Role.ANNOTATOR, "ann")
    member_of(project, Role.REVIEWER, "rita")
    annotation_create(item=item_factory(project=project), user=ann, class_ids=[classes[7].pk])
    page.set_viewport_size({"width": 1280, "height": 900})
    login("rita")
    page.goto(f"/p/{project.slug}/review/")
    page.wait_for_function("() => document.getElementById('review-card').dataset.ready === '1'")

    # When the reviewer opens the correction with c
    page.keyboard.press("c")
    page.wait_for_selector("#correct-classes", state="visible")
    screenshot("review-correct-legend")

    # Then the legend, several lines long, lies within the box and below its top border
    found = page.evaluate(BOXES)
    top, left, bottom, right = found["box"]
    l_top, l_left, l_bottom, l_right = found["legend"]
    assert l_bottom - l_top > 30, f"the legend fits one line here: the test does not test a wrapped legend ({found})"
    assert l_top >= top + found["border"], f"the box's top border runs through the legend: {found}"
    assert l_left >= left, found
    assert l_right <= right, found
    assert l_bottom <= bottom, found
