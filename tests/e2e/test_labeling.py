"""An annotator labels in a real browser: number keys, undo, skip, multi-label with taxonomy search, grid;
keys typed ahead of the next image (applied only to the image on screen when pressed, never to one nobody saw),
a 150-class four-level taxonomy labeled by per-level keys, transparent images, and a page that does not jump."""

from __future__ import annotations

import io
import itertools
import re
import threading

import pytest
from django.utils import timezone
from PIL import Image, ImageDraw

import labeling.views.label as label_views
from labeling.models import Annotation, ResolvedLabel, Role, TaskType
from labeling.services.annotations import annotation_create
from labeling.services.projects import label_class_create, label_classes_from_paths
from tests.factories import taxonomy_paths

from .second_tap import second_tap_script

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def current_item(page) -> str:
    return page.locator("#item-card").get_attribute("data-item")


def wait_ready(page) -> None:
    """Until the card takes keys: settled, and its image displayed (label.js sets data-ready)."""
    page.wait_for_function("() => document.getElementById('item-card').dataset.ready === '1'")


def press_and_wait_for_next(page, key: str) -> None:
    before = current_item(page)
    page.keyboard.press(key)
    page.wait_for_function("old => document.getElementById('item-card').dataset.item !== old", arg=before)
    wait_ready(page)


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
    wait_ready(page)
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

    # Multi-label with a taxonomy: drill into "animal" by key, toggle kitten (each level has keys of its own:
    # the stored 1/4/2/3/5/6 give way to 1-2 per level), search for truck, submit.
    page.goto("/p/scenes/label/")
    wait_ready(page)
    assert not page.locator(f".class-btn[data-id='{kitten.pk}']").is_visible()
    page.keyboard.press("1")
    assert page.locator(f".class-btn[data-id='{kitten.pk}'] kbd").inner_text() == "1"
    page.keyboard.press("1")
    page.keyboard.press("Backspace")
    assert page.locator(f".class-btn[data-id='{vehicle.pk}'] kbd").inner_text() == "2"
    page.keyboard.press("/")
    page.keyboard.type("truc")
    assert "vehicle / truck" in page.locator("#search-results").inner_text()
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    press_and_wait_for_next(page, "Enter")
    chosen = Annotation.objects.get(user=user, item=scene)
    assert set(chosen.classes.values_list("pk", flat=True)) == {kitten.pk, truck.pk}

    # Grid: select 12 thumbnails (click + shift-click), label them "bird" with the keyboard.
    grid_opened = timezone.now()
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
    page.wait_for_selector("text=Labeled 12 images as bird")
    birds = Annotation.objects.filter(user=user, item__project=flat, classes__name="bird")
    assert sorted(birds.values_list("item_id", flat=True)) == sorted(picked)
    # Grid labels record when their tiles were shown: after the grid was opened, before the label was made.
    assert all(grid_opened <= a.shown_at <= a.created_at for a in birds)
    assert ResolvedLabel.objects.filter(project=flat).count() == 10 + 12


# --- keys typed ahead of the next image ---

# The test's own record of what the annotator saw and pressed, independent of label.js: each card with the
# time it entered the page and the time it left, and each keydown with its time and whether it went to the search.
RECORD = """() => {
  window.keyLog = [];
  window.cardLog = [];
  addEventListener('keydown', (e) => window.keyLog.push(
    {key: e.key, t: Date.now(), search: Boolean(e.target && e.target.id === 'class-search')}), true);
  let node = document.getElementById('item-card');
  window.cardLog.push({item: node.dataset.item, from: 0, until: null});
  const note = () => {
    const card = document.getElementById('item-card');
    if (!card || card === node) return;
    const t = Date.now();
    window.cardLog.at(-1).until = t;
    window.cardLog.push({item: card.dataset.item, from: t, until: null});
    node = card;
  };
  // htmx's swap event, caught on window before any handler of the page runs (so before the page can mark the
  // image shown), in the same task as the swap (no key press can come between); the observer catches the rest.
  addEventListener('htmx:afterSwap', note, true);
  new MutationObserver(note).observe(document.querySelector('.label-page'), {childList: true, subtree: true});
}"""

