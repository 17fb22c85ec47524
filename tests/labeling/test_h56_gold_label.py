"""A gold item's label is its gold answer from the moment it is marked gold, and its answers again once it is not;
answers that differ on a gold item are gold checks, never a disagreement to settle, even in a full refresh of the
review feeds (stop 56: gold items are served to every annotator, past the overlap)."""

from __future__ import annotations

import pytest

from labeling.models import Item, ItemState, ResolvedLabel, ReviewTask, ReviewTaskReason
from labeling.services.annotations import annotation_create
from labeling.services.reviews import item_gold_clear, item_gold_set
from labeling.services.reviews.feeds import review_tasks_refresh

pytestmark = pytest.mark.django_db


def label_of(item) -> set[str]:
    return set(ResolvedLabel.objects.get(item=item).classes.values_list("name", flat=True))


@pytest.fixture
def labeled_circle(project_factory, label_class_factory, item_factory, member_of):
    """An item two annotators labeled circle (overlap 2), in a project with circle and square."""
    project = project_factory(slug="shapes", annotations_per_item=2)
    circle = label_class_factory(project=project, name="circle")
    square = label_class_factory(project=project, name="square")
    item = item_factory(project=project)
    for name in ("ann1", "ann2"):
        annotation_create(item=item, user=member_of(project, username=name), class_ids=[circle.pk])
    return project, item, circle, square


def test_marking_gold_makes_the_gold_answer_the_label_at_once_and_clearing_gives_it_back(labeled_circle):
    _, item, _, square = labeled_circle
    assert label_of(item) == {"circle"}

    # When a manager marks it gold with the answer square, its label is square at once (exports, training)
    item_gold_set(item=item, class_ids=[square.pk])
    assert label_of(item) == {"square"}
    assert Item.objects.get(pk=item.pk).state == ItemState.LABELED

    # ... and when it stops being gold, its annotators' label is back
    item_gold_clear(item=Item.objects.get(pk=item.pk))
    assert label_of(item) == {"circle"}


def test_a_full_refresh_opens_no_disagreement_on_a_gold_item_whose_answers_differ(labeled_circle, member_of):
    # Given a gold item (answer circle) that a third annotator answered square, past the overlap
    project, item, circle, square = labeled_circle
    item_gold_set(item=item, class_ids=[circle.pk])
    annotation_create(
        item=Item.objects.get(pk=item.pk), user=member_of(project, username="ann3"), class_ids=[square.pk]
    )

    # When the review feeds are refreshed in full
    review_tasks_refresh(project=project)

    # Then the wrong answer is a gold check and nothing is a disagreement
    open_reasons = set(ReviewTask.objects.filter(project=project, done=False).values_list("reason", flat=True))
    assert ReviewTaskReason.GOLD in open_reasons
    assert ReviewTaskReason.DISAGREEMENT not in open_reasons
    assert label_of(item) == {"circle"}
