"""Heatmaps in a real browser: h shows the model's heatmap over the image on the labeling page (a click on a
suggested class shows that class's), labeling keys work as before; the review card and the suspected-label-errors
list show theirs; a broken model says so and labeling goes on. No Content-Security-Policy violation on the way.
(Celery is eager here: the live server computes the heatmap after the first request commits; the page polls.)"""

from __future__ import annotations

import pytest

from labeling.models import Annotation, ReviewTask, ReviewTaskReason
from labeling.services.annotations import annotation_create
from tests.training.explain_helpers import break_checkpoint, explained_project
from training.models import Explanation

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective));
"""


def wait_ready(page) -> None:
    page.wait_for_function("() => document.getElementById('item-card').dataset.ready === '1'")


def current_item(page) -> str:
    return page.locator("#item-card").get_attribute("data-item")


@pytest.fixture
def zoo(project_factory, label_class_factory, item_factory, member_of):
    return explained_project(project_factory, label_class_factory, item_factory, member_of)


def test_h_toggles_the_heatmap_over_the_image_and_labeling_keys_still_work(page, login, screenshot, zoo):
    # given: an annotator on the labeling page of a project with an active model
    project, classes, _, _, annotator, _ = zoo
    page.add_init_script(RECORD_VIOLATIONS)
    login(annotator.username)
    page.goto(f"/p/{project.slug}/label/")
    wait_ready(page)
    slot = page.locator("#explain-slot")
    assert not slot.is_visible()
    page.wait_for_timeout(500)
    assert not Explanation.objects.exists()  # hidden, nothing is asked of the gpu queue
    # when: h is pressed
    page.keyboard.press("h")
    # then: the heatmap appears stacked exactly over the image
    overlay = page.locator("#explain-slot img.explain-overlay")
    overlay.wait_for(state="visible")
    page.wait_for_function("() => document.querySelector('#explain-slot img.explain-overlay').complete")
    image_box = page.locator("#item-image").bounding_box()
    overlay_box = overlay.bounding_box()
    for key in ("x", "y", "width", "height"):
        assert abs(image_box[key] - overlay_box[key]) <= 2, (key, image_box, overlay_box)
    screenshot("labeling-heatmap")
    # when: h again
    page.keyboard.press("h")
    # then: hidden
    assert not slot.is_visible()
    # when: another suggested class is clicked
    other = page.locator(".suggestion[data-explain-url]").nth(1)
    name = other.locator(".name").inner_text()
    other.click()
    # then: that class's heatmap is shown
    page.locator(f'#explain-slot .explain[data-explain="done"][data-class-name="{name}"] img').wait_for(state="visible")
    # when: the annotator labels with a class key
    before = current_item(page)
    page.keyboard.press("1")
    page.wait_for_function("old => document.getElementById('item-card').dataset.item !== old", arg=before)
    wait_ready(page)
    # then: the label is saved, the next card has its own heatmap, still shown, and nothing broke the policy
    assert Annotation.objects.filter(item_id=int(before), user=annotator, classes=classes[0]).exists()
    page.locator("#explain-slot img.explain-overlay").wait_for(state="visible")
    assert page.evaluate("window.__csp") == []


def test_keys_typed_ahead_with_the_heatmap_shown_are_applied_or_refused_as_without_it(
    page, login, project_factory, label_class_factory, item_factory, member_of
):
    # given: a longer queue with an active model, and the heatmap shown (its polls run while keys are typed)
    project, _, _, _, annotator, _ = explained_project(
        project_factory, label_class_factory, item_factory, member_of, slug="burst", n=14
    )
    login(annotator.username)
    page.goto(f"/p/{project.slug}/label/")
    wait_ready(page)
    page.keyboard.press("h")
    page.locator("#explain-slot .explain").first.wait_for(state="attached")
    # when: label and skip keys are typed at machine speed, ahead of the next images
    keys = ["1", "2", "3", "s"] * 3
    for key in keys:
        page.keyboard.press(key)
    page.wait_for_timeout(1500)
    wait_ready(page)
    # then: every key was applied once to an image on screen or refused where the annotator sees it, as always
    mine = list(Annotation.objects.filter(user=annotator))
    refused = int(page.locator("#key-note").get_attribute("data-refused"))
    assert len(mine) + refused == len(keys)
    assert len({a.item_id for a in mine}) == len(mine)
    assert refused > 0, "nothing was typed ahead: the test did not test it"
    assert page.locator("#explain-slot").is_visible()


def test_a_broken_model_says_so_and_labeling_goes_on(page, login, zoo):
    # given: the active version's checkpoint is corrupted
    project, classes, _, version, annotator, _ = zoo
    break_checkpoint(version)
    login(annotator.username)
    page.goto(f"/p/{project.slug}/label/")
    wait_ready(page)
    # when: the annotator asks for the heatmap
    page.keyboard.press("h")
    # then: the page says it failed
    page.locator("#explain-slot .explain-failed").wait_for(state="visible")
    assert "Heatmap failed" in page.locator("#explain-slot").inner_text()
    # and: keys label as always
    before = current_item(page)
    page.keyboard.press("2")
    page.wait_for_function("old => document.getElementById('item-card').dataset.item !== old", arg=before)
    assert Annotation.objects.filter(item_id=int(before), user=annotator, classes=classes[1]).exists()


def test_review_card_and_label_error_list_show_the_heatmap(page, login, screenshot, zoo):
    # given: a label the model contradicts, flagged by the label-error search
    from training.models import LabelErrorSearch

    project, classes, items, _, annotator, reviewer = zoo
    item = items[0]
    predicted = item.predictions.get().predicted_class
    given = next(c for c in classes if c.pk != predicted.pk)
    annotation = annotation_create(item=item, user=annotator, class_ids=[given.pk])
    LabelErrorSearch.objects.create(
        project=project, status="ok", labels=1, suspects={str(item.pk): [given.pk, predicted.pk, 0.9, 0.05]}
    )
    ReviewTask.objects.filter(item=item).delete()
    ReviewTask.objects.create(project=project, item=item, annotation=annotation, reason=ReviewTaskReason.LABEL_ERROR)
    page.add_init_script(RECORD_VIOLATIONS)
    login(reviewer.username)
    # when: the reviewer opens the review queue
    page.goto(f"/p/{project.slug}/review/")
    # then: the model's heatmap lies over the image; h hides it
    overlay = page.locator("#review-explain img.explain-overlay")
    overlay.wait_for(state="visible")
    screenshot("review-heatmap")
    page.keyboard.press("h")
    assert not overlay.is_visible()
    # when: the reviewer opens the suspected-label-errors list
    page.goto(f"/p/{project.slug}/review/label-errors/")
    # then: the row shows where the model sees the class it predicted
    page.locator(f'#label-errors tr[data-item="{item.pk}"] img.explain-overlay').wait_for(state="visible")
    screenshot("label-errors-heatmap")
    assert page.evaluate("window.__csp") == []
