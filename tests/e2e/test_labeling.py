"""An annotator labels in a real browser: number keys, undo, skip, multi-label with taxonomy search, grid,
and keys typed ahead of the next image (queued, one item each, dropped on a server error)."""

from __future__ import annotations

import itertools
import threading

import pytest

import labeling.views.label as label_views
from labeling.models import Annotation, ResolvedLabel, Role, TaskType
from labeling.services.annotations import annotation_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def current_item(page) -> str:
    return page.locator("#item-card").get_attribute("data-item")


def press_and_wait_for_next(page, key: str) -> None:
    before = current_item(page)
    page.keyboard.press(key)
    page.wait_for_function("old => document.getElementById('item-card').dataset.item !== old", arg=before)


def test_annotator_labels_undoes_skips_uses_taxonomy_and_grid(
    page, login, screenshot, project_factory, label_class_factory, item_factory, member_of
):
    flat = project_factory(name="Pets", slug="pets", holdout_fraction=0.0, instructions="Label the main animal.")
    cat = label_class_factory(project=flat, name="cat", hotkey="1")
    dog = label_class_factory(project=flat, name="dog", hotkey="2")
    label_class_factory(project=flat, name="bird", hotkey="3")
    for n in range(40):
        item_factory(project=flat, priority=1000 - n, width=32, height=32)
    user = member_of(flat, Role.ANNOTATOR, "ann")

    tree = project_factory(name="Scenes", slug="scenes", task_type=TaskType.MULTI, holdout_fraction=0.0)
    animal = label_class_factory(project=tree, name="animal", hotkey="1")
    vehicle = label_class_factory(project=tree, name="vehicle", hotkey="4")
    kitten = label_class_factory(project=tree, name="kitten", hotkey="2", parent=animal)
    label_class_factory(project=tree, name="puppy", hotkey="3", parent=animal)
    label_class_factory(project=tree, name="car", hotkey="5", parent=vehicle)
    truck = label_class_factory(project=tree, name="truck", hotkey="6", parent=vehicle)
    scene = item_factory(project=tree)
    member_of(tree, Role.ANNOTATOR, "ann")

    login("ann")
    page.goto("/p/pets/label/")
    page.wait_for_selector("#item-image")
    labeled = []
    for n in range(10):
        labeled.append(int(current_item(page)))
        press_and_wait_for_next(page, "1" if n % 2 == 0 else "2")
    assert "10" in page.locator("#mine-today").inner_text()

    # Undo brings the last image back; label it again (as dog this time), then skip the next one.
    press_and_wait_for_next(page, "z")
    assert int(current_item(page)) == labeled[-1]
    press_and_wait_for_next(page, "2")
    skipped = int(current_item(page))
    press_and_wait_for_next(page, "s")
    page.keyboard.press("?")
    assert page.locator("#shortcuts-overlay").is_visible()
    page.keyboard.press("Escape")
    screenshot("labeling-page")

    mine = Annotation.objects.filter(user=user, item__project=flat)
    assert mine.filter(skipped=False, undoes__isnull=True).count() == 11
    assert mine.filter(undoes__isnull=False).count() == 1
    assert list(mine.filter(skipped=True).values_list("item_id", flat=True)) == [skipped]
    resolved = {r.item_id: [c.pk for c in r.classes.all()] for r in ResolvedLabel.objects.filter(project=flat)}
    assert sorted(resolved) == sorted(labeled)
    assert resolved[labeled[-1]] == [dog.pk]  # the undone "dog/cat" was relabelled
    assert resolved[labeled[0]] == [cat.pk]

    # Multi-label with a taxonomy: drill into "animal" by key, toggle kitten, search for truck, submit.
    page.goto("/p/scenes/label/")
    page.wait_for_selector("#item-image")
    assert not page.locator(".class-btn[data-key='2']").is_visible()
    page.keyboard.press("1")
    assert page.locator(".class-btn[data-key='2']").is_visible()
    page.keyboard.press("2")
    page.keyboard.press("Backspace")
    assert page.locator(".class-btn[data-key='4']").is_visible()
    page.keyboard.press("/")
    page.keyboard.type("truc")
    assert "vehicle / truck" in page.locator("#search-results").inner_text()
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    press_and_wait_for_next(page, "Enter")
    chosen = Annotation.objects.get(user=user, item=scene)
    assert set(chosen.classes.values_list("pk", flat=True)) == {kitten.pk, truck.pk}

    # Grid: select 12 thumbnails (click + shift-click), label them "bird" with the keyboard.
    page.goto("/p/pets/grid/?n=24")
    tiles = page.locator("#tiles .tile")
    assert tiles.count() == 24
    tiles.nth(0).click()
    tiles.nth(11).click(modifiers=["Shift"])
    assert page.locator("#selected-count").inner_text() == "12"
    page.select_option("#grid-class", label="bird")
    screenshot("grid-mode")
    picked = [int(tiles.nth(i).get_attribute("data-id")) for i in range(12)]
    page.locator("#tiles .tile").nth(11).focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Labeled 12 image(s) as bird")
    birds = Annotation.objects.filter(user=user, item__project=flat, classes__name="bird")
    assert sorted(birds.values_list("item_id", flat=True)) == sorted(picked)
    assert ResolvedLabel.objects.filter(project=flat).count() == 10 + 12


