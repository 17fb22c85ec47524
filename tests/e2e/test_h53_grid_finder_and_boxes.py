"""The grid page as tester h53 drove it: a tile's checkbox selects its image as a click on the picture does (shift
too), and the class finder lists its matches while one types, the one Enter takes highlighted."""

from __future__ import annotations

import pytest

from labeling.models import Annotation, Role, TaskType
from labeling.services.projects import label_classes_from_paths
from tests.factories import taxonomy_paths

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


@pytest.fixture
def atlas_grid(page, login, project_factory, item_factory, member_of):
    """Annotator on the grid of a single-label project with the 150-class taxonomy and 30 images; (classes, user)."""
    project = project_factory(name="Atlas", slug="atlas", task_type=TaskType.SINGLE, holdout_fraction=0.0)
    classes = label_classes_from_paths(project=project, paths=taxonomy_paths())
    for n in range(30):
        item_factory(project=project, priority=1000 - n)
    user = member_of(project, Role.ANNOTATOR, "ann-atlas")
    login(user.username)
    page.goto("/p/atlas/grid/?n=24")
    page.wait_for_load_state("load")
    return classes, user


def ticked(page) -> list[int]:
    return [int(v) for v in page.eval_on_selector_all("#tiles input:checked", "els => els.map(e => e.value)")]


def test_a_tiles_checkbox_selects_its_image_like_its_picture(page, atlas_grid):
    classes, user = atlas_grid
    tiles = page.locator("#tiles .tile")
    ids = [int(tiles.nth(i).get_attribute("data-id")) for i in range(6)]

    # When she clicks the first tile's checkbox
    tiles.nth(0).locator("input[type=checkbox]").click()
    # Then the image is selected: its box ticked, the tile marked, the counter at 1
    assert ticked(page) == [ids[0]]
    assert tiles.nth(0).get_attribute("aria-selected") == "true"
    assert page.locator("#selected-count").inner_text() == "1"

    # When she clicks the third tile's picture, then shift-clicks the fifth tile's checkbox
    tiles.nth(2).locator("img").click()
    tiles.nth(4).locator("input[type=checkbox]").click(modifiers=["Shift"])
    # Then the range from the third to the fifth is added
    assert ticked(page) == [ids[0], ids[2], ids[3], ids[4]]
    assert page.locator("#selected-count").inner_text() == "4"

    # When she clicks a ticked box again
    tiles.nth(3).locator("input[type=checkbox]").click()
    # Then that image is no longer selected
    assert ticked(page) == [ids[0], ids[2], ids[4]]
    assert page.locator("#selected-count").inner_text() == "3"

    # And "Label selected" labels exactly the ticked images
    page.select_option("#grid-class", str(classes["kitchen/farm"].pk))
    page.locator("#grid-label").click()
    page.wait_for_selector("text=Labeled 3 images as kitchen / farm")
    assert sorted(Annotation.objects.filter(user=user).values_list("item_id", flat=True)) == sorted(
        [ids[0], ids[2], ids[4]]
    )


def test_the_class_finder_lists_its_matches_while_typing_and_enter_takes_the_highlighted_one(page, atlas_grid):
    classes, _ = atlas_grid
    results = page.locator("#grid-class-results")
    page.locator("#tiles .tile").nth(0).click()

    # When she presses "/" and types words of a path that several classes share
    page.keyboard.press("/")
    page.keyboard.type("animals red")

    # Then the matches are listed under her eyes, the first highlighted: the one Enter takes
    results.wait_for(state="visible")
    listed = results.locator("li").all_inner_texts()
    assert listed == [
        "animals / wild / red",
        "animals / wild / red / one",
        "animals / wild / red / two",
        "animals / wild / red / three",
    ]
    assert results.locator("li.active").inner_text() == "animals / wild / red"
    box = results.bounding_box()
    assert box["y"] >= 0  # inside the window: it opens above the toolbar at the bottom
    assert box["y"] + box["height"] <= page.viewport_size["height"]

    # When she moves down twice and presses Enter
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert results.locator("li.active").inner_text() == "animals / wild / red / two"
    page.keyboard.press("Enter")

    # Then that class is chosen, nothing is labeled, and the list closes with the emptied finder
    assert page.eval_on_selector("#grid-class", "s => s.value") == str(classes["animals/wild/red/two"].pk)
    assert Annotation.objects.count() == 0
    assert not results.is_visible()

    # When she types a word no class has, nothing is listed
    page.keyboard.type("zzz")
    assert not results.is_visible()
