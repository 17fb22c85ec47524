"""h50 P13: a reviewer's last verdict can be undone within the grace period, as a label can on the labeling page."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from labeling.models import Item, ItemState, LabelSource, ResolvedLabel, Review, ReviewTask, ReviewTaskReason, Role
from labeling.services.annotations import annotation_create
from labeling.services.reviews import ReviewUndoConflict, review_submit, review_task_open, review_undo

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(cat_dog_review):
    """Two items "ann" labeled cat, each an open audit sample; reviewers "rev" and "rev2"."""
    members = {"ann": Role.ANNOTATOR, "rev": Role.REVIEWER, "rev2": Role.REVIEWER}
    return cat_dog_review(review_sample_rate=0.0, members=members, labeled=2, open_tasks=True)


def _label(item) -> set[str]:
    resolved = getattr(Item.objects.get(pk=item.pk), "resolved", None)
    return set(resolved.classes.values_list("name", flat=True)) if resolved else set()


def _source(item) -> str:
    resolved = getattr(Item.objects.get(pk=item.pk), "resolved", None)
    return resolved.source if resolved else ""


def test_undo_of_a_correction_reopens_the_task_and_restores_the_label(world):
    item, task = world["items"][0], world["tasks"][0]
    before = _source(item)
    review = review_submit(task=task, reviewer=world["rev"], verdict="correct", corrected_class_ids=[world["dog"].pk])
    assert _label(item) == {"dog"}

    undone = review_undo(reviewer=world["rev"], project=world["project"], review_id=review.pk)

    assert undone.reopened[0].pk == task.pk
    assert ReviewTask.objects.get(pk=task.pk).done is False
    assert not Review.objects.exists()
    assert _label(item) == {"cat"}
    assert _source(item) == before


def test_undo_of_a_reject_sends_the_label_back(world):
    item, task = world["items"][0], world["tasks"][0]
    review_submit(task=task, reviewer=world["rev"], verdict="reject")
    assert Item.objects.get(pk=item.pk).state != ItemState.LABELED

    review_undo(reviewer=world["rev"], project=world["project"])

    assert Item.objects.get(pk=item.pk).state == ItemState.LABELED
    assert _label(item) == {"cat"}
    assert ReviewTask.objects.get(pk=task.pk).done is False


def test_a_verdict_past_the_grace_period_is_not_undone(world, settings):
    settings.LABELLOOP_UNDO_GRACE_SECONDS = 60
    review = review_submit(task=world["tasks"][0], reviewer=world["rev"], verdict="accept")
    Review.objects.filter(pk=review.pk).update(created_at=timezone.now() - timedelta(seconds=61))

    with pytest.raises(ReviewUndoConflict, match="Nothing to undo"):
        review_undo(reviewer=world["rev"], project=world["project"], review_id=review.pk)
    assert Review.objects.filter(pk=review.pk).exists()
    assert ReviewTask.objects.get(pk=world["tasks"][0].pk).done is True


def test_another_reviewers_verdict_is_not_yours_to_undo(world):
    review = review_submit(task=world["tasks"][0], reviewer=world["rev2"], verdict="accept")

    with pytest.raises(Review.DoesNotExist, match=f"No verdict #{review.pk} of yours in this project"):
        review_undo(reviewer=world["rev"], project=world["project"], review_id=review.pk)
    with pytest.raises(ReviewUndoConflict, match="Nothing to undo"):
        review_undo(reviewer=world["rev"], project=world["project"])
    assert Review.objects.filter(pk=review.pk).exists()


def test_a_retried_undo_withdraws_nothing_more(world):
    first = review_submit(task=world["tasks"][0], reviewer=world["rev"], verdict="accept")
    second = review_submit(task=world["tasks"][1], reviewer=world["rev"], verdict="reject")
    review_undo(reviewer=world["rev"], project=world["project"], review_id=second.pk)

    with pytest.raises(Review.DoesNotExist):  # the undone verdict is gone: the retry names no verdict of yours
        review_undo(reviewer=world["rev"], project=world["project"], review_id=second.pk)
    assert Review.objects.filter(pk=first.pk).exists()
    assert ReviewTask.objects.get(pk=world["tasks"][0].pk).done is True


def test_an_older_verdict_named_is_refused_with_409(world):
    first = review_submit(task=world["tasks"][0], reviewer=world["rev"], verdict="accept")
    second = review_submit(task=world["tasks"][1], reviewer=world["rev"], verdict="accept")

    with pytest.raises(ReviewUndoConflict, match=f"your last is #{second.pk}"):
        review_undo(reviewer=world["rev"], project=world["project"], review_id=first.pk)
    assert Review.objects.count() == 2


def test_another_projects_verdict_is_404(world, project_factory, label_class_factory, item_factory, member_of):
    other = project_factory(review_sample_rate=0.0)
    fox = label_class_factory(project=other, name="fox", hotkey="1")
    member_of(other, Role.REVIEWER, "rev")
    ann = member_of(other, Role.ANNOTATOR, "ann")
    item = item_factory(project=other)
    annotation_create(item=item, user=ann, class_ids=[fox.pk])
    task = review_task_open(project=other, item=item, reason=ReviewTaskReason.SAMPLE)
    foreign = review_submit(task=task, reviewer=world["rev"], verdict="accept")

    with pytest.raises(Review.DoesNotExist):
        review_undo(reviewer=world["rev"], project=world["project"], review_id=foreign.pk)
    assert Review.objects.filter(pk=foreign.pk).exists()


def test_undo_on_an_imported_label_puts_the_import_back(world, item_factory):
    project = world["project"]
    item = item_factory(project=project)
    ResolvedLabel.objects.create(item=item, project=project, source=LabelSource.IMPORT).classes.set([world["cat"]])
    Item.objects.filter(pk=item.pk).update(state=ItemState.LABELED)
    task = review_task_open(project=project, item=item, reason=ReviewTaskReason.SAMPLE)
    review_submit(task=task, reviewer=world["rev"], verdict="correct", corrected_class_ids=[world["dog"].pk])

    review_undo(reviewer=world["rev"], project=project)

    assert _label(item) == {"cat"}
    assert _source(item) == "import"
    assert not item.annotations.exists()  # the stand-in that carried the verdict is gone


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_the_review_page_undoes_the_verdict_and_shows_the_card_again(client, world):
    project, task = world["project"], world["tasks"][0]
    client.force_login(world["rev"])
    headers = {"HTTP_HX_REQUEST": "true"}
    url = reverse("labeling:review_verdict", args=[project.slug, task.pk])
    after = client.post(url, {"verdict": "correct", "class_ids": str(world["dog"].pk)}, **headers)
    assert after.status_code == 200
    review = Review.objects.get()
    assert f'name="review" value="{review.pk}"' in after.content.decode()  # the card's Undo names the verdict

    undo_url = reverse("labeling:review_undo", args=[project.slug])
    response = client.post(undo_url, {"review": str(review.pk), "task": ""}, follow=True, **headers)

    assert response.status_code == 200
    assert f'data-task="{task.pk}"' in response.content.decode()  # the card again, open
    assert f"Undone: your verdict (correct) on image #{task.item_id} is withdrawn." in _text(response)
    assert _label(world["items"][0]) == {"cat"}
    assert "Undo my last verdict" not in response.content.decode()  # nothing left to undo: no button

    again = client.post(undo_url, {"review": str(review.pk), "task": str(task.pk)}, follow=True, **headers)
    assert f"No verdict #{review.pk} of yours in this project" in _text(again)
    assert f'data-task="{task.pk}"' in again.content.decode()
    assert ReviewTask.objects.get(pk=task.pk).done is False


def test_a_verdict_another_reviewer_has_followed_on_the_item_is_not_undone(world):
    item, task = world["items"][0], world["tasks"][0]
    model_task = review_task_open(project=world["project"], item=item, reason=ReviewTaskReason.MODEL)
    mine = review_submit(task=task, reviewer=world["rev"], verdict="accept")
    review_submit(task=model_task, reviewer=world["rev2"], verdict="correct", corrected_class_ids=[world["dog"].pk])

    with pytest.raises(ReviewUndoConflict, match=f"rev2 has given a verdict on image #{item.pk} since yours"):
        review_undo(reviewer=world["rev"], project=world["project"], review_id=mine.pk)
    assert Review.objects.count() == 2
    assert _label(item) == {"dog"}


def test_z_on_a_page_that_showed_no_verdict_to_undo_withdraws_nothing(client, world):
    """The card's form sends an empty `review` when it showed nothing to undo: a verdict given meanwhile (another tab)
    is not withdrawn by it."""
    project, task = world["project"], world["tasks"][0]
    review_submit(task=task, reviewer=world["rev"], verdict="accept")
    client.force_login(world["rev"])

    response = client.post(
        reverse("labeling:review_undo", args=[project.slug]),
        {"review": "", "task": str(world["tasks"][1].pk)},
        follow=True,
        HTTP_HX_REQUEST="true",
    )

    assert "Not undone: this page showed no verdict to undo." in _text(response)
    assert Review.objects.count() == 1