# Every card the page shows, in order (the first one included): each typed-ahead key must land on the next of them.
RECORD_CARDS = """() => {
  window.cardsShown = [document.getElementById('item-card').dataset.item];
  window.mostQueued = 0;
  new MutationObserver(() => {
    const card = document.getElementById('item-card');
    if (card && card.dataset.item !== window.cardsShown.at(-1)) window.cardsShown.push(card.dataset.item);
    const queued = parseInt(document.getElementById('key-queue').textContent, 10) || 0;
    window.mostQueued = Math.max(window.mostQueued, queued);
  }).observe(document.querySelector('.label-page'), {childList: true, subtree: true, characterData: true});
}"""


@pytest.fixture
def hold_labels(monkeypatch):
    """hold_labels(fail_call=None) -> Event: the server holds each label write until the event is set; the
    `fail_call`-th write fails instead (a 500). The live server runs in this process, so the view is patched."""
    releases = []

    def hold(fail_call: int | None = None) -> threading.Event:
        release, calls = threading.Event(), itertools.count(1)

        def held_create(**kwargs):
            if next(calls) == fail_call:
                raise RuntimeError("the label could not be saved")
            release.wait(timeout=30)
            return annotation_create(**kwargs)

        monkeypatch.setattr(label_views, "annotation_create", held_create)
        releases.append(release)
        return release

    yield hold
    for release in releases:  # never leave a server thread waiting
        release.set()


@pytest.fixture
def pets(project_factory, label_class_factory, item_factory, member_of):
    project = project_factory(name="Pets", slug="pets", holdout_fraction=0.0)
    classes = {
        key: label_class_factory(project=project, name=name, hotkey=key)
        for key, name in [("1", "cat"), ("2", "dog"), ("3", "bird")]
    }
    for n in range(30):
        item_factory(project=project, priority=1000 - n, width=32, height=32)
    user = member_of(project, Role.ANNOTATOR, "ann")
    return project, classes, user


def wait_until_drained(page) -> None:
    page.wait_for_function(
        "() => document.getElementById('key-queue').hidden && !document.querySelector('.htmx-request')"
    )


def labels_in_order(user, project) -> list[tuple[int, list[str]]]:
    mine = Annotation.objects.filter(user=user, item__project=project).order_by("pk").prefetch_related("classes")
    return [(a.item_id, [c.name for c in a.classes.all()]) for a in mine]


