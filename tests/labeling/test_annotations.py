"""Labels, skips and undo are append-only; bad input changes nothing; the resolved label follows the rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from labeling.models import (
    Annotation,
    Item,
    ItemState,
    LabelSource,
    ResolvedLabel,
    Review,
    ReviewTask,
    ReviewTaskReason,
    TaskType,
    Verdict,
)
from labeling.services.annotations import LabelingConflict, annotation_create, annotation_skip, annotation_undo
from labeling.services.queue import item_claim_next
from labeling.services.resolution import resolved_label_recompute
from labeling.services.reviews import review_submit, review_task_open, sample_hash
from tests.factories import bulk_items

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(project_factory, label_class_factory, member_of):
    def make(overlap: int = 1, task_type: str = TaskType.SINGLE, n: int = 1):
        project = project_factory(annotations_per_item=overlap, task_type=task_type, holdout_fraction=0.0)
        classes = [label_class_factory(project=project, name=name) for name in ("cat", "dog", "bird")]
        items = bulk_items(project, n)
        return project, classes, items

    return make


def snapshot():
    return (
        Annotation.objects.count(),
        list(Item.objects.order_by("id").values_list("state", "annotation_count", "lease_user_id")),
        ResolvedLabel.objects.count(),
    )


def test_label_sets_resolved_label_and_history(setup, member_of):
    project, (cat, *_), [item] = setup()
    user = member_of(project)
    item = item_claim_next(project=project, user=user)
    annotation = annotation_create(item=item, user=user, class_ids=[cat.pk], seconds_spent=3.5)
    resolved = ResolvedLabel.objects.get(item=item)
    assert list(resolved.classes.values_list("name", flat=True)) == ["cat"]
    assert resolved.source == LabelSource.SINGLE
    assert annotation.seconds_spent == 3.5
    assert Item.objects.get(pk=item.pk).state == ItemState.LABELED


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("two classes in single-label", ValidationError),
        ("no class", ValidationError),
        ("class of another project", ValidationError),
        ("archived class", ValidationError),
        ("negative seconds", ValidationError),
        ("already labeled by someone", LabelingConflict),
        ("leased by someone else", LabelingConflict),
    ],
)
def test_bad_input_changes_nothing(setup, member_of, label_class_factory, project_factory, case, error):
    project, (cat, dog, _), [item] = setup()
    user, other = member_of(project), member_of(project)
    kwargs = {"item": item, "user": user, "class_ids": [cat.pk], "seconds_spent": 1}
    if case == "two classes in single-label":
        kwargs["class_ids"] = [cat.pk, dog.pk]
    elif case == "no class":
        kwargs["class_ids"] = []
    elif case == "class of another project":
        kwargs["class_ids"] = [label_class_factory(project=project_factory()).pk]
    elif case == "archived class":
        cat.archived = True
        cat.save()
    elif case == "negative seconds":
        kwargs["seconds_spent"] = -1
    elif case == "already labeled by someone":
        annotation_create(item=item, user=other, class_ids=[dog.pk])
    elif case == "leased by someone else":
        item_claim_next(project=project, user=other)
    before = snapshot()
    with pytest.raises(error):
        annotation_create(**kwargs)
    assert snapshot() == before


def test_cannot_label_the_same_item_twice(setup, member_of):
    project, (cat, *_), [item] = setup(overlap=3)
    user = member_of(project)
    annotation_create(item=item, user=user, class_ids=[cat.pk])
    with pytest.raises(LabelingConflict, match="already"):
        annotation_create(item=item, user=user, class_ids=[cat.pk])
    with pytest.raises(LabelingConflict):
        annotation_skip(item=item, user=user)
    assert Annotation.objects.count() == 1


def test_multi_label_takes_several_classes(setup, member_of):
    project, (cat, dog, _), [item] = setup(task_type=TaskType.MULTI)
    user = member_of(project)
    annotation_create(item=item, user=user, class_ids=[cat.pk, dog.pk])
    assert set(ResolvedLabel.objects.get(item=item).classes.values_list("name", flat=True)) == {"cat", "dog"}


def test_undo_within_grace_withdraws_the_label_and_leases_it_back(setup, member_of):
    project, (cat, *_), [item] = setup()
    user = member_of(project)
    first = annotation_create(item=item_claim_next(project=project, user=user), user=user, class_ids=[cat.pk])
    undo = annotation_undo(user=user, project=project)
    assert undo.undoes_id == first.pk
    assert Annotation.objects.count() == 2  # history kept
    row = Item.objects.get(pk=item.pk)
    assert (row.state, row.annotation_count, row.lease_user_id) == (ItemState.UNLABELED, 0, user.pk)
    assert not ResolvedLabel.objects.filter(item=item).exists()
    assert item_claim_next(project=project, user=user).pk == item.pk
    assert item_claim_next(project=project, user=member_of(project)) is None  # leased to the undoer
    with pytest.raises(LabelingConflict, match="Nothing to undo"):
        annotation_undo(user=user, project=project)


def test_undo_after_grace_is_refused(setup, member_of, settings):
    project, (cat, *_), [item] = setup()
    user = member_of(project)
    annotation = annotation_create(item=item, user=user, class_ids=[cat.pk])
    Annotation.objects.filter(pk=annotation.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.LABELLOOP_UNDO_GRACE_SECONDS + 5)
    )
    before = snapshot()
    with pytest.raises(LabelingConflict):
        annotation_undo(user=user, project=project)
    assert snapshot() == before


def test_undo_of_a_skip_brings_the_item_back_at_once(setup, member_of):
    project, _, [first, _second] = setup(n=2)
    user = member_of(project)
    annotation_skip(item=item_claim_next(project=project, user=user), user=user)
    # Without the undo, the skipped item would wait behind the second one.
    annotation_undo(user=user, project=project)
    assert item_claim_next(project=project, user=user).pk == first.pk


def test_a_skipped_item_served_again_takes_a_normal_label(setup, member_of):
    project, (cat, *_), [item] = setup()
    user = member_of(project)
    annotation_skip(item=item_claim_next(project=project, user=user), user=user)
    again = item_claim_next(project=project, user=user)
    assert again.pk == item.pk
    label = annotation_create(item=again, user=user, class_ids=[cat.pk])
    resolved = ResolvedLabel.objects.get(item=item)
    assert list(resolved.classes.values_list("name", flat=True)) == ["cat"]
    assert resolved.source == LabelSource.SINGLE
    assert not label.skipped
    assert Item.objects.get(pk=item.pk).state == ItemState.LABELED
    # Labeled now: it never comes back, and a second label is refused.
    assert item_claim_next(project=project, user=user) is None
    with pytest.raises(LabelingConflict):
        annotation_create(item=item, user=user, class_ids=[cat.pk])


def label(item, user, *classes):
    return annotation_create(item=Item.objects.get(pk=item.pk), user=user, class_ids=[c.pk for c in classes])


def test_overlap_majority_and_tie(setup, member_of):
    project, (cat, dog, bird), [a, b] = setup(overlap=3, n=2)
    u1, u2, u3 = (member_of(project) for _ in range(3))
    label(a, u1, cat)
    label(a, u2, dog)
    assert Item.objects.get(pk=a.pk).state == ItemState.PARTIAL
    label(a, u3, cat)
    resolved = ResolvedLabel.objects.get(item=a)
    assert (resolved.source, list(resolved.classes.values_list("name", flat=True))) == ("consensus", ["cat"])
    label(b, u1, cat)
    label(b, u2, dog)
    label(b, u3, bird)
    row = Item.objects.get(pk=b.pk)
    assert (row.state, row.annotation_count) == (ItemState.REVIEW, 3)
    assert not ResolvedLabel.objects.filter(item=b).exists()


def test_reviews_override_annotations(setup, member_of):
    project, (cat, dog, bird), [item] = setup(overlap=2)
    u1, u2, reviewer = member_of(project), member_of(project), member_of(project, "reviewer")
    first = label(item, u1, cat)
    second = label(item, u2, dog)
    assert Item.objects.get(pk=item.pk).state == ItemState.REVIEW
    Review.objects.create(annotation=second, reviewer=reviewer, verdict=Verdict.ACCEPT)
    resolved = resolved_label_recompute(item=Item.objects.get(pk=item.pk))
    assert (resolved.source, [c.name for c in resolved.classes.all()]) == ("review", ["dog"])
    stamp = resolved.updated_at
    correct = Review.objects.create(annotation=first, reviewer=reviewer, verdict=Verdict.CORRECT)
    correct.corrected_classes.set([bird])
    resolved = resolved_label_recompute(item=Item.objects.get(pk=item.pk))
    assert [c.name for c in resolved.classes.all()] == ["bird"]
    assert resolved.updated_at > stamp
    assert Item.objects.get(pk=item.pk).state == ItemState.LABELED


def test_rejected_annotation_no_longer_counts(setup, member_of):
    project, (cat, *_), [item] = setup()
    user, reviewer = member_of(project), member_of(project, "reviewer")
    annotation = label(item, user, cat)
    Review.objects.create(annotation=annotation, reviewer=reviewer, verdict=Verdict.REJECT)
    assert resolved_label_recompute(item=Item.objects.get(pk=item.pk)) is None
    row = Item.objects.get(pk=item.pk)
    assert (row.state, row.annotation_count) == (ItemState.UNLABELED, 0)


def test_unchanged_recompute_keeps_updated_at(setup, member_of):
    project, (cat, *_), [item] = setup()
    label(item, member_of(project), cat)
    stamp = ResolvedLabel.objects.get(item=item).updated_at
    resolved_label_recompute(item=Item.objects.get(pk=item.pk))
    assert ResolvedLabel.objects.get(item=item).updated_at == stamp


def test_imported_label_survives_recompute(setup):
    project, (cat, *_), [item] = setup()
    resolved = ResolvedLabel.objects.create(item=item, project=project, source=LabelSource.IMPORT)
    resolved.classes.set([cat])
    Item.objects.filter(pk=item.pk).update(state=ItemState.LABELED)
    assert resolved_label_recompute(item=Item.objects.get(pk=item.pk)).pk == resolved.pk
    assert Item.objects.get(pk=item.pk).state == ItemState.LABELED


def imported(project, item, cls):
    resolved = ResolvedLabel.objects.create(item=item, project=project, source=LabelSource.IMPORT)
    resolved.classes.set([cls])
    Item.objects.filter(pk=item.pk).update(state=ItemState.LABELED)
    return resolved


def test_rejecting_an_imported_label_sends_the_item_back_to_the_queue(setup, member_of):
    project, (cat, *_), [item] = setup()
    imported(project, item, cat)
    annotator, reviewer = member_of(project, username="ann"), member_of(project, "reviewer", username="rev")
    assert item_claim_next(project=project, user=annotator) is None  # labeled by import: not served
    task = review_task_open(project=project, item=item, reason=ReviewTaskReason.LABEL_ERROR, score=0.9)

    review_submit(task=task, reviewer=reviewer, verdict=Verdict.REJECT)

    assert not ResolvedLabel.objects.filter(item=item).exists()
    assert Item.objects.get(pk=item.pk).state == ItemState.UNLABELED
    claimed = item_claim_next(project=project, user=annotator)
    assert claimed is not None
    assert claimed.pk == item.pk
    annotation_create(item=claimed, user=annotator, class_ids=[cat.pk])
    assert ResolvedLabel.objects.get(item=item).source == LabelSource.SINGLE


def test_accepting_an_imported_label_keeps_its_classes(setup, member_of):
    project, (cat, *_), [item] = setup()
    imported(project, item, cat)
    reviewer = member_of(project, "reviewer")
    task = review_task_open(project=project, item=item, reason=ReviewTaskReason.LABEL_ERROR)

    review_submit(task=task, reviewer=reviewer, verdict=Verdict.ACCEPT)

    resolved = ResolvedLabel.objects.get(item=item)
    assert (resolved.source, list(resolved.classes.values_list("name", flat=True))) == (LabelSource.REVIEW, ["cat"])
    assert Item.objects.get(pk=item.pk).state == ItemState.LABELED


def open_tasks(reason):
    return list(ReviewTask.objects.filter(reason=reason, done=False).values_list("item_id", "annotation_id"))


@pytest.mark.parametrize("rate", [0.0, 0.5, 1.0])
def test_labels_in_the_audit_sample_reach_the_review_queue_as_they_arrive(setup, member_of, rate):
    project, (cat, *_), items = setup(n=12)
    project.review_sample_rate = rate
    project.save()
    user = member_of(project)

    annotations = [annotation_create(item=item, user=user, class_ids=[cat.pk]) for item in items]

    expected = sorted((a.item_id, a.pk) for a in annotations if sample_hash(a.pk) < rate)
    assert sorted(open_tasks(ReviewTaskReason.SAMPLE)) == expected
    assert (len(expected) == 12) if rate == 1.0 else (len(expected) < 12)


def test_a_second_annotator_who_disagrees_opens_a_disagreement_task(setup, member_of):
    project, (cat, dog, _), [agreed, disputed] = setup(overlap=2, n=2)
    project.review_sample_rate = 0.0
    project.save()
    ann, bob = member_of(project, username="ann"), member_of(project, username="bob")
    for user, first, second in ((ann, cat, cat), (bob, cat, dog)):
        annotation_create(item=agreed, user=user, class_ids=[first.pk])
        annotation_create(item=disputed, user=user, class_ids=[second.pk])

    assert [item_id for item_id, _ in open_tasks(ReviewTaskReason.DISAGREEMENT)] == [disputed.pk]
    assert Item.objects.get(pk=disputed.pk).state == ItemState.REVIEW


def test_a_wrong_answer_on_a_gold_item_opens_a_gold_task(setup, member_of):
    project, (cat, dog, _), [right, wrong] = setup(n=2)
    project.review_sample_rate = 0.0
    project.save()
    for item in (right, wrong):
        Item.objects.filter(pk=item.pk).update(is_gold=True)
        item.gold_classes.set([cat])
    user = member_of(project)

    annotation_create(item=Item.objects.get(pk=right.pk), user=user, class_ids=[cat.pk])
    wrong_answer = annotation_create(item=Item.objects.get(pk=wrong.pk), user=user, class_ids=[dog.pk])

    assert open_tasks(ReviewTaskReason.GOLD) == [(wrong.pk, wrong_answer.pk)]


def test_a_plain_label_pays_nothing_for_the_review_hook(setup, member_of, django_assert_max_num_queries):
    project, (cat, *_), items = setup(n=20)
    project.review_sample_rate = 0.0
    project.save()
    user = member_of(project)
    with django_assert_max_num_queries(12):  # lock, checks, writes, resolved label (+2: the test's savepoint)
        annotation_create(item=items[0], user=user, class_ids=[cat.pk])
    project.review_sample_rate = 0.2
    project.save()
    costs = {True: set(), False: set()}
    for item in items[1:]:
        with CaptureQueriesContext(connection) as captured:
            annotation = annotation_create(item=item, user=user, class_ids=[cat.pk])
        costs[sample_hash(annotation.pk) < 0.2].add(len(captured))
    assert costs[False] == {12}  # outside the sample: not one query more than with sampling off
    assert costs[True]
    assert min(costs[True]) > 12  # sampled: the hook ran and opened the task


def test_undoing_a_sampled_label_drops_its_review_task(setup, member_of):
    project, (cat, dog, _), [item] = setup()
    project.review_sample_rate = 1.0
    project.save()
    user = member_of(project)
    annotation_create(item=item_claim_next(project=project, user=user), user=user, class_ids=[cat.pk])
    assert len(open_tasks(ReviewTaskReason.SAMPLE)) == 1

    annotation_undo(user=user, project=project)

    assert open_tasks(ReviewTaskReason.SAMPLE) == []
    relabeled = annotation_create(item=Item.objects.get(pk=item.pk), user=user, class_ids=[dog.pk])
    assert open_tasks(ReviewTaskReason.SAMPLE) == [(item.pk, relabeled.pk)]  # the new label is audited instead


def test_labels_and_skips_record_when_their_image_was_shown(setup, member_of):
    project, (cat, *_), [first, second] = setup(n=2)
    user = member_of(project)
    shown = timezone.now() - timedelta(seconds=4)
    label = annotation_create(item=first, user=user, class_ids=[cat.pk], shown_at=shown)
    skip = annotation_skip(item=second, user=user, shown_at=shown - timedelta(seconds=1))
    assert Annotation.objects.get(pk=label.pk).shown_at == shown
    assert Annotation.objects.get(pk=skip.pk).shown_at == shown - timedelta(seconds=1)
    # The rule "a label applies only to an image that was on screen" is checkable on every row.
    for row in Annotation.objects.all():
        assert row.shown_at <= row.created_at


def test_shown_at_slightly_ahead_is_clamped_and_far_ahead_is_refused(setup, member_of):
    project, (cat, *_), [first, second] = setup(n=2)
    user = member_of(project)
    # A client clock a few seconds fast: stored as the server's now, never after the label itself.
    label = annotation_create(
        item=first, user=user, class_ids=[cat.pk], shown_at=timezone.now() + timedelta(seconds=20)
    )
    stored = Annotation.objects.get(pk=label.pk)
    assert stored.shown_at <= stored.created_at
    # An image "shown" ten minutes from now was never seen: bad input, nothing changes.
    before = snapshot()
    with pytest.raises(ValidationError):
        annotation_skip(item=second, user=user, shown_at=timezone.now() + timedelta(minutes=10))
    assert snapshot() == before


def test_the_database_refuses_a_label_made_before_its_image_was_shown(setup, member_of):
    from django.db import IntegrityError, transaction

    project, _, [item] = setup()
    user = member_of(project)
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotation.objects.create(item=item, user=user, skipped=True, shown_at=timezone.now() + timedelta(hours=1))


def test_a_repeated_skip_is_refused_until_the_queue_serves_the_item_again(setup, member_of):
    project, _, [first, _second] = setup(n=2)
    user = member_of(project)
    annotation_skip(item=item_claim_next(project=project, user=user), user=user)
    # A second skip key for the same card (a stale page, a repeated key) records nothing.
    before = snapshot()
    with pytest.raises(LabelingConflict, match="already skipped"):
        annotation_skip(item=first, user=user)
    assert snapshot() == before
    # Once served again (second done), skipping it again is taken.
    annotation_skip(item=item_claim_next(project=project, user=user), user=user)
    again = item_claim_next(project=project, user=user)
    assert again.pk == first.pk
    annotation_skip(item=again, user=user)
    assert Annotation.objects.filter(item=first, user=user, skipped=True).count() == 2
