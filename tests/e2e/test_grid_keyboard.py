"""The grid by keyboard only, as a keyboard-only tester works it, and on a phone: Tab reaches the tiles (one stop, a
visible focus ring), arrows + Space and Shift+arrows select, "/" finds a class and Enter chooses it, Enter again
labels the selection; no class is chosen until the labeler chooses one; on a 390 x 844 screen the toolbar leaves
room for the tiles."""

from __future__ import annotations

import pytest

from labeling.models import Annotation, Role, TaskType
from tests.browser_fixtures import ARTIFACTS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

CLASSES = ("red circle", "red square", "red triangle", "blue circle", "blue square", "blue triangle")

FOCUSED_TILE = "() => { const t = document.activeElement; return t?.matches('#tiles .tile') ? t.dataset.id : null; }"

# The tiles a user sees whole: inside the window and not under the toolbar (the element at each corner is the tile's).
WHOLLY_VISIBLE_TILES = """() => [...document.querySelectorAll('#tiles .tile')].filter((t) => {
  const r = t.getBoundingClientRect();
  if (r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth) return false;
  return [[r.left + 4, r.top + 4], [r.right - 4, r.top + 4], [r.left + 4, r.bottom - 4], [r.right - 4, r.bottom - 4]]
    .every(([x, y]) => t.contains(document.elementFromPoint(x, y)));
}).length"""


@pytest.fixture
def shapes(page, login, project_factory, label_class_factory, item_factory, member_of):
    """A grid of 24 unlabeled images in a project of six classes; returns a function that opens it for annotator
    "ann" as a single-label or multi-label project: (project, {class name: class}, the tiles' item ids in order)."""

    def open_grid(task_type: str = TaskType.SINGLE, viewport=(1280, 800)):
        project = project_factory(name="Shapes", slug="shapes", task_type=task_type, holdout_fraction=0.0)
        classes = {name: label_class_factory(project=project, name=name) for name in CLASSES}
        for n in range(24):
            item_factory(project=project, priority=1000 - n)
        member_of(project, Role.ANNOTATOR, "ann")
        page.set_viewport_size(dict(zip(("width", "height"), viewport, strict=True)))
        login("ann")
        page.goto("/p/shapes/grid/?n=24")
        page.wait_for_load_state("load")
        ids = [int(i) for i in page.eval_on_selector_all("#tiles .tile", "ts => ts.map(t => t.dataset.id)")]
        assert len(ids) == 24
        return project, classes, ids

    return open_grid


def window_shot(page, name: str) -> None:
    """What the window shows (a full-page shot would not show where the sticky toolbar sits)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def tab_into_the_grid(page) -> int:
    """Press Tab from the top of the page until a tile has the focus; how many presses it took."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    for presses in range(1, 41):
        page.keyboard.press("Tab")
        if page.evaluate(FOCUSED_TILE):
            return presses
    raise AssertionError("Tab never reached a tile")


def selected_ids(page) -> list[int]:
    return [int(v) for v in page.eval_on_selector_all("#tiles input:checked", "els => els.map(e => e.value)")]


def labels_of_ann() -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for item_id, name in Annotation.objects.filter(user__username="ann").values_list("item_id", "classes__name"):
        found.setdefault(item_id, set()).add(name)
    return found


def test_after_finding_a_class_enter_again_labels_the_selection(page, shapes):
    # Given a single-label grid, reached with Tab, and five tiles selected with arrows and Space
    _, _, ids = shapes()
    tab_into_the_grid(page)
    for step in range(5):
        if step:
            page.keyboard.press("ArrowRight")
        page.keyboard.press(" ")
    assert page.locator("#selected-count").inner_text() == "5"

    # When she presses "/", types words of a class and Enter
    page.keyboard.press("/")
    page.keyboard.type("red triangle")
    page.keyboard.press("Enter")

    # Then the class is chosen and the page says what the next Enter does; nothing is labeled yet
    assert page.eval_on_selector("#grid-class", "s => s.selectedOptions[0].textContent") == "red triangle"
    hint = page.locator("#grid-class-help").inner_text()
    assert "Enter again labels" in hint, hint
    assert Annotation.objects.count() == 0
    window_shot(page, "grid-desktop-chosen")

    # When she presses Enter again, still in the finder
    page.keyboard.press("Enter")

    # Then the five images are labeled "red triangle", and the page says so
    page.wait_for_selector("text=Labeled 5 images as red triangle")
    assert labels_of_ann() == {i: {"red triangle"} for i in ids[:5]}


def test_in_a_multi_label_grid_enter_adds_each_class_and_enter_again_labels(page, shapes):
    # Given a multi-label grid with three tiles selected by keyboard
    _, _, ids = shapes(TaskType.MULTI)
    tab_into_the_grid(page)
    for key in (" ", "ArrowRight", " ", "ArrowRight", " "):
        page.keyboard.press(key)

    # When she finds two classes, Enter after each, then presses Enter again
    page.keyboard.press("/")
    page.keyboard.type("red tri")
    page.keyboard.press("Enter")
    page.keyboard.type("blue sq")
    page.keyboard.press("Enter")
    assert page.locator("#grid-chosen").inner_text().startswith("Chosen: red triangle · blue square")
    assert Annotation.objects.count() == 0
    page.keyboard.press("Enter")

    # Then the three images carry both classes
    page.wait_for_selector("text=Labeled 3 images as red triangle + blue square")
    assert labels_of_ann() == {i: {"red triangle", "blue square"} for i in ids[:3]}