ANIMALS = ["ant", "bear", "cat", "deer", "eel", "fox", "goat", "hen", "ibis", "jay", "koala", "lion", "mole",
           "newt", "owl", "pig", "quail", "rat", "seal", "tiger", "urchin", "vole", "wolf", "yak"]  # fmt: skip


@pytest.fixture
def zoo(project_factory, item_factory, member_of):
    """24 classes made the way a manager makes them (keys 1-9, then letters), 80 items, one annotator."""
    project = project_factory(name="Zoo", slug="zoo", holdout_fraction=0.0)
    classes = [label_class_create(project=project, name=name) for name in ANIMALS]
    for n in range(80):
        item_factory(project=project, priority=1000 - n, width=32, height=32)
    user = member_of(project, Role.ANNOTATOR, "ann")
    return project, {c.hotkey: c for c in classes}, user


def wait_idle(page) -> None:
    """Until no card request is in flight and the card on screen takes keys, twice 300 ms apart."""
    for _ in range(2):
        page.wait_for_function(
            "() => !document.querySelector('.htmx-request') && document.getElementById('item-card').dataset.ready"
        )
        page.wait_for_timeout(300)


def check_every_label_was_for_an_image_on_screen(page, user, project, keys_by_class) -> list[Annotation]:
    """Each annotation matches its own key press (in order, one each), pressed outside the search while the card
    of that annotation's item was on the page and after the moment its image was shown (shown_at)."""
    cards = page.evaluate("window.cardLog")
    presses = page.evaluate("window.keyLog")
    mine = list(Annotation.objects.filter(user=user, item__project=project).order_by("pk").prefetch_related("classes"))
    used = -1
    for annotation in mine:
        assert annotation.shown_at is not None, "the page did not say when the image was shown"
        shown = annotation.shown_at.timestamp() * 1000
        key = "s" if annotation.skipped else keys_by_class[annotation.classes.get().pk]
        windows = [c for c in cards if c["item"] == str(annotation.item_id)]
        assert windows, f"item {annotation.item_id} was labeled but never on screen"
        assert any(c["from"] <= shown < (c["until"] or float("inf")) for c in windows), (
            f"item {annotation.item_id} marked shown at {shown:.0f}, outside its time on screen {windows}"
        )
        match = next(
            (
                i
                for i, p in enumerate(presses)
                if i > used
                and p["key"] == key
                and not p["search"]
                and p["t"] >= shown
                and any(c["from"] <= p["t"] < (c["until"] or float("inf")) for c in windows)
            ),
            None,
        )
        assert match is not None, f"{key!r} on item {annotation.item_id}: no such key while its image was on screen"
        used = match
    return mine


@pytest.mark.parametrize("pause_ms", [0, 60], ids=["machine-speed", "60ms-per-key"])
def test_keys_typed_ahead_only_label_the_image_on_screen_and_search_text_never_labels(page, login, zoo, pause_ms):
    project, classes, user = zoo
    keys_by_class = {c.pk: key for key, c in classes.items()}

    # Labels by digits and c/d/e/j (h is the heatmap key); search for goat/wolf/koala, whose letters
    # (g o a t w l f k) are class keys too.
    def search(word: str) -> list[str]:
        return ["/", *word, "Escape"]

    script, label_keys = [], []
    for _ in range(3):
        for step in ["1", "2", "c", search("goat"), "3", "s", "d", "4", search("wolf"), "5", "e", "6", "j", "7",
                     search("koala"), "8", "9", "s"]:  # fmt: skip
            script += step if isinstance(step, list) else [step]
            label_keys += [] if isinstance(step, list) else [step]
    search_letters = {k for k in "goatwlfk" if k in classes}
    assert len(search_letters) >= 5  # the search text is made of class keys

    login("ann")
    page.goto("/p/zoo/label/")
    wait_ready(page)
    page.evaluate(RECORD)
    for key in script:
        page.keyboard.press(key)
        if pause_ms:
            page.wait_for_timeout(pause_ms)
    wait_idle(page)

    mine = check_every_label_was_for_an_image_on_screen(page, user, project, keys_by_class)
    # At machine speed most keys come within 100 ms of a new image and are refused by design (label.js REACTION_MS);
    # the first one, on the page's first card, is always taken.
    assert len(mine) >= (1 if pause_ms == 0 else 3), "hardly any key was applied"
    assert len({a.item_id for a in mine}) == len(mine)  # one annotation per item
    assert not {keys_by_class[a.classes.get().pk] for a in mine if not a.skipped} & search_letters
    presses = page.evaluate("window.keyLog")
    assert sum(1 for p in presses if p["search"]) >= len("goatwolfkoala") * 3  # the search got every letter typed
    # Every label key pressed outside the search was either applied once or refused where the annotator sees it.
    refused = int(page.locator("#key-note").get_attribute("data-refused"))
    assert [p["key"] for p in presses if not p["search"] and p["key"] not in ("/", "Escape")] == label_keys
    assert len(mine) + refused == len(label_keys)
    if pause_ms == 0:
        assert refused > 0, "nothing was typed ahead: the test did not test it"


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


