"""A double click on a class button labels the image on screen once: its second click, which lands on the next image
a split second after it appears, is not applied, and the page says so. Two deliberate clicks label two images."""

from __future__ import annotations

import pytest

from labeling.models import Role
from tests.e2e.conftest import CARD, labels_by_ann, next_card

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def test_the_second_click_of_a_slow_double_click_does_not_label_the_next_image(page, pets_labeling):
    _, _, first = pets_labeling
    box = page.locator("#label-form .class-btn", has_text="dog").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    # A double click as the operating system reports it: the second press counts 2, 250 ms after the first, by which
    # time the next image is on screen under the pointer.
    page.mouse.move(x, y)
    page.mouse.down(click_count=1)
    page.mouse.up(click_count=1)
    second = next_card(page, first)
    page.wait_for_timeout(100)
    page.mouse.down(click_count=2)
    page.mouse.up(click_count=2)
    page.wait_for_timeout(700)
    assert labels_by_ann() == {int(first): "dog"}
    assert page.evaluate(CARD) == second
    assert "Second click of a double click not applied" in page.locator("#key-note").inner_text()

    # Two separate clicks (each counting 1) label two images, as keys do
    page.mouse.click(x, y)
    third = next_card(page, second)
    page.mouse.click(x, y)
    next_card(page, third)
    assert labels_by_ann() == {int(first): "dog", int(second): "dog", int(third): "dog"}


def test_the_second_click_of_a_double_click_on_accept_gives_no_verdict_on_the_next_task(
    page, login, project_factory, label_class_factory, item_factory, member_of
):
    from labeling.models import ReviewTask
    from labeling.services.annotations import annotation_create

    project = project_factory(name="Birds", slug="birds", review_sample_rate=1.0)
    cat = label_class_factory(project=project, name="cat", hotkey="1")
    ann = member_of(project, Role.ANNOTATOR, "ann")
    member_of(project, Role.REVIEWER, "rita")
    for _ in range(3):
        annotation_create(item=item_factory(project=project), user=ann, class_ids=[cat.pk])
    login("rita")
    page.goto("/p/birds/review/")
    first = page.get_attribute("#review-card", "data-task")
    box = page.get_by_role("button", name="Accept").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down(click_count=1)
    page.mouse.up(click_count=1)
    page.wait_for_function(f"() => (document.getElementById('review-card')?.dataset.task || '{first}') !== '{first}'")
    second = page.get_attribute("#review-card", "data-task")
    page.wait_for_timeout(100)
    page.mouse.down(click_count=2)
    page.mouse.up(click_count=2)
    page.wait_for_timeout(700)
    done = ReviewTask.objects.filter(done=True).values_list("pk", flat=True)
    assert sorted(done) == [int(first)]
    assert page.get_attribute("#review-card", "data-task") == second
    assert "Second click of a double click not applied" in page.locator("#review-card").inner_text()
