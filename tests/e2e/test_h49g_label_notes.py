"""The notes on the labeling page keep out of the image's way: the hold's warning and its "run out" note sit in a room
above the image (they hid up to 35 px of its top), the notice about a refused label has that room too (in the progress
strip it wrapped "labeled by you today" onto two lines and pushed the image down), and neither moves the image.
The hold's words are exact: a 150 s hold is "2 min 30 s", not "2 min", and it ends at a time given to the second.

Screenshots go to LABELLOOP_TEST_ARTIFACTS (h49g-*.png).
"""

from __future__ import annotations

import re
import time

import pytest
from django.utils import timezone

from labeling.models import Annotation, Item, Role
from labeling.services.queue import item_claim_next

from .conftest import CARD, next_card

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

LEASE_S = 8


def box(page, selector: str) -> dict:
    return page.locator(selector).bounding_box()


def below(upper: dict, lower: dict) -> bool:
    """`upper` ends where `lower` starts or above it: it hides none of it."""
    return upper["y"] + upper["height"] <= lower["y"] + 0.5


@pytest.fixture
def tall_images(page, login, settings, project_factory, label_class_factory, item_factory, member_of):
    """Annotator "ann" on the labeling page of "Pets" (cat: 1, dog: 2): 6 tall images (600 x 900, as tall as the page
    lets them be, so anything over the image's top hides some of it), an 8 s hold. Returns (project, first item id)."""
    settings.LABELLOOP_LEASE_SECONDS = LEASE_S
    project = project_factory(name="Pets", slug="pets", holdout_fraction=0.0)
    label_class_factory(project=project, name="cat", hotkey="1")
    label_class_factory(project=project, name="dog", hotkey="2")
    for n in range(6):
        item_factory(project=project, priority=100 - n, width=600, height=900)
    member_of(project, Role.ANNOTATOR, "ann")
    login("ann")
    page.goto("/p/pets/label/")
    return project, page.wait_for_function(CARD).json_value()


def test_the_hold_notes_sit_above_the_image_and_do_not_move_it(page, screenshot, tall_images):
    _, item_id = tall_images
    image = box(page, "#item-image")

    page.wait_for_selector("#lease-note[data-state=warning]", state="visible", timeout=LEASE_S * 1000)
    assert box(page, "#item-image") == image
    assert below(box(page, "#lease-note"), image)
    screenshot("h49g-warning")

    page.wait_for_selector("#lease-note[data-state=expired]", state="visible", timeout=LEASE_S * 1000)
    assert box(page, "#item-image") == image
    assert below(box(page, "#lease-note"), image)
    assert "A label you give still counts if no one has taken it" in page.locator("#lease-note").inner_text()
    assert page.locator("#item-card").get_attribute("data-item") == item_id
    screenshot("h49g-expired")


def test_a_refused_label_is_said_above_the_image_without_reflowing_the_strip_or_moving_the_image(
    page, screenshot, tall_images, member_of
):
    project, item_id = tall_images
    # The strip has a label in its counts first ("1 labeled by you today"), as in the annotator's session
    page.keyboard.press("2")
    item_id = next_card(page, item_id)
    strip, image = box(page, ".progress-strip"), box(page, "#item-image")
    one_line = box(page, ".progress-strip > span:first-child")["height"]

    page.wait_for_selector("#lease-note[data-state=expired]", state="visible", timeout=2 * LEASE_S * 1000)
    expires = Item.objects.get(pk=item_id).lease_expires_at
    time.sleep(max(0.0, (expires - timezone.now()).total_seconds()) + 0.2)
    bob = member_of(project, Role.ANNOTATOR, "bob")
    assert str(item_claim_next(project=project, user=bob).pk) == item_id
    page.keyboard.press("1")
    next_card(page, item_id)

    notice = page.locator("#item-card .notice")
    assert notice.inner_text().startswith(f"Your label of image #{item_id} was not saved")
    assert page.locator(".progress-strip .notice").count() == 0
    assert box(page, ".progress-strip") == strip
    assert box(page, ".progress-strip > span:first-child")["height"] == one_line
    assert box(page, "#item-image") == image
    assert below(box(page, "#item-card .notice"), image)
    assert not Annotation.objects.filter(item_id=item_id, user__username="ann").exists()
    screenshot("h49g-refused")


def test_a_150_s_hold_is_said_as_2_min_30_s_and_ends_at_a_time_to_the_second(
    page, screenshot, login, settings, project_factory, label_class_factory, item_factory, member_of
):
    settings.LABELLOOP_LEASE_SECONDS = 150
    project = project_factory(name="Pets", slug="pets", holdout_fraction=0.0)
    label_class_factory(project=project, name="cat", hotkey="1")
    item_factory(project=project)
    member_of(project, Role.ANNOTATOR, "ann")
    login("ann")
    page.clock.install()  # the countdown runs on the page's timers: 95 s pass in a moment
    page.goto("/p/pets/label/")
    item_id = page.wait_for_function(CARD).json_value()
    until = timezone.localtime(Item.objects.get(pk=item_id).lease_expires_at).strftime("%H:%M:%S")
    assert page.locator("#lease-until").inner_text() == until

    page.clock.run_for(95_000)

    text = page.locator("#lease-note[data-state=warning]").inner_text()
    assert re.search(r"returns to the queue in 0:\d\d: label it now, or keep it for another 2 min 30 s\.", text)
    screenshot("h49g-warning-150s")


def test_above_a_short_image_the_notes_room_is_at_the_top_of_the_stage(
    page, screenshot, login, project_factory, label_class_factory, item_factory, member_of
):
    # Given an annotator on the labeling page of a wide, short image (600 x 150): the stage is much taller than it
    project = project_factory(name="Strips", slug="strips", holdout_fraction=0.0)
    label_class_factory(project=project, name="cat", hotkey="1")
    item_factory(project=project, priority=100, width=600, height=150)
    member_of(project, Role.ANNOTATOR, "ann")
    login("ann")
    page.goto("/p/strips/label/")
    page.wait_for_function(CARD)

    # Then the notes' room starts at the top of the stage (no dark band above it), and the image sits below it with
    # dark space left above and below the image and its caption
    stage, room, image, meta = (box(page, s) for s in (".stage", ".stage-notes", "#item-image", ".stage .meta"))
    assert room["y"] - stage["y"] <= 12, (stage, room)
    assert below(room, image)
    above = image["y"] - (room["y"] + room["height"])
    under = stage["y"] + stage["height"] - (meta["y"] + meta["height"])
    assert above > 40, (above, under)
    assert abs(above - under) <= 24, (above, under)
    screenshot("h50-short-image")