def labels_in_order(user, project) -> list[tuple[int, list[str]]]:
    mine = Annotation.objects.filter(user=user, item__project=project).order_by("pk").prefetch_related("classes")
    return [(a.item_id, [c.name for c in a.classes.all()]) for a in mine]


def test_while_the_next_image_loads_keys_are_refused_and_the_search_opens(page, login, screenshot, zoo, hold_labels):
    project, _, user = zoo
    page.set_viewport_size({"width": 1366, "height": 900})
    login("ann")
    page.goto("/p/zoo/label/")
    wait_ready(page)
    first = int(current_item(page))
    release = hold_labels()

    page.keyboard.press("1")  # the server holds this label: no image is on screen until the next one arrives
    page.wait_for_function("() => !!document.querySelector('.htmx-request')")
    page.keyboard.press("?")  # help still opens and closes
    assert page.locator("#shortcuts-overlay").is_visible()
    assert "background" in page.locator("#shortcuts-overlay").inner_text()
    page.keyboard.press("Escape")
    for key in ["2", "3", "s", "c"]:
        page.keyboard.press(key)
    note = page.locator("#key-note")
    assert note.is_visible()
    assert "not applied" in note.inner_text()
    assert note.get_attribute("data-refused") == "4"
    # ... where it hides neither a class button nor the image (in the bottom right corner it covered class buttons)
    hidden_under_note = page.evaluate(COVERED_BY_NOTE)
    assert hidden_under_note == [], hidden_under_note
    page.keyboard.press("/")  # the search opens while loading, and keeps what is typed when the card is replaced
    page.keyboard.type("goa")
    screenshot("labeling-keys-refused")
    release.set()
    page.wait_for_function("old => document.getElementById('item-card').dataset.item !== old", arg=str(first))
    wait_ready(page)
    second = int(current_item(page))

    assert page.evaluate("document.activeElement.id") == "class-search"
    assert page.locator("#class-search").input_value() == "goa"
    assert "goat" in page.locator("#search-results").inner_text()
    page.keyboard.type("t")
    page.keyboard.press("Escape")
    assert page.locator("#search-results").is_hidden()
    assert labels_in_order(user, project) == [(first, ["ant"])]  # nothing typed ahead was replayed

    press_and_wait_for_next(page, "2")
    assert labels_in_order(user, project) == [(first, ["ant"]), (second, ["bear"])]


# The class buttons and the image that the key note's box overlaps (by their text or id).
COVERED_BY_NOTE = """() => {
  const note = document.getElementById('key-note').getBoundingClientRect();
  const overlaps = (r) => r.width && r.height && r.left < note.right && note.left < r.right && r.top < note.bottom
    && note.top < r.bottom;
  return [...document.querySelectorAll('.class-btn, #item-image')]
    .filter((el) => overlaps(el.getBoundingClientRect())).map((el) => el.id || el.textContent.trim());
}"""


