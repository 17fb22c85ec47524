"""In a browser: a review card of a labeled item the model stores no prediction of shows the heatmap of its label,
and h hides it; with no heatmap to offer, the footer does not advertise h and h says why in the key note."""

from __future__ import annotations

import pytest

from training.models import ModelVersion

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def test_the_heatmap_of_the_label_shows_and_h_hides_it(page, login, explained_zoo, audit_card):
    project, classes, items, _, annotator, reviewer = explained_zoo
    items[0].predictions.all().delete()
    audit_card(project, items[0], annotator, classes[1])
    login(reviewer.username)
    page.goto(f"/p/{project.slug}/review/")
    overlay = page.locator("#review-explain img.explain-overlay")
    overlay.wait_for(state="visible")
    assert page.locator("#review-explain-caption").inner_text().endswith("heatmap of dog (the label under review)")
    assert page.locator("#review-h-hint").is_visible()
    page.keyboard.press("h")
    assert not overlay.is_visible()


def test_without_a_heatmap_h_says_why(page, login, explained_zoo, audit_card):
    project, classes, items, _, annotator, reviewer = explained_zoo
    audit_card(project, items[0], annotator, classes[0])
    ModelVersion.objects.filter(project=project).update(active=False)
    login(reviewer.username)
    page.goto(f"/p/{project.slug}/review/")
    assert not page.locator("#review-h-hint").is_visible()
    page.keyboard.press("h")
    note = page.locator("#review-key-note")
    note.wait_for(state="visible")
    assert note.inner_text() == "No heatmap: the project has no trained model yet."
