"""Multi-label labeling in a class tree: the set being built is named, and the class search finds "/"-spelled paths.

In a 3-level taxonomy the panel shows one level at a time, so two classes ticked in different branches through the
search ("square red", "circle blue") left the top level with three unticked groups and no word of the set: the
annotator could not check it before Enter (h57 P3). Now the ticked classes are listed under the search by path, each
a button that unticks it, and each group shows how many ticked classes it holds.

The search found nothing for a path as exports and the API spell it ("round/ring/red", "ring/red"), nor for the
"/" that opens the search typed again while the search had the focus ("/ring red"), and Enter on no match did nothing
and said nothing, so Esc, Enter saved the set without the class (h57 P4). Now "/" separates words as a space does,
and Enter on no match says so under the search and ticks and saves nothing.

Screenshots: LABELLOOP_TEST_ARTIFACTS/h57-multi-label-set.png, h57-search-no-match.png.
"""

from __future__ import annotations

import pytest

from labeling.models import Annotation, Role, TaskType
from labeling.services.projects import label_class_create

from .conftest import CARD, next_card

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

TREE = {
    "angular": {"square": ["red", "blue"], "triangle": ["red", "blue"]},
    "round": {"circle": ["red", "blue"], "ring": ["red", "blue"]},
    "lines": {"cross": ["red", "blue"]},
}
CHIPS = "#label-chosen .chosen-class"
TYPE_MS = 40  # a fast typist's pace


def build(project) -> dict[str, int]:
    """The TREE's classes in `project`: display path -> class id."""
    ids = {}
    for family, shapes in TREE.items():
        top = label_class_create(project=project, name=family)
        ids[family] = top.pk
        for shape, colours in shapes.items():
            mid = label_class_create(project=project, name=shape, parent=top)
            ids[f"{family} / {shape}"] = mid.pk
            for colour in colours:
                ids[f"{family} / {shape} / {colour}"] = label_class_create(project=project, name=colour, parent=mid).pk
    return ids


@pytest.fixture
def scenes(page, login, project_factory, item_factory, member_of):
    """Annotator "ann" on the labeling page of the multi-label project "Scenes" (the 3-level TREE), 5 images.
    Returns (user, display path -> class id, the item on the first card once its image is on screen)."""
    project = project_factory(name="Scenes", slug="scenes", task_type=TaskType.MULTI, holdout_fraction=0.0)
    ids = build(project)
    for n in range(5):
        item_factory(project=project, priority=100 - n, width=32, height=32)
    ann = member_of(project, Role.ANNOTATOR, "ann")
    login("ann")
    page.goto("/p/scenes/label/")
    return ann, ids, page.wait_for_function(CARD).json_value()


def saved(user) -> dict[int, set[int]]:
    """item id -> the class ids of each set `user` saved."""
    mine = Annotation.objects.filter(user=user, skipped=False).prefetch_related("classes")
    return {a.item_id: {c.pk for c in a.classes.all()} for a in mine}


def find(page, query: str) -> None:
    """Open the search with / and type `query`, then Enter."""
    page.keyboard.press("/")
    page.keyboard.type(query, delay=TYPE_MS)
    page.keyboard.press("Enter")


def chips(page) -> list[str]:
    """The paths of the classes listed as ticked, in order (without their untick mark)."""
    return page.locator(f"{CHIPS} > span:not(.untick)").all_inner_texts()


def ticked_below(page) -> dict[str, str]:
    """The top level's groups that show a count of ticked classes: name -> the count's words."""
    counts = page.locator("#label-form .class-btn:visible").evaluate_all(
        "els => els.map((b) => [b.querySelector(':scope > span:not(.more):not(.ticked-below)').textContent,"
        " b.querySelector('.ticked-below')?.textContent || ''])"
    )
    return {name: count for name, count in counts if count}


