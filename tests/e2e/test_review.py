"""A reviewer works the review queue with the keyboard in headless Chromium: accept, reject, correct."""

import pytest

from labeling.models import ItemState, ResolvedLabel, Review, Role
from labeling.selectors.quality import quality_report
from labeling.services.annotations import annotation_create
from labeling.services.queue import item_claim_next

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def _wait_for_next_card(page, old_task: str) -> str:
    page.wait_for_function(
        "old => { const c = document.getElementById('review-card'); return c && c.dataset.task !== old; }",
        arg=old_task,
    )
    return page.get_attribute("#review-card", "data-task")


def test_reviewer_accepts_rejects_and_corrects_by_keyboard(
    page, login, screenshot, project_factory, label_class_factory, item_factory, member_of
):
    project = project_factory(name="Pets", review_sample_rate=1.0)
    cat = label_class_factory(project=project, name="cat", hotkey="1")
    label_class_factory(project=project, name="dog", hotkey="2")
    ann = member_of(project, Role.ANNOTATOR, "ann")
    bob = member_of(project, Role.ANNOTATOR, "bob")
    member_of(project, Role.REVIEWER, "rita")
    items = [item_factory(project=project) for _ in range(3)]
    for item in items:
        annotation_create(item=item, user=ann, class_ids=[cat.pk])

    login("rita")
    page.goto(f"/p/{project.slug}/review/")
    first = page.get_attribute("#review-card", "data-task")
    assert first
    assert page.locator("#given-annotator").inner_text() == "ann"
    screenshot("review-card")

    page.keyboard.press("a")
    second = _wait_for_next_card(page, first)
    page.keyboard.press("r")
    third = _wait_for_next_card(page, second)
    assert not page.locator("#correct-classes").is_visible()
    page.keyboard.press("c")
    assert page.locator("#correct-classes").is_visible()
    page.keyboard.press("2")
    _wait_for_next_card(page, third)
    assert "Nothing to review" in page.locator("#review-card").inner_text()

    verdicts = {r.annotation.item_id: r.verdict for r in Review.objects.select_related("annotation")}
    assert sorted(verdicts.values()) == ["accept", "correct", "reject"]
    by_verdict = {v: item_id for item_id, v in verdicts.items()}
    corrected = ResolvedLabel.objects.get(item_id=by_verdict["correct"])
    assert list(corrected.classes.values_list("name", flat=True)) == ["dog"]
    assert corrected.source == "review"
    rejected = by_verdict["reject"]
    assert ResolvedLabel.objects.filter(item_id=rejected).count() == 0
    assert project.items.get(pk=rejected).state == ItemState.UNLABELED
    # The rejected item is back in the queue: another annotator is served it.
    served = item_claim_next(project=project, user=bob)
    assert served is not None
    assert served.pk == rejected

    # Annotator accuracy against reviews: accept right, reject and correct wrong -> 1 of 3.
    row = next(r for r in quality_report(project=project).annotators if r.username == "ann")
    assert (row.reviewed, round(row.review_accuracy, 3)) == (3, 0.333)
    page.goto(f"/p/{project.slug}/quality/")
    assert "33%" in page.locator('tr[data-user="ann"] .review-accuracy').inner_text()
    screenshot("label-quality")


def test_annotator_is_refused_the_review_page_and_never_sees_gold_answers(
    page, login, project_factory, label_class_factory, item_factory, member_of
):
    project = project_factory(name="Zoo", slug="zoo", gold_rate=1.0)
    label_class_factory(project=project, name="cat", hotkey="1")
    zebra = label_class_factory(project=project, name="zebra-secret", hotkey="2")
    member_of(project, Role.ANNOTATOR, "ann")
    gold = item_factory(project=project, is_gold=True)
    gold.gold_classes.set([zebra])

    login("ann")
    response = page.goto(f"/p/{project.slug}/review/")
    assert response.status == 403
    response = page.goto(f"/p/{project.slug}/quality/")
    assert response.status == 403

    response = page.goto(f"/p/{project.slug}/label/")
    if response.status == 501:
        pytest.skip("the label page is not built yet")
    html = page.content()
    assert page.locator("#item-card").get_attribute("data-item") == str(gold.pk)  # the gold item is served
    assert "gold" not in html.lower()
    assert page.locator(".class-btn.on").count() == 0  # nothing preselected from the gold answer
