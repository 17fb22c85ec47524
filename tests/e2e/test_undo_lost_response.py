"""Answers that never arrive, and answers on their way, on the labeling page.

A response lost on the way back (the server did the work, the connection reset) leaves the outcome unknown: the page
says so instead of "Not saved", and the press it asks for is safe. A z pressed again withdraws nothing more (the undo
names the label it withdraws; before, it withdrew the label before as well), and a label key pressed again says the
label was saved, and which. While an answer is on its way, the card shows it (dimmed image, "Saving…", aria-busy) and
keys pressed meanwhile say to wait, not to press again.
"""

from __future__ import annotations

import threading

import pytest

import labeling.views.label as label_views
from labeling.models import Annotation
from tests.e2e.conftest import CARD, labels_by_ann, next_card

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def lose_the_answer_once(page, url_glob: str) -> list[str]:
    """The next request to `url_glob` reaches the server, which answers; the answer is dropped (connection reset).
    Later requests go through. Returns the list of URLs whose answer was lost (filled when it happens)."""
    lost: list[str] = []

    def handle(route):
        if lost:
            route.continue_()
            return
        route.fetch()  # the server does the work
        lost.append(route.request.url)
        route.abort("connectionreset")

    page.route(url_glob, handle)
    return lost


def live_labels() -> dict[int, str]:
    """item id -> class of every label by "ann" that stands (not withdrawn)."""
    withdrawn = Annotation.objects.filter(undoes__isnull=False).values_list("undoes_id", flat=True)
    mine = Annotation.objects.filter(user__username="ann", skipped=False, undoes__isnull=True)
    return dict(mine.exclude(pk__in=list(withdrawn)).values_list("item_id", "classes__name"))


def card_says(page, text: str) -> str:
    """Wait until the card shows `text`; the card's whole text."""
    page.wait_for_function("t => document.getElementById('item-card').innerText.includes(t)", arg=text)
    return page.locator("#item-card").inner_text()


def test_a_z_pressed_again_after_its_answer_was_lost_withdraws_one_label_not_two(page, pets_labeling):
    # Given an annotator who labeled two images: cat, then dog
    _, _, first = pets_labeling
    page.keyboard.press("1")
    second = next_card(page, first)
    page.keyboard.press("2")
    third = next_card(page, second)

    # When she presses z, the server withdraws "dog", and its answer is lost on the way back
    lost = lose_the_answer_once(page, "**/p/pets/label/undo/")
    page.keyboard.press("z")
    text = card_says(page, "may have been withdrawn already")

    # Then the page does not claim it was not done, and still shows the image it showed
    assert lost
    assert "Not saved" not in text
    assert "Press z again: if it was, the page says so and withdraws nothing more." in text
    assert page.evaluate(CARD) == third
    assert live_labels() == {int(first): "cat"}

    # When she presses z again, as told
    page.keyboard.press("z")

    # Then that press withdraws nothing more: "cat" stands, and the page says "dog" was withdrawn already
    text = card_says(page, "Already undone")
    assert f"Already undone: your label “dog” of image #{second} was withdrawn. Nothing changed." in text
    assert live_labels() == {int(first): "cat"}
    assert Annotation.objects.filter(undoes__isnull=False).count() == 1
    # and the image whose label was withdrawn comes back to be labeled again
    shown = page.wait_for_function(CARD).json_value()
    while shown != second:
        page.keyboard.press("1")
        shown = next_card(page, shown)
    page.keyboard.press("1")
    next_card(page, second)
    assert live_labels()[int(second)] == "cat"


def test_a_label_whose_answer_was_lost_may_be_saved_and_pressing_again_says_it_was(page, pets_labeling):
    # Given an annotator whose label of the first image is saved, but whose page never got the answer
    _, _, first = pets_labeling
    lose_the_answer_once(page, f"**/p/pets/label/{first}/")
    page.keyboard.press("1")
    text = card_says(page, "may not have been saved")

    # Then the page does not say it was not saved, and tells her what pressing again will do
    assert "Not saved" not in text
    assert "Press the key again: if it was, the page says so and changes nothing." in text
    assert labels_by_ann() == {int(first): "cat"}

    # When she presses a key again, as told
    page.keyboard.press("2")
    second = next_card(page, first)

    # Then the page says her label was saved and which it is (not "another tab?"), nothing changed, and it moves on
    text = page.locator("#item-card").inner_text()
    assert f"You have already labeled image #{first}: your label “cat” is saved. Nothing changed." in text
    assert "another tab" not in text
    assert labels_by_ann() == {int(first): "cat"}
    assert second != first


@pytest.fixture
def hold(monkeypatch):
    """hold(name) -> Event: the labeling view's service `name` (annotation_create, annotation_undo) waits for the
    event before it runs. The live server runs in this process, so the view's module is patched."""
    events: list[threading.Event] = []

    def make(name: str) -> threading.Event:
        release, real = threading.Event(), getattr(label_views, name)

        def held(**kwargs):
            release.wait(timeout=30)
            return real(**kwargs)

        monkeypatch.setattr(label_views, name, held)
        events.append(release)
        return release

    yield make
    for release in events:  # never leave a server thread waiting
        release.set()


IMAGE_OPACITY = "() => Number(getComputedStyle(document.getElementById('item-image')).opacity)"


def test_while_an_answer_is_on_its_way_the_card_says_so_and_keys_say_to_wait(page, pets_labeling, hold, screenshot):
    _, _, first = pets_labeling
    card, pending, note = page.locator("#item-card"), page.locator("#pending-note"), page.locator("#key-note")
    assert card.get_attribute("aria-busy") is None
    assert pending.is_hidden()

    # When a label is on its way (the server holds it)
    release = hold("annotation_create")
    page.keyboard.press("1")

    # Then the card is busy, dimmed and says it is saving; a key pressed meanwhile says to wait, not to press again
    page.wait_for_function("() => document.getElementById('item-card').getAttribute('aria-busy') === 'true'")
    pending.wait_for()
    assert pending.inner_text() == "Saving your last answer…"
    page.wait_for_function(f"() => ({IMAGE_OPACITY})() < 0.6")
    page.keyboard.press("2")
    assert note.inner_text() == 'Key "2" not applied: still saving your last answer: wait for the next image.'
    screenshot("label-pending")

    # When the answer arrives, the next image is shown as usual
    release.set()
    second = next_card(page, first)
    assert card.get_attribute("aria-busy") is None
    assert pending.is_hidden()
    assert page.evaluate(IMAGE_OPACITY) == 1
    assert labels_by_ann() == {int(first): "cat"}

    # An undo on its way says so too
    release = hold("annotation_undo")
    page.keyboard.press("z")
    pending.wait_for()
    assert pending.inner_text() == "Undoing your last label…"
    page.keyboard.press("s")
    assert note.inner_text() == 'Key "s" not applied: still undoing your last label: wait for the next image.'
    release.set()
    assert next_card(page, second) == first
    assert pending.is_hidden()
    assert live_labels() == {}
