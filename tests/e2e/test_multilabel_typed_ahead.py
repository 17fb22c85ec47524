"""Multi-label sets typed ahead of the next image: an image's set is saved whole or not at all.

For each image the annotator presses each class key, then Enter, 50-150 ms apart, on a link where every request
takes half a second. Once a key of such a run is refused (the image was not on screen yet, or had appeared too
recently to be meant), the rest of the run is refused too, Enter included, and the page says so: before, the rest
went through and the image was saved with part of its set (item 3079: 6 refused, then 2 and Enter saved ['square']).
"""

from __future__ import annotations

import random

import pytest

from labeling.models import Annotation, Role, TaskType
from tests.e2e.conftest import CARD, next_card

from .test_labeling import RECORD

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

SHAPES = {"1": "circle", "2": "square", "3": "triangle", "4": "star", "5": "cross", "6": "ring"}

# Keys pressed at set times after the next card's image is on screen (no person can time them to the millisecond):
# set `window.__runNext` to [[key, ms after the image appeared], ...] before the press that brings that card.
TIMED_RUN = """(() => {
  document.addEventListener('htmx:afterSettle', () => {
    const run = window.__runNext;
    if (!run) return;
    window.__runNext = null;
    const go = () => run.forEach(([key, ms]) => setTimeout(
      () => document.body.dispatchEvent(new KeyboardEvent('keydown', {key, bubbles: true})), ms));
    const img = document.getElementById('item-image');
    if (!img || img.complete) go(); else img.addEventListener('load', go, {once: true});
  });
})();"""

# Every text the key note shows, in order (the note keeps only the last).
NOTES = """() => {
  window.notes = [];
  const note = document.getElementById('key-note');
  new MutationObserver(() => window.notes.push(note.textContent)).observe(note, {childList: true, characterData: true});
}"""


@pytest.fixture
def shapes(page, login, project_factory, label_class_factory, item_factory, member_of):
    """Annotator "ann" on the labeling page of the multi-label project "Shapes": six classes on keys 1-6, 40 images.
    Returns (project, user, the item on the first card once its image is on screen)."""
    project = project_factory(name="Shapes", slug="shapes", task_type=TaskType.MULTI, holdout_fraction=0.0)
    for key, name in SHAPES.items():
        label_class_factory(project=project, name=name, hotkey=key)
    for n in range(40):
        item_factory(project=project, priority=1000 - n, width=32, height=32)
    ann = member_of(project, Role.ANNOTATOR, "ann")
    page.add_init_script(TIMED_RUN)
    login("ann")
    page.goto("/p/shapes/label/")
    first = page.wait_for_function(CARD).json_value()
    page.evaluate(NOTES)
    return project, ann, first


def saved_sets(user) -> dict[int, list[str]]:
    """item id -> the sorted class names of each set "ann" saved."""
    mine = Annotation.objects.filter(user=user, skipped=False).prefetch_related("classes")
    return {a.item_id: sorted(c.name for c in a.classes.all()) for a in mine}


def refused_count(page) -> int:
    return int(page.locator("#key-note").get_attribute("data-refused") or 0)


def test_a_set_whose_first_key_came_too_soon_is_not_saved_in_part(page, shapes):
    _, ann, first = shapes
    # The next image's set, typed ahead: 6 lands 20 ms after its image appears (too soon to be meant for it), then
    # 2 and Enter, 110 and 90 ms apart: one run of keys.
    page.evaluate("window.__runNext = [['6', 20], ['2', 130], ['Enter', 220]]")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    second = next_card(page, first)
    page.wait_for_timeout(600)

    notes = page.evaluate("window.notes")
    too_soon = 'Key "6" not applied: the image had changed'
    assert notes[0].startswith(too_soon), "6 was not too soon: the test did not test it"
    # Then none of the run was applied: no toggle, no set saved for the image, and the page says why
    assert saved_sets(ann) == {int(first): ["circle"]}
    assert refused_count(page) == 3
    assert notes[-1] == (
        "Enter not applied: it came in one run of keys with a key that was refused, so this image's set would miss "
        "a class. 3 keys not applied since your last pause. Pause, then type the whole set again."
    )
    assert page.locator("#label-form .class-btn.on").count() == 0

    # After a pause the annotator types the set again, and it is saved whole
    for key in ["6", "2", "Enter"]:
        page.keyboard.press(key)
    next_card(page, second)
    assert saved_sets(ann) == {int(first): ["circle"], int(second): ["ring", "square"]}


def test_on_a_slow_link_sets_typed_ahead_are_saved_whole_or_not_at_all(page, shapes):
    _, ann, _ = shapes
    # Every request takes half a second more, as on the tester's connection
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 500, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    page.evaluate(RECORD)
    rng = random.Random(3079)
    pairs = [("6", "2"), ("5", "4"), ("1", "3"), ("2", "5"), ("4", "6"), ("3", "1"), ("6", "5"), ("2", "4"),
             ("1", "5"), ("3", "6"), ("4", "1"), ("2", "3"), ("5", "6"), ("1", "2")]  # fmt: skip

    # The annotator types each image's set and Enter, 50-150 ms a key, and starts the next set after a short look
    for pair in pairs:
        for key in [*pair, "Enter"]:
            page.keyboard.press(key)
            page.wait_for_timeout(rng.randint(50, 150))
        page.wait_for_timeout(rng.randint(260, 600))
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request') && document.getElementById('item-card').dataset.ready"
    )
    page.wait_for_timeout(800)

    # Then every set saved is one the annotator typed, whole: none lost a class of its run
    typed = {tuple(sorted(SHAPES[k] for k in pair)) for pair in pairs}
    saved = saved_sets(ann)
    partial = {item: names for item, names in saved.items() if tuple(names) not in typed}
    assert not partial, f"images saved with part of a set: {partial}"
    # Each set was typed, all of its run, while its image was on screen
    presses, cards = page.evaluate("window.keyLog"), page.evaluate("window.cardLog")
    for annotation in Annotation.objects.filter(user=ann).prefetch_related("classes"):
        shown = annotation.shown_at.timestamp() * 1000
        windows = [c for c in cards if c["item"] == str(annotation.item_id)]
        on_screen = [p for p in presses if p["t"] >= shown and any(
            c["from"] <= p["t"] < (c["until"] or float("inf")) for c in windows)]  # fmt: skip
        runs = {tuple(sorted(p["key"] for p in on_screen[i : i + 2])) for i in range(len(on_screen) - 2)
                if on_screen[i + 2]["key"] == "Enter"}  # fmt: skip
        keys = tuple(sorted(k for k, name in SHAPES.items() if name in {c.name for c in annotation.classes.all()}))
        assert keys in runs, f"item {annotation.item_id}: its set {keys} was not typed while its image was on screen"
    # Every key was applied or refused where the annotator sees it, and some of each happened
    keys = [p["key"] for p in presses]
    assert len(keys) == 3 * len(pairs)
    assert len(saved) >= 2, "hardly any set was saved"
    assert 3 * len(saved) + refused_count(page) == len(keys)
    notes = page.evaluate("window.notes")
    assert any(n.endswith("not applied: still saving your last answer: wait for the next image.") for n in notes), (
        "no key came while a set was being saved: the test did not test typing ahead"
    )
    assert not any("Press it again" in n for n in notes if "still saving" in n)
