"""An annotator who sits on an image is warned before their hold (lease) on it ends, told when it has ended, and what
the page then says about a label is what the server does with it.

The project's hold is 8 s here (LABELLOOP_LEASE_SECONDS; 10 minutes by default), so the warning shows for its
last 4 s (the last minute of a longer hold), and the page says it has run out 1 s before the server lets it go.
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


@pytest.fixture
def short_hold(page, login, settings, project_factory, label_class_factory, item_factory, member_of):
    """Annotator "ann" on the labeling page of "Pets" (classes cat: 1, dog: 2; 6 images) with an 8 s hold.
    Returns (project, the item id on the first card once it is on screen)."""
    settings.LABELLOOP_LEASE_SECONDS = LEASE_S
    project = project_factory(name="Pets", slug="pets", holdout_fraction=0.0)
    label_class_factory(project=project, name="cat", hotkey="1")
    label_class_factory(project=project, name="dog", hotkey="2")
    for n in range(6):
        item_factory(project=project, priority=100 - n)
    member_of(project, Role.ANNOTATOR, "ann")
    login("ann")
    page.goto("/p/pets/label/")
    return project, page.wait_for_function(CARD).json_value()


def wait_until_the_server_lets_go(item_id: str) -> None:
    expires = Item.objects.get(pk=item_id).lease_expires_at
    time.sleep(max(0.0, (expires - timezone.now()).total_seconds()) + 0.2)


def ann_labels(item_id: str) -> list[str]:
    labels = Annotation.objects.filter(item_id=item_id, user__username="ann")
    return list(labels.values_list("classes__name", flat=True))


def test_the_page_warns_before_the_hold_ends_says_when_it_ended_and_a_label_then_still_counts(
    page, screenshot, short_hold
):
    _, item_id = short_hold
    note = page.locator("#lease-note")
    assert note.is_hidden()

    # A warning with a countdown while the image is still the annotator's
    page.wait_for_selector("#lease-note[data-state=warning]", state="visible", timeout=LEASE_S * 1000)
    item = Item.objects.get(pk=item_id)
    assert item.lease_user.username == "ann"
    assert item.lease_expires_at > timezone.now()
    assert re.search(r"This image returns to the queue in 0:0[1-4]: label it now, or keep it", note.inner_text())
    # ... which a screen reader hears once, not at every second of the countdown (only .lease-say is live)
    said = page.locator("#lease-note .lease-say[role=status]").inner_text()
    assert re.fullmatch(r"This image returns to the queue in \d s: label it now, or press Space to keep it\.", said)
    assert page.locator("#lease-note [role=status], #lease-note[role=status]").count() == 1
    page.wait_for_timeout(1200)
    assert page.locator("#lease-note .lease-say").inner_text() == said
    screenshot("lease-warning")

    # Then, once it has run out, what a label does now
    page.wait_for_selector("#lease-note[data-state=expired]", state="visible", timeout=LEASE_S * 1000)
    assert "has run out" in note.inner_text()
    assert "A label you give still counts if no one has taken it" in note.inner_text()
    assert page.locator("#lease-note .lease-say").inner_text().startswith("Your hold on this image has run out")
    # ... and the line under the image no longer says the image is reserved until a time that has passed
    assert "your hold ran out at" in page.locator("#item-card .meta").inner_text()
    assert "reserved for you" not in page.locator("#item-card .meta").inner_text()
    screenshot("lease-expired")

    # and it does: past the server's hold, with no one else on the image, the key labels it and the next one comes
    wait_until_the_server_lets_go(item_id)
    page.keyboard.press("1")
    after = next_card(page, item_id)
    assert ann_labels(item_id) == ["cat"]
    assert after != item_id
    assert page.locator("#lease-note").is_hidden()  # the next image has a hold of its own: no warning
    assert page.locator("#item-card .notice").count() == 0


def test_a_label_after_the_hold_ended_and_another_annotator_took_the_image_is_refused_and_the_page_says_so(
    page, screenshot, short_hold, member_of
):
    project, item_id = short_hold
    page.wait_for_selector("#lease-note[data-state=expired]", state="visible", timeout=2 * LEASE_S * 1000)
    wait_until_the_server_lets_go(item_id)
    # Another annotator asks for an image and gets this one
    bob = member_of(project, Role.ANNOTATOR, "bob")
    assert str(item_claim_next(project=project, user=bob).pk) == item_id

    page.keyboard.press("1")

    after = next_card(page, item_id)
    assert after != item_id
    notice = page.locator("#item-card .notice").inner_text()
    assert notice == (
        f"Your label of image #{item_id} was not saved: your hold on it had run out. "
        "Another annotator is working on this item."
    )
    assert ann_labels(item_id) == []
    screenshot("lease-refused")


def test_space_keeps_the_image_for_another_hold_and_the_card_stays_as_it_is(page, short_hold):
    _, item_id = short_hold
    page.wait_for_selector("#lease-note[data-state=warning]", state="visible", timeout=LEASE_S * 1000)
    before = Item.objects.get(pk=item_id).lease_expires_at

    page.keyboard.press(" ")

    page.wait_for_selector("#lease-note", state="hidden")
    assert Item.objects.get(pk=item_id).lease_expires_at > before
    assert page.locator("#item-card").get_attribute("data-item") == item_id
    # the old hold's end passes and the page does not say it has run out (the new one is counted down: 8 s from the
    # press); the image is still the annotator's, and a key labels it
    time.sleep(max(0.0, (before - timezone.now()).total_seconds()) + 0.3)
    assert page.locator("#lease-note").get_attribute("data-state") != "expired"
    assert "reserved for you until" in page.locator("#item-card .meta").inner_text()
    page.keyboard.press("2")
    next_card(page, item_id)
    assert ann_labels(item_id) == ["dog"]
