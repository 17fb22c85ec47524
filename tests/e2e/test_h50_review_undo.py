"""h50 P13: on the review page `z` (or the card's Undo button) withdraws the reviewer's last verdict and shows its
card again, in headless Chromium; a `z` typed ahead of a card is not applied, as the verdict keys."""

import pytest

from labeling.models import ResolvedLabel, Review, ReviewTask, Role
from labeling.services.annotations import annotation_create

from .second_tap import second_tap_script

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def _wait_for_card(page, task: str, *, other: bool = False) -> str:
    """Until the card of `task` (other=True: of another task) is up and takes keys (static/js/review.js)."""
    page.wait_for_function(
        "([task, other]) => { const c = document.getElementById('review-card');"
        " return c && (other ? c.dataset.task !== task : c.dataset.task === task) && c.dataset.ready === '1'; }",
        arg=[task, other],
    )
    return page.get_attribute("#review-card", "data-task")


@pytest.fixture
def pets_queue(page, login, project_factory, label_class_factory, item_factory, member_of):
    """rita on the review page of a project where ann labeled two images "cat" (keys 1 cat, 2 dog), both up for
    audit; returns the first card's task id."""
    project = project_factory(name="Pets", review_sample_rate=1.0)
    cat = label_class_factory(project=project, name="cat", hotkey="1")
    label_class_factory(project=project, name="dog", hotkey="2")
    ann = member_of(project, Role.ANNOTATOR, "ann")
    member_of(project, Role.REVIEWER, "rita")
    for _ in range(2):
        annotation_create(item=item_factory(project=project), user=ann, class_ids=[cat.pk])
    page.add_init_script(second_tap_script("review-image"))
    login("rita")
    page.goto(f"/p/{project.slug}/review/")
    return _wait_for_card(page, page.get_attribute("#review-card", "data-task"))


def _label(task_id: str) -> set[str]:
    item_id = ReviewTask.objects.get(pk=int(task_id)).item_id
    row = ResolvedLabel.objects.filter(item_id=item_id).first()
    return set(row.classes.values_list("name", flat=True)) if row else set()


def test_z_after_a_correction_brings_the_card_back_and_the_label_before_it(page, pets_queue, screenshot):
    first = pets_queue
    assert page.locator("#review-undo-form button").count() == 0  # no verdict yet: no Undo button
    page.keyboard.press("z")  # and z says why
    page.locator(".review-note").wait_for()
    assert page.inner_text(".review-note") == "Nothing to undo (verdicts can be undone for 5 minutes)."
    _wait_for_card(page, first)

    # c 2: corrected to dog; the next card comes, with an Undo button
    page.keyboard.press("c")
    page.keyboard.press("2")
    second = _wait_for_card(page, first, other=True)
    assert _label(first) == {"dog"}
    assert page.locator("#review-undo-form button").inner_text() == "Undo my last verdict z"

    # z: the first card again, open, the label back to cat, the verdict gone
    page.keyboard.press("z")
    _wait_for_card(page, first)
    screenshot("review-undo")
    assert "Undone: your verdict (correct) on image #" in page.inner_text("#review-card")
    assert _label(first) == {"cat"}
    assert not Review.objects.exists()
    assert ReviewTask.objects.get(pk=int(first)).done is False
    assert page.locator("#review-undo-form button").count() == 0

    # It can be judged again: accept, and the second card follows
    page.keyboard.press("a")
    assert _wait_for_card(page, first, other=True) == second
    assert [r.verdict for r in Review.objects.all()] == ["accept"]


def test_a_z_typed_ahead_of_the_next_card_is_not_applied(page, pets_queue):
    first = pets_queue

    # "a" then "z" the moment the next card's image is on screen: too soon to be meant for it
    page.evaluate("window.__tapNext = 'z'")
    page.keyboard.press("a")
    _wait_for_card(page, first, other=True)
    note = page.locator("#review-key-note")
    note.wait_for(state="visible")
    assert note.inner_text().startswith("Undo not applied")
    assert [r.verdict for r in Review.objects.all()] == ["accept"]
    assert ReviewTask.objects.get(pk=int(first)).done is True

    # The Undo button, clicked, withdraws it
    page.click("#review-undo-form button")
    _wait_for_card(page, first)
    assert not Review.objects.exists()