def open_zoo_with_second_tap(page, login) -> int:
    """ann on the zoo's labeling page, which can press the second key of a double tap (second_tap.py): the item."""
    page.add_init_script(second_tap_script("item-image"))
    login("ann")
    page.goto("/p/zoo/label/")
    wait_ready(page)
    return int(current_item(page))


def test_a_key_pressed_as_the_next_image_appears_is_too_soon_for_it_and_changes_nothing(page, login, zoo):
    project, _, user = zoo
    first = open_zoo_with_second_tap(page, login)

    # A double tap on "1": its second press lands as the next image appears, which no one can have seen yet
    page.evaluate("window.__tapNext = '1'")
    press_and_wait_for_next(page, "1")
    second = int(current_item(page))
    note = page.locator("#key-note")
    assert note.get_attribute("data-refused") == "1"
    text = note.inner_text()
    assert 'Key "1" not applied: the image had changed' in text
    assert "too soon to be meant for it" in text
    assert int(text.split("changed ")[1].split(" ms")[0]) < 100
    assert labels_in_order(user, project) == [(first, ["ant"])]

    # Once it has been on screen a moment, a key labels it
    press_and_wait_for_next(page, "2")
    assert labels_in_order(user, project) == [(first, ["ant"]), (second, ["bear"])]


def test_a_key_right_after_the_same_image_comes_back_with_an_error_is_taken(page, login, zoo):
    project, _, user = zoo
    first = open_zoo_with_second_tap(page, login)

    # A class the server refuses (400): the same image comes back with the reason. It was on screen all along, so
    # a key pressed the moment the card is re-rendered is meant for it and is taken.
    page.evaluate("document.querySelector('.class-btn[data-key=\"1\"]').value = '999999'")
    page.evaluate("window.__tapNext = '2'")
    page.keyboard.press("1")
    page.wait_for_function("old => document.getElementById('item-card').dataset.item !== old", arg=str(first))
    wait_ready(page)
    assert labels_in_order(user, project) == [(first, ["bear"])]
    assert page.locator("#key-note").get_attribute("data-refused") in (None, "0")


def test_a_failed_request_leaves_the_card_and_the_next_press_labels_it_once(page, login, pets, hold_labels):
    project, _, user = pets
    login("ann")
    page.goto("/p/pets/label/")
    wait_ready(page)
    first = int(current_item(page))
    release = hold_labels(fail_call=1)  # the first label fails with a server error

    page.keyboard.press("1")
    error = page.locator("#item-card .notice-error")
    error.wait_for()
    release.set()
    assert "500" in error.inner_text()
    assert int(current_item(page)) == first
    assert labels_in_order(user, project) == []

    # The page is usable again: the next press labels the card that failed, once.
    press_and_wait_for_next(page, "3")
    assert labels_in_order(user, project) == [(first, ["bird"])]


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


def test_the_undone_notice_does_not_move_the_image(page, login, pets):
    login("ann")
    page.goto("/p/pets/label/")
    wait_ready(page)
    first = current_item(page)
    press_and_wait_for_next(page, "1")
    before = page.locator("#item-image").bounding_box()

    press_and_wait_for_next(page, "z")

    assert current_item(page) == first
    assert "Undone" in page.locator("#item-card .notice").inner_text()
    after = page.locator("#item-image").bounding_box()
    assert after == pytest.approx(before, abs=0.5)
    press_and_wait_for_next(page, "s")  # "Skipped." neither
    assert "Skipped" in page.locator("#item-card .notice").inner_text()
    assert page.locator("#item-image").bounding_box() == pytest.approx(before, abs=0.5)


# --- a deep taxonomy by keys ---


def visible_classes(page) -> list[dict]:
    return page.evaluate("""() => Array.from(document.querySelectorAll('#label-form .class-btn'))
        .filter((b) => !b.hidden)
        .map((b) => ({id: Number(b.dataset.id), key: b.dataset.key, path: b.dataset.path,
                      children: b.dataset.children === '1'}))""")


