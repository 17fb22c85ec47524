"""What a screen reader hears in the grid: the tiles are a multi-select listbox of options, and each option's
aria-selected follows the selection however it changes (click, Space, Shift+arrows, a for all and none) and starts
over on the next page of tiles, after a label."""

from __future__ import annotations

import pytest

from labeling.models import Role

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

# Each tile's id, aria-selected, and whether its checkbox (what the form sends) and its look say it is selected.
TILE_STATES = """() => [...document.querySelectorAll('#tiles .tile')].map((t) => ({
  id: Number(t.dataset.id), aria: t.getAttribute('aria-selected'), checked: t.querySelector('input').checked,
  drawn: t.classList.contains('selected'), role: t.getAttribute('role'),
}))"""


@pytest.fixture
def grid(page, login, project_factory, label_class_factory, item_factory, member_of):
    """Annotator "ann" on the grid of 24 unlabeled images of a two-class project; the tiles' item ids in order."""
    project = project_factory(name="Shapes", slug="shapes", holdout_fraction=0.0)
    for name in ("circle", "square"):
        label_class_factory(project=project, name=name)
    for n in range(30):
        item_factory(project=project, priority=1000 - n)
    member_of(project, Role.ANNOTATOR, "ann")
    login("ann")
    page.goto("/p/shapes/grid/?n=24")
    page.wait_for_load_state("load")
    return [state["id"] for state in page.evaluate(TILE_STATES)]


def heard_selected(page) -> list[int]:
    """The ids of the tiles the accessibility tree reports selected, after checking that the checkbox and the look of
    every tile agree with its aria-selected."""
    states = page.evaluate(TILE_STATES)
    for state in states:
        assert state["role"] == "option", state
        assert state["aria"] in ("true", "false"), state
        assert (state["aria"] == "true") == state["checked"] == state["drawn"], state
    options = page.get_by_role("listbox", name="Images to label").get_by_role("option", selected=True)
    heard = sorted(int(i) for i in options.evaluate_all("os => os.map((o) => o.dataset.id)"))
    assert heard == sorted(s["id"] for s in states if s["aria"] == "true")
    return heard


def test_aria_selected_follows_every_way_of_selecting(page, grid):
    ids = grid

    # Given the grid: a multi-select listbox of 24 options, none selected, the checkboxes not announced twice
    listbox = page.locator("#tiles")
    assert listbox.get_attribute("role") == "listbox"
    assert listbox.get_attribute("aria-multiselectable") == "true"
    assert page.get_by_role("listbox", name="Images to label").get_by_role("option").count() == 24
    assert page.eval_on_selector_all("#tiles input", "bs => bs.every((b) => b.getAttribute('aria-hidden') === 'true')")
    assert heard_selected(page) == []

    # When she clicks a tile, then clicks it again
    page.locator("#tiles .tile").nth(3).click()
    assert heard_selected(page) == [ids[3]]
    page.locator("#tiles .tile").nth(3).click()
    assert heard_selected(page) == []

    # When she selects with Space and extends with Shift+arrows, then takes one back
    page.locator("#tiles .tile").nth(0).focus()
    page.keyboard.press(" ")
    assert heard_selected(page) == [ids[0]]
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("Shift+ArrowRight")
    assert heard_selected(page) == sorted(ids[:3])
    page.keyboard.press("Shift+ArrowLeft")
    assert heard_selected(page) == sorted(ids[:2])

    # When she shift-clicks a tile further on: the range from the anchor is selected
    page.locator("#tiles .tile").nth(5).click(modifiers=["Shift"])
    assert heard_selected(page) == sorted(ids[:6])

    # When she presses a (all), then a again (none)
    page.keyboard.press("a")
    assert heard_selected(page) == sorted(ids)
    assert page.locator("#selected-count").inner_text() == "24"
    page.keyboard.press("a")
    assert heard_selected(page) == []
    assert page.locator("#selected-count").inner_text() == "0"


def test_the_next_page_of_tiles_starts_with_nothing_selected_and_says_so(page, grid):
    # Given three tiles selected and a class chosen
    ids = grid
    page.locator("#tiles .tile").nth(0).focus()
    for key in (" ", "ArrowRight", " ", "ArrowRight", " "):
        page.keyboard.press(key)
    assert heard_selected(page) == sorted(ids[:3])

    # When she labels them: the page of tiles is replaced by the next one
    page.keyboard.press("/")
    page.keyboard.type("circle")
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Labeled 3 images as circle")

    # Then the new tiles are options again, none selected, the labeled ones gone; selecting one is heard
    states = page.evaluate(TILE_STATES)
    assert len(states) == 24
    assert not {s["id"] for s in states} & set(ids[:3])
    assert heard_selected(page) == []
    page.locator("#tiles .tile").nth(0).focus()
    page.keyboard.press(" ")
    assert heard_selected(page) == [states[0]["id"]]
