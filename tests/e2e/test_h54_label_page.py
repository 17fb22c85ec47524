"""The labeling page in Chromium (tester54): the note about keys not applied while typing without a pause names the
key and counts the run's keys, and covers neither the project's links nor the class buttons (P1); Enter with
"Preselect" on an image without a suggestion says why nothing happened (P10); on a phone the image and the first
class buttons fit one screen (P3)."""

from __future__ import annotations

import itertools
import re

import pytest
from django.apps import apps

from labeling.models import Annotation, Role, Split, TaskType
from labeling.services.projects import label_classes_from_paths
from tests.e2e.conftest import CARD, next_card

from .test_labeling import RECORD

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

SHAPES = ["circle", "square", "triangle", "star"]
COLOURS = ["red", "green", "blue"]

# Whether the element at the centre of each selected element is that element (or inside it): nothing covers it.
UNCOVERED = """(selector) => Array.from(document.querySelectorAll(selector))
  .filter((el) => el.offsetParent !== null)
  .map((el) => {
    const r = el.getBoundingClientRect();
    const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return [el.textContent.trim(), Boolean(top && el.contains(top))];
  })"""


def shapes_project(project_factory, item_factory, member_of, *, n_items=6, **fields):
    project = project_factory(name="Shapes", slug="shapes", holdout_fraction=0.0, **fields)
    classes = label_classes_from_paths(project=project, paths=[f"{s}/{c}" for s in SHAPES for c in COLOURS])
    items = [item_factory(project=project, priority=100 - n, width=96, height=96) for n in range(n_items)]
    return project, classes, items, member_of(project, Role.ANNOTATOR, "ann")


def type_without_pause(page, keys: list[str], gap_ms: int = 40) -> None:
    for key in keys:
        page.keyboard.press(key)
        page.wait_for_timeout(gap_ms)


def test_typing_without_a_pause_names_the_key_counts_the_run_and_leaves_the_nav_clickable(
    page, login, screenshot, project_factory, item_factory, member_of
):
    project, _, _, user = shapes_project(project_factory, item_factory, member_of)
    login("ann")
    page.goto("/p/shapes/label/")
    first = page.wait_for_function(CARD).json_value()
    page.evaluate(RECORD)

    # "1 1" labels circle / red; the keys after it, typed on without a pause, reach the next image too soon and are
    # refused, and so is the rest of their run.
    type_without_pause(page, ["1"] * 30)

    presses = page.evaluate("window.keyLog")
    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(presses)]
    assert max(gaps) < 250, f"the keys were not one run (gaps {gaps} ms): the test did not test it"
    assert len(page.evaluate("window.cardLog")) >= 2, "the next image did not arrive: the test did not test it"
    assert Annotation.objects.filter(user=user).count() == 1  # nothing typed ahead was applied
    note = page.locator("#key-note")
    assert note.is_visible()
    words = note.inner_text()
    said = re.fullmatch(
        r'Key "1" not applied: it came in one run of keys with a key that was refused, and on its own would pick '
        r"from the wrong level\. (\d+) keys not applied since your last pause\. Pause, then type the class again\.",
        words,
    )
    assert said, words
    assert int(said.group(1)) > 1
    assert int(said.group(1)) <= int(note.get_attribute("data-refused"))
    screenshot("h54-key-note")

    # While the note shows, the project's links and the class buttons are not under it.
    links = page.evaluate(UNCOVERED, ".project-nav a")
    assert [name for name, _ in links][:3] == ["Overview", "Label", "Grid"]
    assert all(free for _, free in links), links
    buttons = page.evaluate(UNCOVERED, "#label-form .class-btn")
    assert len(buttons) == 4
    assert all(free for _, free in buttons), buttons
    page.click(".project-nav a:text-is('Overview')")
    page.wait_for_url(f"**/p/{project.slug}/")

    # After a pause the keys act again.
    page.goto("/p/shapes/label/")
    second = page.wait_for_function(CARD).json_value()
    assert second != first
    page.keyboard.press("2")
    page.keyboard.press("3")
    next_card(page, second)
    assert Annotation.objects.filter(user=user).count() == 2