def search_is_closed(page) -> bool:
    return page.evaluate("document.activeElement.id") != "class-search" and page.locator("#search-results").is_hidden()


def test_a_150_class_four_level_taxonomy_is_labeled_by_per_level_keys(
    page, login, screenshot, project_factory, item_factory, member_of
):
    project = project_factory(name="Clip art", slug="clipart", holdout_fraction=0.0)
    by_path = label_classes_from_paths(project=project, paths=taxonomy_paths())
    assert len(by_path) == 150
    for n in range(10):
        item_factory(project=project, priority=100 - n)
    user = member_of(project, Role.ANNOTATOR, "ann")
    login("ann")
    page.goto("/p/clipart/label/")
    wait_ready(page)

    top = visible_classes(page)
    assert len(top) == 22
    assert all(c["key"] for c in top), "a top-level class has no key"
    assert len({c["key"] for c in top}) == 22

    def press_path(path: str) -> int:
        """Press the key shown for each part of the path; returns how many keys that took."""
        parts = path.split("/")
        for depth in range(len(parts)):
            shown = {c["path"]: c for c in visible_classes(page)}
            target = shown[" / ".join(parts[: depth + 1])]
            if depth < len(parts) - 1:
                assert target["children"]
                page.keyboard.press(target["key"])
                assert search_is_closed(page)  # a drill-down never leaves the search open
            else:
                press_and_wait_for_next(page, target["key"])
        return len(parts)

    deep = "music/wild/red/two"
    first = int(current_item(page))
    assert press_path(deep) == 4
    # Up and down again: Backspace and Escape go up one level each; the leaf's key shows at its own level.
    second = int(current_item(page))
    music = next(c for c in visible_classes(page) if c["path"] == "music")
    page.keyboard.press(music["key"])
    wild = next(c for c in visible_classes(page) if c["path"] == "music / wild")
    page.keyboard.press(wild["key"])
    assert {c["path"] for c in visible_classes(page)} == {f"music / wild / {g}" for g in ("red", "green", "blue")}
    red = next(c for c in visible_classes(page) if c["path"] == "music / wild / red")
    page.keyboard.press(red["key"])
    assert [c["key"] for c in visible_classes(page)] == ["1", "2", "3"]
    assert search_is_closed(page)
    screenshot("label-hierarchy")
    page.keyboard.press("Backspace")
    page.keyboard.press("Escape")
    assert {c["path"] for c in visible_classes(page)} == {"music / wild", "music / farm"}
    page.keyboard.press("Escape")
    assert len(visible_classes(page)) == 22
    assert press_path("signs/farm") == 2
    # The search still finds a class at any depth, and labels it with Enter.
    third = int(current_item(page))
    page.keyboard.press("/")
    page.keyboard.type("kitchen / wild / blue")
    page.keyboard.press("Enter")
    page.wait_for_function("old => document.getElementById('item-card').dataset.item !== old", arg=str(third))

    labels = labels_in_order(user, project)
    assert labels == [(first, ["two"]), (second, ["farm"]), (third, ["blue"])]
    chosen = [a.classes.get() for a in Annotation.objects.filter(user=user).order_by("pk")]
    assert [c.pk for c in chosen] == [by_path[p].pk for p in (deep, "signs/farm", "kitchen/wild/blue")]


# --- transparent images ---


