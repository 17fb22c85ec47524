"""In a browser: a review card of a labeled item the model stores no prediction of shows the heatmap of its label,
and h hides it; with no heatmap to offer, the footer does not advertise h and h says why in the key note."""

from __future__ import annotations

import pytest

from labeling.models import ReviewTask, ReviewTaskReason
from labeling.services.annotations import annotation_create
from tests.training.explain_helpers import explained_project
from training.models import ModelVersion

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


@pytest.fixture
def zoo(project_factory, label_class_factory, item_factory, member_of):
    return explained_project(project_factory, label_class_factory, item_factory, member_of)


def audit_card(project, item, annotator, cls) -> None:
    annotation = annotation_create(item=item, user=annotator, class_ids=[cls.pk])
    ReviewTask.objects.all().delete()
    ReviewTask.objects.create(project=project, item=item, annotation=annotation, reason=ReviewTaskReason.SAMPLE)


def test_the_heatmap_of_the_label_shows_and_h_hides_it(page, login, zoo):
    project, classes, items, _, annotator, reviewer = zoo
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


def test_without_a_heatmap_h_says_why(page, login, zoo):
    project, classes, items, _, annotator, reviewer = zoo
    audit_card(project, items[0], annotator, classes[0])
    ModelVersion.objects.filter(project=project).update(active=False)
    login(reviewer.username)
    page.goto(f"/p/{project.slug}/review/")
    assert not page.locator("#review-h-hint").is_visible()
    page.keyboard.press("h")
    note = page.locator("#review-key-note")
    note.wait_for(state="visible")
    assert note.inner_text() == "No heatmap: the project has no trained model yet."
