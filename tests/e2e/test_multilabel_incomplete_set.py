"""A multi-label set that lost a key is never saved without it, however long the annotator paused.

The annotator presses 1 and Enter for one image and types the next image's 6 while that image is on its way: 6 is
refused. The burst guard lapses after BURST_MS (250 ms), so before, 2 and Enter typed 300 ms later saved the next image
as {2}: the set silently missed the 6 the annotator typed for it.
"""

from __future__ import annotations

import pytest

from labeling.models import Role, TaskType
from tests.e2e.conftest import CARD, next_card

from .test_multilabel_typed_ahead import SHAPES, refused_count, saved_sets

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

NOTE = (
    'Enter not applied: key "6" was not applied, so this set would miss it. Type the whole set again, then Enter; '
    "or Esc to start over without it."
)


@pytest.fixture
def six_lost(page, login, project_factory, label_class_factory, item_factory, member_of):
    """Annotator "ann" in the multi-label project "Shapes" (classes on keys 1-6) saves {circle} for the first image with
    1 and Enter, types 6 while the next image is on its way (refused), and waits 300 ms for it.
    Returns (user, first item id, second item id)."""
    project = project_factory(name="Shapes", slug="shapes", task_type=TaskType.MULTI, holdout_fraction=0.0)
    for key, name in SHAPES.items():
        label_class_factory(project=project, name=name, hotkey=key)
    for n in range(10):
        item_factory(project=project, priority=1000 - n, width=32, height=32)
    ann = member_of(project, Role.ANNOTATOR, "ann")
    login("ann")
    page.goto("/p/shapes/label/")
    first = page.wait_for_function(CARD).json_value()
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.keyboard.press("6")
    assert refused_count(page) == 1, "6 reached an image on screen: the test did not test a refused key"
    page.wait_for_timeout(300)
    second = next_card(page, first)
    return ann, int(first), int(second)


def ticked(page) -> list[str]:
    return page.locator("#label-form .class-btn.on").evaluate_all("els => els.map((b) => b.dataset.key).sort()")


def test_enter_on_a_set_that_lost_a_key_saves_nothing_and_names_the_key(page, six_lost):
    ann, first, second = six_lost

    # The annotator types the rest of the set after the pause
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    page.wait_for_timeout(600)

    # Then nothing is saved for the image, which stays, its set cleared, and the note names the missing key
    assert saved_sets(ann) == {first: ["circle"]}
    assert page.locator("#item-card").get_attribute("data-item") == str(second)
    assert page.locator("#key-note").text_content() == NOTE
    assert page.locator("#key-note").is_visible()
    assert ticked(page) == []

    # The annotator reads the note and types the whole set again: it is saved whole
    page.wait_for_timeout(400)
    for key in ["6", "2", "Enter"]:
        page.keyboard.press(key)
    next_card(page, second)
    assert saved_sets(ann) == {first: ["circle"], second: ["ring", "square"]}

    # And the note about the refused set is gone from the next image: the save does not read as refused again
    assert not page.locator("#key-note").is_visible()


def test_a_set_typed_again_before_enter_keeps_the_classes_already_ticked(page, six_lost):
    ann, first, second = six_lost

    # 2 is applied after the pause; the annotator sees 6's note and types the whole set again before Enter
    page.keyboard.press("2")
    page.wait_for_timeout(400)
    for key in ["6", "2", "Enter"]:
        page.keyboard.press(key)

    # Then 2 typed again keeps its tick (it does not untick it), and the set is saved whole
    next_card(page, second)
    assert saved_sets(ann) == {first: ["circle"], second: ["ring", "square"]}


def test_esc_drops_the_lost_key_and_starts_the_set_over(page, six_lost):
    ann, first, second = six_lost
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    page.wait_for_timeout(400)

    # The annotator meant 6 for the image before: Esc, then the set for this one
    page.keyboard.press("Escape")
    assert page.locator("#key-note").text_content() == 'Started over without key "6": type the set, then Enter.'
    page.wait_for_timeout(300)
    for key in ["3", "Enter"]:
        page.keyboard.press(key)

    next_card(page, second)
    assert saved_sets(ann) == {first: ["circle"], second: ["triangle"]}
    assert not page.locator("#key-note").is_visible()


def test_the_submit_button_on_a_set_that_lost_a_key_saves_nothing(page, six_lost):
    ann, first, _ = six_lost
    page.keyboard.press("2")

    page.locator("#label-form button.submit").click()
    page.wait_for_timeout(600)

    assert saved_sets(ann) == {first: ["circle"]}
    assert page.locator("#key-note").text_content() == NOTE.replace("Enter not applied", "Submit not applied", 1)
