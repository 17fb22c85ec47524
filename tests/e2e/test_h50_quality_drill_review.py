"""The confusion drill-down in a real browser: a reviewer goes from a mislabeled holdout image to its review card in
one click, and the heatmap pill over the 140 px tile reads whole (h50 review, P3)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from labeling.models import ReviewTask, ReviewTaskReason, Role
from tests.training.test_h50_quality_review_links import one_read_as_eight
from training.models import Explanation, ExplanationStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def test_a_reviewer_goes_from_a_confusion_cell_to_the_review_card(
    page, login, screenshot, project_factory, label_class_factory, item_factory, member_of
):
    # Given two holdout images labeled "one" that v1 predicts "eight", their heatmaps still queued behind training
    project = project_factory(name="Digits")
    member_of(project, Role.REVIEWER, "rev")
    version, items, _ = one_read_as_eight(project, label_class_factory, item_factory)
    for item in items:
        Explanation.objects.create(
            model_version=version, item=item, class_index=1, class_name="eight", status=ExplanationStatus.QUEUED
        )

    # When the reviewer opens the cell from the quality page's matrix
    login("rev")
    page.goto(f"/p/{project.slug}/model/confusion/?v=1&t=0&p=1")

    # Then each tile's heatmap pill says "Queued" in full, inside its tile
    pills = page.locator("#cell-items .explain-status")
    # (each tile fetches its heatmap when it scrolls into view, so the two pills arrive one after the other)
    expect(pills).to_have_count(2)
    for k in range(2):
        pill = pills.nth(k)
        assert pill.inner_text().strip() == "Queued"
        assert pill.evaluate("el => el.scrollWidth <= el.clientWidth")
        box, tile = pill.bounding_box(), page.locator("#cell-items .explain-wrap").nth(k).bounding_box()
        assert box["x"] + box["width"] <= tile["x"] + tile["width"]
    screenshot("h50_confusion_drill_review")

    # When they press "review" under the second image
    page.locator(f'#cell-items figure[data-item="{items[1].pk}"] .review-item button').click()

    # Then the review page shows that image's card, a "Model contradicts" task they can accept or correct
    page.wait_for_url(lambda url: "/review/" in url)
    task = ReviewTask.objects.get(item=items[1], done=False)
    assert task.reason == ReviewTaskReason.MODEL
    assert page.locator(f'[data-task="{task.pk}"]').count() >= 1
    assert "Model contradicts" in page.locator("body").inner_text()
    screenshot("h50_confusion_drill_review_card")