def test_keys_pressed_back_to_back_label_one_item_each_in_order(page, login, pets):
    project, classes, user = pets
    login("ann")
    page.goto("/p/pets/label/")
    page.wait_for_selector("#item-image")
    page.evaluate(RECORD_CARDS)

    keys = ["1", "2", "3", "1", "1", "2", "3", "2"]
    for key in keys:  # no waiting between presses: a fast annotator types ahead of the images
        page.keyboard.press(key)
    page.wait_for_function("n => document.getElementById('mine-today').textContent.trim() === String(n)", arg=len(keys))
    wait_until_drained(page)

    assert page.evaluate("window.mostQueued") >= 1, "the keys never had to wait: nothing was typed ahead"
    shown = [int(i) for i in page.evaluate("window.cardsShown")]
    labels = labels_in_order(user, project)
    assert [names for _, names in labels] == [[classes[k].name] for k in keys]
    assert [item for item, _ in labels] == shown[: len(keys)]  # each key labeled the card shown after the last one
    assert len(set(shown[: len(keys)])) == len(keys)
    assert not page.locator(".notice-error").count()


def test_typed_ahead_keys_are_capped_and_help_keys_are_not_queued(page, login, screenshot, pets, hold_labels):
    _, classes, user = pets
    login("ann")
    page.goto("/p/pets/label/")
    page.wait_for_selector("#item-image")
    page.evaluate(RECORD_CARDS)
    release = hold_labels()

    page.keyboard.press("1")  # the server holds this label: every key from here on waits for the next card
    page.wait_for_function("() => !!document.querySelector('.htmx-request')")
    page.keyboard.press("?")
    assert page.locator("#shortcuts-overlay").is_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("i")
    page.keyboard.press("Escape")
    page.keyboard.press("/")  # search belongs to the card being replaced: neither focused nor queued
    keys = ["2", "3", "s", "1", "2", "3", "1", "2", "3", "1"]
    for key in keys:
        page.keyboard.press(key)
    assert page.locator("#key-queue").inner_text() == "10 queued: 2 3 s 1 2 3 1 2 3 1"
    page.keyboard.press("2")  # the 11th key typed ahead is refused, visibly
    assert "full" in page.locator("#key-queue").inner_text()
    screenshot("labeling-keys-queued")
    assert Annotation.objects.filter(user=user).count() == 0

    release.set()
    wait_until_drained(page)
    page.wait_for_function("() => document.getElementById('mine-today').textContent.trim() === '10'")

    shown = [int(i) for i in page.evaluate("window.cardsShown")]
    mine = list(Annotation.objects.filter(user=user).order_by("pk").prefetch_related("classes"))
    assert [a.item_id for a in mine] == shown[:11]
    assert len({a.item_id for a in mine}) == 11
    assert [("skip" if a.skipped else a.classes.get().name) for a in mine] == [
        "skip" if k == "s" else classes[k].name for k in ["1", *keys]
    ]
    assert page.locator("#class-search").input_value() == ""


def test_a_failed_request_drops_the_typed_ahead_keys_and_says_so(page, login, pets, hold_labels):
    project, _, user = pets
    login("ann")
    page.goto("/p/pets/label/")
    page.wait_for_selector("#item-image")
    first = int(current_item(page))
    release = hold_labels(fail_call=2)  # the first label is held, the second fails with a server error

    page.keyboard.press("1")
    page.wait_for_function("() => !!document.querySelector('.htmx-request')")
    for key in ["2", "3", "1"]:
        page.keyboard.press(key)
    assert page.locator("#key-queue").inner_text() == "3 queued: 2 3 1"
    release.set()

    # "2" went to the second card and failed: "3" and "1" must not land on any card.
    error = page.locator("#item-card .notice-error")
    error.wait_for()
    assert "500" in error.inner_text()
    assert "2 key(s) typed ahead were not applied" in error.inner_text()
    assert page.locator("#key-queue").is_hidden()
    second = int(current_item(page))
    assert labels_in_order(user, project) == [(first, ["cat"])]

    # The page is usable again: the next press labels the card that failed, once.
    press_and_wait_for_next(page, "3")
    assert labels_in_order(user, project) == [(first, ["cat"]), (second, ["bird"])]