def line_art_png(size: int = 240, ink=(0, 0, 0)) -> bytes:
    """Lines (black by default) on a fully transparent background, as clip-art PNGs come."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for x in range(20, size, 60):
        draw.line([(x, 0), (x, size)], fill=(*ink, 255), width=8)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def image_luminance(page) -> tuple[float, float]:
    """Mean luminance of the displayed image where it is transparent, and on its lines (0-255)."""
    shot = Image.open(io.BytesIO(page.locator("#item-image").screenshot())).convert("L")
    width, height = shot.size
    gaps, lines = [], []
    for x in range(width):
        source_x = x * 240 / width
        column = [shot.getpixel((x, y)) for y in range(0, height, 4)]
        if any(abs(source_x - line) < 2 for line in range(20, 240, 60)):
            lines += column
        elif all(abs(source_x - line) > 10 for line in range(20, 240, 60)):
            gaps += column
    return sum(gaps) / len(gaps), sum(lines) / len(lines)


def open_icon(page, login, project_factory, member_of, data: bytes) -> None:
    """An annotator's labeling page showing one transparent PNG, its original (with its alpha) decoded."""
    from labeling.services.imports import item_create_from_bytes  # a module being split: imported when used

    project = project_factory(name="Icons", slug="icons", holdout_fraction=0.0)
    label_class_create(project=project, name="icon")
    item = item_create_from_bytes(project=project, name="lines.png", data=data)
    member_of(project, Role.ANNOTATOR, "ann")
    login("ann")
    page.goto("/p/icons/label/")
    wait_ready(page)
    # The original replaces the thumbnail (flattened at import) once it is decoded.
    page.wait_for_function(
        "id => { const img = document.getElementById('item-image');"
        " return img.src.includes(`/${id}/original/?v=`) && img.complete && img.naturalWidth > 0; }",
        arg=item.pk,
    )


def test_transparent_line_art_shows_on_a_light_background_and_b_switches_it(
    page, login, screenshot, project_factory, member_of
):
    open_icon(page, login, project_factory, member_of, line_art_png())

    gaps, lines = image_luminance(page)
    assert gaps > 180, f"transparent areas render dark ({gaps:.0f}): black line art would vanish"
    assert lines < 60
    screenshot("label-transparent")

    page.keyboard.press("b")
    assert page.locator(".label-page").get_attribute("data-bg") == "light"
    assert image_luminance(page)[0] > 230
    page.keyboard.press("b")
    assert page.locator(".label-page").get_attribute("data-bg") == "dark"
    assert image_luminance(page)[0] < 60  # for light line art
    assert "dark" in page.locator(".stage .meta").inner_text()
    page.reload()  # the choice sticks
    wait_ready(page)
    assert page.locator(".label-page").get_attribute("data-bg") == "dark"
    page.keyboard.press("b")
    assert page.locator(".label-page").get_attribute("data-bg") == "checker"
    assert not Annotation.objects.exists()  # b is never a label


@pytest.mark.parametrize("size", [(288, 96), (96, 288), (640, 480), (32, 32)])
def test_the_image_box_has_the_images_shape_so_no_checkerboard_bands_show_beside_it(
    page, login, screenshot, project_factory, member_of, size
):
    """The checkerboard is the element's background: a box of another shape than the image (it was stretched to
    50vh tall) showed bands of it beside a wide banner, as if the banner had transparent margins."""
    from labeling.services.imports import item_create_from_bytes

    project = project_factory(name="Banners", slug="banners", holdout_fraction=0.0)
    label_class_create(project=project, name="banner")
    buffer = io.BytesIO()
    Image.new("RGB", size, (40, 120, 200)).save(buffer, "PNG")
    item_create_from_bytes(project=project, name="banner.png", data=buffer.getvalue())
    member_of(project, Role.ANNOTATOR, "ann")
    login("ann")
    page.goto("/p/banners/label/")
    wait_ready(page)
    box = page.locator("#item-image").bounding_box()
    assert box["width"] / box["height"] == pytest.approx(size[0] / size[1], rel=0.02)
    stage = page.locator(".stage").bounding_box()
    assert box["height"] >= 0.5 * page.viewport_size["height"] - 2 or box["width"] >= stage["width"] - 40  # big
    shot = Image.open(io.BytesIO(page.locator("#item-image").screenshot())).convert("RGB")
    corners = [shot.getpixel((x, y)) for x in (2, shot.width - 3) for y in (2, shot.height - 3)]
    assert all(abs(c[2] - 200) < 20 for c in corners), corners  # the image's blue, not a band of checkerboard
    if size == (288, 96):
        screenshot("label-wide-banner")