def test_two_classes_ticked_in_different_branches_are_named_counted_and_saved(page, screenshot, scenes):
    ann, ids, first = scenes
    assert page.locator("#label-chosen").inner_text() == "No class ticked yet"

    # When the annotator ticks a class in two branches through the search, then leaves it
    find(page, "square red")
    find(page, "circle blue")
    page.keyboard.press("Escape")

    # Then the top level names both by path under the search, and each branch counts its ticked class
    assert chips(page) == ["angular / square / red", "round / circle / blue"]
    assert page.locator("#label-chosen").inner_text().startswith("Ticked (2):")
    assert ticked_below(page) == {"angular": "1 ticked", "round": "1 ticked"}
    screenshot("h57-multi-label-set")

    # ... one level down the count is the shape's
    page.keyboard.press("1")
    assert ticked_below(page) == {"square": "1 ticked"}
    page.keyboard.press("Escape")

    # And Enter saves the set as listed
    page.keyboard.press("Enter")
    next_card(page, first)
    assert saved(ann) == {int(first): {ids["angular / square / red"], ids["round / circle / blue"]}}
    # ... and the next image starts with no class listed
    assert page.locator("#label-chosen").inner_text() == "No class ticked yet"
    assert ticked_below(page) == {}


def test_a_listed_class_is_unticked_by_a_click(page, scenes):
    ann, ids, first = scenes
    find(page, "triangle blue")
    find(page, "ring red")
    page.keyboard.press("Escape")
    assert chips(page) == ["angular / triangle / blue", "round / ring / red"]

    # When the annotator clicks the first listed class
    page.locator(CHIPS).first.click()

    # Then it is unticked: gone from the list, from its branch's count and from its checkbox
    assert chips(page) == ["round / ring / red"]
    assert ticked_below(page) == {"round": "1 ticked"}
    assert not page.locator(f'#label-form .class-btn[data-id="{ids["angular / triangle / blue"]}"] input').is_checked()

    # And the set saved is the one listed
    page.locator("#label-form button.submit").click()
    next_card(page, first)
    assert saved(ann) == {int(first): {ids["round / ring / red"]}}


@pytest.mark.parametrize("query", ["round/ring/red", "ring/red", "/ring red", "Round/Ring/Red/"])
def test_a_path_spelled_with_slashes_finds_its_class(page, scenes, query):
    ann, ids, first = scenes

    # When the annotator opens the search with / and types the path as exports spell it (or a / again, first)
    page.keyboard.press("/")
    page.keyboard.type(query, delay=TYPE_MS)

    # Then the class is found, and Enter ticks it
    assert page.locator("#search-results li").all_inner_texts() == ["round / ring / red"]
    page.keyboard.press("Enter")
    assert chips(page) == ["round / ring / red"]
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    next_card(page, first)
    assert saved(ann) == {int(first): {ids["round / ring / red"]}}


def test_enter_on_no_match_says_so_and_ticks_and_saves_nothing(page, screenshot, scenes):
    ann, _, first = scenes
    find(page, "square red")

    # When the annotator searches for a class the taxonomy does not have, and presses Enter
    find(page, "hexagon red")
    page.wait_for_timeout(400)

    # Then the line under the search says so; nothing more is ticked, nothing is saved, the image stays
    note = page.locator("#search-none")
    assert note.is_visible()
    assert note.inner_text() == (
        "No class matches “hexagon red”: nothing was ticked. Change the words, or Esc to leave the search."
    )
    assert chips(page) == ["angular / square / red"]
    assert saved(ann) == {}
    assert page.locator("#item-card").get_attribute("data-item") == first
    screenshot("h57-search-no-match")

    # ... and it stays after Esc, so the set is not saved believing the class was added
    page.keyboard.press("Escape")
    assert note.is_visible()

    # Typing in the search again ends it
    page.keyboard.press("/")
    page.keyboard.type("tri", delay=TYPE_MS)
    assert not note.is_visible()


def test_enter_on_no_match_in_a_single_label_project_labels_nothing(
    page, login, project_factory, item_factory, member_of
):
    project = project_factory(name="Pets", slug="pets", holdout_fraction=0.0)
    build(project)
    for n in range(3):
        item_factory(project=project, priority=100 - n, width=32, height=32)
    member_of(project, Role.ANNOTATOR, "ann")
    login("ann")
    page.goto("/p/pets/label/")
    first = page.wait_for_function(CARD).json_value()

    find(page, "hexagon")
    page.wait_for_timeout(400)

    assert page.locator("#search-none").inner_text() == (
        "No class matches “hexagon”: nothing was labeled. Change the words, or Esc to leave the search."
    )
    assert not Annotation.objects.exists()
    assert page.locator("#item-card").get_attribute("data-item") == first