def test_tab_reaches_the_grid_as_one_stop_with_a_visible_focus_ring(page, shapes):
    # Given the grid page, nothing focused
    _, _, ids = shapes()
    window_shot(page, "grid-desktop")

    # When a keyboard user presses Tab
    tab_into_the_grid(page)

    # Then the first tile has the focus, with a ring one can see
    assert page.evaluate(FOCUSED_TILE) == str(ids[0])
    ring = page.evaluate("() => { const s = getComputedStyle(document.activeElement); "
                         "return [s.outlineStyle, parseFloat(s.outlineWidth)]; }")  # fmt: skip
    assert ring[0] != "none", ring
    assert ring[1] >= 2, ring
    window_shot(page, "grid-desktop-focus-ring")

    # When she moves with the arrows and tabs on: the grid is one stop, the next Tab leaves it
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert page.evaluate(FOCUSED_TILE) == str(ids[2])
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED_TILE) is None
    # ... and Shift+Tab comes back to the tile she left, not to the first
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(FOCUSED_TILE) == str(ids[2])
    # ... where Space selects it
    page.keyboard.press(" ")
    assert selected_ids(page) == [ids[2]]


def test_shift_arrows_extend_the_selection_from_the_anchor(page, shapes):
    # Given the grid reached with Tab, the second tile selected with Space (the anchor)
    _, _, ids = shapes()
    tab_into_the_grid(page)
    page.keyboard.press("ArrowRight")
    page.keyboard.press(" ")

    # When she presses Shift+Right three times
    for _ in range(3):
        page.keyboard.press("Shift+ArrowRight")
    # Then the anchor and the three tiles after it are selected
    assert selected_ids(page) == ids[1:5]
    assert page.locator("#selected-count").inner_text() == "4"
    # ... Shift+Left takes the last one back out, as a file manager does
    page.keyboard.press("Shift+ArrowLeft")
    assert selected_ids(page) == ids[1:4]

    # When she moves on with plain arrows, selects another tile and extends from there with Shift+Down
    columns = page.evaluate(
        "() => { const ts = [...document.querySelectorAll('#tiles .tile')]; "
        "return ts.findIndex((t) => t.offsetTop !== ts[0].offsetTop); }"
    )
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    page.keyboard.press(" ")
    page.keyboard.press("Shift+ArrowDown")
    # Then the first range stays and the new one runs a row down from the new anchor
    assert selected_ids(page) == ids[1:4] + ids[6 : 6 + columns + 1]

    # When she chooses a class and labels: exactly those images get it
    page.keyboard.press("/")
    page.keyboard.type("blue circle")
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"text=Labeled {3 + columns + 1} images as blue circle")
    assert labels_of_ann() == {i: {"blue circle"} for i in ids[1:4] + ids[6 : 6 + columns + 1]}


def test_no_class_is_chosen_until_the_labeler_chooses_one(page, shapes):
    # Given the grid: the class menu asks for a class instead of naming the first one
    _, _, ids = shapes()
    assert page.eval_on_selector("#grid-class", "s => s.selectedOptions[0].textContent") == "choose a class…"
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)

    # When she selects everything with "a" and presses Enter, then "n"
    tab_into_the_grid(page)
    page.keyboard.press("a")
    assert page.locator("#selected-count").inner_text() == "24"
    page.keyboard.press("Enter")

    # Then she is told to choose a class, and nothing is labeled
    notice = page.locator("#grid-notice")
    assert notice.is_visible()
    assert "Choose a class first" in notice.inner_text()
    page.keyboard.press("n")
    assert "Choose a class first" in notice.inner_text()
    assert Annotation.objects.count() == 0
    assert posts == []
    # ... and the mouse's Label button is refused the same way
    page.locator("#grid-label").click()
    assert "Choose a class first" in notice.inner_text()
    assert Annotation.objects.count() == 0
    assert posts == []

    # When she chooses a class, back in the grid, Enter labels all 24
    page.keyboard.press("/")
    page.keyboard.type("red circle")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Labeled 24 images as red circle")
    assert labels_of_ann() == {i: {"red circle"} for i in ids}


@pytest.mark.parametrize("task_type", [TaskType.SINGLE, TaskType.MULTI])
def test_on_a_phone_the_toolbar_leaves_room_for_six_tiles(page, shapes, task_type):
    # Given the grid on a 390 x 844 phone screen
    _, _, ids = shapes(task_type, viewport=(390, 844))
    window_shot(page, f"grid-phone-top-{task_type}")

    # When she scrolls to the tiles
    page.eval_on_selector("#tiles", "t => t.scrollIntoView({block: 'start'})")

    # Then at least six tiles show whole, none of them under the toolbar
    shown = page.evaluate(WHOLLY_VISIBLE_TILES)
    window_shot(page, f"grid-phone-tiles-{task_type}")
    assert shown >= 6, shown
    # ... the toolbar's controls are all on screen, and it is one short strip
    bar = page.locator(".grid-bar").bounding_box()
    assert bar["height"] <= 0.15 * 844, bar
    for control in ("#grid-class", "#grid-label", "#grid-not", "#selected-count"):
        box = page.locator(control).bounding_box()
        assert box, control
        assert 0 <= box["x"] <= box["x"] + box["width"] <= 390, (control, box)
        assert box["y"] + box["height"] <= 844, (control, box)

    # When she taps two tiles, picks a class in the menu and taps Label
    page.locator("#tiles .tile").nth(0).click()
    page.locator("#tiles .tile").nth(1).click()
    page.select_option("#grid-class", label="blue triangle")
    page.locator("#grid-label").click()

    # Then both are labeled
    page.wait_for_selector("text=Labeled 2 images as blue triangle")
    assert labels_of_ann() == {i: {"blue triangle"} for i in ids[:2]}