def test_typing_sets_without_a_pause_in_a_multi_label_project_counts_the_run(
    page, login, project_factory, label_class_factory, item_factory, member_of
):
    project = project_factory(name="Multi", slug="multi", task_type=TaskType.MULTI, holdout_fraction=0.0)
    for key, name in (("1", "circle"), ("2", "square")):
        label_class_factory(project=project, name=name, hotkey=key)
    for n in range(6):
        item_factory(project=project, priority=100 - n)
    user = member_of(project, Role.ANNOTATOR, "ann")
    login("ann")
    page.goto("/p/multi/label/")
    page.wait_for_function(CARD)

    type_without_pause(page, ["1", "2", "Enter"] * 8)

    assert Annotation.objects.filter(user=user).count() == 1
    words = page.locator("#key-note").inner_text()
    said = re.fullmatch(
        r'(Key "[12]"|Enter) not applied: it came in one run of keys with a key that was refused, so this image\'s '
        r"set would miss a class\. (\d+) keys not applied since your last pause\. Pause, then type the whole set "
        r"again\.",
        words,
    )
    assert said, words
    assert int(said.group(2)) > 1


def test_enter_on_an_image_without_a_suggestion_says_why_nothing_happened(
    page, login, project_factory, item_factory, member_of
):
    project, classes, items, user = shapes_project(
        project_factory, item_factory, member_of, n_items=1, preselect_suggestion=True
    )
    items[0].split = Split.HOLDOUT
    items[0].save(update_fields=["split"])
    apps.get_model("training", "ModelVersion").objects.create(
        project=project, number=1, artifact_path="x", architecture="a",
        class_ids=[c.pk for c in classes.values()], active=True,
    )  # fmt: skip
    login("ann")
    page.goto("/p/shapes/label/")
    page.wait_for_function(CARD)
    assert page.locator("#no-suggestion").inner_text() == (
        "No suggestion: held-out images are labeled without one, so the model's measured accuracy stays fair."
    )

    page.keyboard.press("Enter")

    note = page.locator("#key-note")
    assert note.is_visible()
    assert note.inner_text() == "Enter accepts the suggestion; this image has none: press its class key."
    assert Annotation.objects.filter(user=user).count() == 0


@pytest.mark.parametrize("size", [(96, 96), (300, 600), (800, 300)])
def test_on_a_phone_the_image_and_the_first_class_buttons_fit_one_screen(
    page, login, screenshot, project_factory, item_factory, member_of, size
):
    project, classes, items, _ = shapes_project(project_factory, item_factory, member_of, n_items=2)
    for item in items:
        item.width, item.height = size
        item.save(update_fields=["width", "height"])
    # With a model's suggestions above the class buttons, as in the tester's project.
    ordered = list(classes.values())
    version = apps.get_model("training", "ModelVersion").objects.create(
        project=project, number=1, artifact_path="x", architecture="a", class_ids=[c.pk for c in ordered], active=True
    )
    probabilities = [0.9, 0.06, 0.04] + [0.0] * (len(ordered) - 3)
    for item in items:
        apps.get_model("training", "Prediction").objects.create(
            item=item, model_version=version, probabilities=probabilities, predicted_class=ordered[0],
            confidence=0.9, uncertainty=0.1,
        )  # fmt: skip
    page.set_viewport_size({"width": 390, "height": 844})
    login("ann")
    page.goto("/p/shapes/label/")
    page.wait_for_function(CARD)
    assert page.locator(".suggestions").is_visible()

    layout = page.evaluate(
        """() => {
      const box = (el) => { const r = el.getBoundingClientRect(); return {top: r.top, bottom: r.bottom}; };
      const first = Array.from(document.querySelectorAll('#label-form .class-btn')).find((b) => !b.hidden);
      const caption = document.getElementById('explain-caption');
      return {scrollY: window.scrollY, width: document.documentElement.scrollWidth,
              image: box(document.getElementById('item-image')), button: box(first),
              caption: caption && getComputedStyle(caption).whiteSpace};
    }"""
    )
    screenshot(f"h54-phone-label-{size[0]}x{size[1]}")
    assert layout["scrollY"] == 0
    assert layout["width"] <= 390, layout
    assert layout["image"]["top"] >= 0
    assert layout["button"]["top"] >= 0
    assert layout["button"]["bottom"] <= 844, layout
    assert layout["caption"] == "normal"  # the heatmap's caption wraps instead of being cut to one line
