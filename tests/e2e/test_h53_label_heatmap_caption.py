"""The labeling page's heatmap says what it shows (tester h53 P1): under the image, while the heatmap is shown, a
caption names the class and the model version, also after a click on another suggested class; h hides it again."""

from __future__ import annotations

import pytest

from tests.training.explain_helpers import explained_project

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def test_the_shown_heatmap_names_its_class_and_version_under_the_image(
    page, login, screenshot, project_factory, label_class_factory, item_factory, member_of
):
    # Given an annotator on the labeling page of a project with an active model
    project, _, _, version, annotator, _ = explained_project(
        project_factory, label_class_factory, item_factory, member_of
    )
    login(annotator.username)
    page.goto(f"/p/{project.slug}/label/")
    page.wait_for_function("() => document.getElementById('item-card').dataset.ready === '1'")
    caption = page.locator("#explain-caption")
    assert not caption.is_visible() or not caption.inner_text().strip()
    image_before = page.locator("#item-image").bounding_box()
    top = page.locator(".suggestion .name").nth(0).inner_text()
    top_pct = page.locator(".suggestion .pct").nth(0).inner_text()

    # When she presses h
    page.keyboard.press("h")
    page.locator("#explain-slot img.explain-overlay").wait_for(state="visible")

    # Then a caption under the image names the version and the class the heatmap is of, with its probability
    page.wait_for_function("() => document.getElementById('explain-caption').textContent.startsWith('Where')")
    assert caption.is_visible()
    assert caption.inner_text() == f"Where model v{version.number} sees {top} ({top_pct})"
    assert caption.bounding_box()["y"] >= image_before["y"] + image_before["height"]  # under it, not over it
    assert page.locator("#item-image").bounding_box() == image_before  # and the image did not move
    screenshot("label-heatmap-caption")

    # When she clicks the second suggested class
    other = page.locator(".suggestion[data-explain-url]").nth(1)
    name = other.locator(".name").inner_text()
    other.click()
    page.locator(f'#explain-slot .explain[data-explain="done"][data-class-name="{name}"] img').wait_for(state="visible")

    # Then the caption names that class
    page.wait_for_function(
        "name => document.getElementById('explain-caption').textContent.includes(` sees ${name} (`)", arg=name
    )
    assert caption.inner_text().startswith(f"Where model v{version.number} sees {name} (")

    # When she presses h again, the heatmap and its caption are gone
    page.keyboard.press("h")
    assert not page.locator("#explain-slot").is_visible()
    assert not caption.is_visible()
