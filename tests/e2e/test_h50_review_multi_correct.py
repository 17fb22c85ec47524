"""h50: correcting a multi-label card among 120 classes with the search, in headless Chromium: "/" again starts a
new search, Enter on an empty search saves; the ticked classes are plain to see and spelled out beside the save
button; the image stays in view while the class list scrolls."""

import pytest

from labeling.models import Review, Role
from labeling.services.annotations import annotation_create

from .second_tap import second_tap_script

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

COLOURS = ["red", "orange", "yellow", "olive", "green", "teal", "cyan", "navy", "blue", "purple", "magenta", "brown"]
SHAPES = ["circle", "ring", "square", "diamond", "triangle", "star", "cross", "hexagon", "heart", "moon"]


@pytest.fixture
def shapes_card(page, login, project_factory, label_class_factory, item_factory, member_of):
    """rita on the review card of a 120-class multi-label project where ann tagged an image red_circle, olive_ring,
    navy_diamond (two items, so a save moves on to the second card)."""
    project = project_factory(name="Shapes multi", task_type="multi", review_sample_rate=1.0)
    classes = {f"{c}_{s}": label_class_factory(project=project, name=f"{c}_{s}") for c in COLOURS for s in SHAPES}
    assert len(classes) == 120
    ann = member_of(project, Role.ANNOTATOR, "ann")
    member_of(project, Role.REVIEWER, "rita")
    items = [item_factory(project=project) for _ in range(2)]
    for item in items:
        given = [classes[n].pk for n in ("red_circle", "olive_ring", "navy_diamond")]
        annotation_create(item=item, user=ann, class_ids=given)
    page.add_init_script(second_tap_script("review-image"))
    login("rita")
    page.goto(f"/p/{project.slug}/review/")
    page.wait_for_function("() => document.getElementById('review-card').dataset.ready === '1'")
    return page.get_attribute("#review-card", "data-task")


def _ticked(page) -> set[str]:
    return set(page.eval_on_selector_all("#correct-classes .class-btn.on", "els => els.map(e => e.dataset.path)"))


def _search(page, words: str) -> None:
    """/ then the words then Enter, at a person's pace."""
    page.keyboard.press("/")
    page.keyboard.type(words, delay=30)
    page.keyboard.press("Enter")


def test_a_second_search_and_enter_on_an_empty_search_save_the_correction(page, shapes_card, screenshot):
    first = shapes_card

    # c, then "/ purple ring Enter": purple_ring ticked; the search keeps the focus, empty
    page.keyboard.press("c")
    assert _ticked(page) == {"red_circle", "olive_ring", "navy_diamond"}
    _search(page, "purple ring")
    assert _ticked(page) == {"red_circle", "olive_ring", "navy_diamond", "purple_ring"}
    assert page.evaluate("document.activeElement.id") == "correct-search"

    # "/" again, in the focused search, is no slash typed: "red circle" finds red_circle and Enter unticks it
    page.keyboard.press("/")
    assert page.input_value("#correct-search") == ""
    page.keyboard.type("red circle", delay=30)
    assert page.locator("#correct-results li").all_inner_texts() == ["red_circle"]
    page.keyboard.press("Enter")
    assert _ticked(page) == {"olive_ring", "navy_diamond", "purple_ring"}

    # The set a save sends is spelled out beside the button, in the list's order
    assert page.inner_text("#correct-summary") == "Will save: olive_ring, navy_diamond, purple_ring"
    legend = page.inner_text("#correct-classes legend")
    assert "Esc leaves the search" in legend
    assert "Enter on the empty search saves" in legend
    assert "Esc cancels" not in legend

    # A ticked class is filled and checked; an unticked one is not
    ticked = page.locator('#correct-classes .class-btn[data-path="purple_ring"]')
    plain = page.locator('#correct-classes .class-btn[data-path="red_circle"]')
    style = "(e, p) => getComputedStyle(e, p).{prop}"
    assert ticked.evaluate(style.format(prop="backgroundColor"), None) == "rgb(47, 111, 222)"
    assert plain.evaluate(style.format(prop="backgroundColor"), None) != "rgb(47, 111, 222)"
    assert ticked.evaluate(style.format(prop="content"), "::before") == '""'
    assert ticked.evaluate(style.format(prop="transform"), "::before") != "none"  # the check mark
    assert plain.evaluate(style.format(prop="content"), "::before") == "none"

    # The image stays in view while the list is scrolled to its last class, and so do the save button and the line
    page.locator('#correct-classes .class-btn[data-path="brown_moon"]').scroll_into_view_if_needed()
    for selector in ("#review-image", "#correct-summary", "#correct-classes button[value=correct]"):
        box = page.locator(selector).bounding_box()
        assert box is not None, selector
        assert 0 <= box["y"] <= box["y"] + box["height"] <= 900, (selector, box)
    panel = page.locator("#correct-classes").bounding_box()
    assert panel["height"] < 900
    assert page.evaluate("document.documentElement.scrollHeight") < 1400  # not 2,600 px of classes
    shot = screenshot("h50_review_multi_correct")
    assert shot.exists()

    # Enter, the search still focused and empty, saves the correction and brings the next card
    assert page.evaluate("document.activeElement.id") == "correct-search"
    page.keyboard.press("Enter")
    page.wait_for_function(
        "old => { const c = document.getElementById('review-card'); return c && c.dataset.task !== old; }", arg=first
    )
    review = Review.objects.get()
    assert review.verdict == "correct"
    assert set(review.corrected_classes.values_list("name", flat=True)) == {"olive_ring", "navy_diamond", "purple_ring"}


def test_enter_in_an_empty_search_as_the_next_card_appears_saves_nothing_on_it(page, shapes_card):
    """The typed-ahead rule holds for the search's Enter: a correction saved, "c / Enter" typed for the next card the
    moment it appears opens nothing and saves nothing on it."""
    first = shapes_card
    page.keyboard.press("c")
    _search(page, "purple ring")
    page.evaluate("window.__tapNext = ['c', '/', 'Enter']")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "old => { const c = document.getElementById('review-card'); return c && c.dataset.task !== old"
        " && c.dataset.ready === '1'; }",
        arg=first,
    )
    page.locator("#review-key-note").wait_for(state="visible")
    assert page.locator("#correct-classes").is_hidden()
    assert Review.objects.count() == 1