def test_white_line_art_on_transparency_gets_a_dark_checkerboard(page, login, screenshot, project_factory, member_of):
    open_icon(page, login, project_factory, member_of, line_art_png(ink=(255, 255, 255)))

    # On the light checkerboard white lines would vanish; the page picks the dark one, as the model's pixels do.
    assert page.locator(".label-page").get_attribute("data-bg") == "checker"
    gaps, lines = image_luminance(page)
    assert gaps < 70, f"transparent areas render light ({gaps:.0f}): white line art would vanish"
    assert lines > 200
    screenshot("label-transparent-white")
    page.keyboard.press("b")  # the annotator can still ask for the light background
    assert image_luminance(page)[0] > 230


def test_a_drill_down_burst_cut_by_the_next_card_never_spells_a_class_on_it(
    page, login, project_factory, item_factory, member_of, hold_labels
):
    project = project_factory(name="Clip art", slug="clipart", holdout_fraction=0.0)
    label_classes_from_paths(project=project, paths=taxonomy_paths())
    for n in range(5):
        item_factory(project=project, priority=100 - n)
    user = member_of(project, Role.ANNOTATOR, "ann")
    login("ann")
    page.goto("/p/clipart/label/")
    wait_ready(page)
    first = current_item(page)
    release = hold_labels()

    for key in ["n", "2"]:  # toys / farm: the server holds the label
        page.keyboard.press(key)
    page.wait_for_function("() => !!document.querySelector('.htmx-request')")
    # Typing on, 50 ms a key, through the moment the next card arrives: "1 1 1 1" on it would drill down to
    # animals / wild / red / one. Keys of the burst after a refused one are refused too.
    page.evaluate(RECORD)
    release.set()
    for _ in range(16):
        page.keyboard.press("1")
        page.wait_for_timeout(50)

    cards, presses = page.evaluate("window.cardLog"), page.evaluate("window.keyLog")
    assert len(cards) >= 2, "the next card did not arrive while the keys were typed"
    assert sum(p["t"] >= cards[1]["from"] for p in presses) >= 4, "too few keys reached the next card"
    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(presses)]
    assert max(gaps) < 250, f"the keys were not one burst (gaps {gaps} ms): the test did not test it"
    assert labels_in_order(user, project) == [(int(first), ["farm"])]
    assert page.locator("#class-crumb").is_hidden()  # still at the top level: nothing drilled down either
    # The last keys came with the image on screen a while: the note gives the burst as the reason, not the loading
    assert re.fullmatch(
        r'Key "1" not applied: it came in one run of keys with a key that was refused, and on its own would pick from '
        r"the wrong level\. \d+ keys not applied since your last pause\. Pause, then type the class again\.",
        page.locator("#key-note").inner_text(),
    )
    page.wait_for_timeout(300)  # a pause ends the burst: the next key acts on the card on screen
    second = int(current_item(page))
    page.keyboard.press("n")
    press_and_wait_for_next(page, "1")
    assert labels_in_order(user, project)[-1] == (second, ["wild"])


def test_class_search_ignores_accents_case_and_word_order(page, login, project_factory, item_factory, member_of):
    project = project_factory(name="Café", slug="cafe", holdout_fraction=0.0)
    label_classes_from_paths(
        project=project, paths=["boissons/Café crème", "boissons/thé", "animaux/mammifères/Écureuil", "animaux/chat"]
    )
    item_factory(project=project)
    member_of(project, Role.ANNOTATOR, "ann")
    login("ann")
    page.goto("/p/cafe/label/")
    wait_ready(page)
    page.keyboard.press("/")
    found = {}
    for query in ("cafe", "CREME", "ecureuil mammiferes", "the", "chat écureuil"):
        page.fill("#class-search", query)
        results = page.locator("#search-results li")
        found[query] = results.all_inner_texts() if page.locator("#search-results").is_visible() else []
    assert found == {
        "cafe": ["boissons / Café crème"],
        "CREME": ["boissons / Café crème"],
        "ecureuil mammiferes": ["animaux / mammifères / Écureuil"],
        "the": ["boissons / thé"],
        "chat écureuil": [],
    }
