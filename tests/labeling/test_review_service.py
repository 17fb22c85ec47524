"""Review queue feeds, verdicts and gold items, through the services a reviewer's clicks call."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from labeling.models import ItemState, LabelSource, ResolvedLabel, Review, ReviewTask, ReviewTaskReason, Role
from labeling.selectors.quality import quality_report
from labeling.selectors.reviews import model_top_classes, review_task_next
from labeling.services.annotations import annotation_create
from labeling.services.queue import item_claim_next
from labeling.services.reviews import (
    item_gold_set,
    review_submit,
    review_tasks_for_items,
    review_tasks_refresh,
    sample_hash,
)
from training.models import ModelVersion, Prediction

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(cat_dog_review, item_factory):
    """(project, cat, dog, ann, bob, rev, item_factory): annotators "ann" and "bob", reviewer "rev", no items."""
    world = cat_dog_review(
        review_sample_rate=0.0, members={"ann": Role.ANNOTATOR, "bob": Role.ANNOTATOR, "rev": Role.REVIEWER}
    )
    return world["project"], world["cat"], world["dog"], world["ann"], world["bob"], world["rev"], item_factory


def resolved_classes(item):
    row = ResolvedLabel.objects.filter(item=item).first()
    return None if row is None else set(row.classes.values_list("name", flat=True))


def test_audit_sample_is_a_stable_hash_of_the_annotation_id(setup):
    project, cat, _dog, ann, _bob, _rev, item_factory = setup
    annotations = [
        annotation_create(item=item_factory(project=project), user=ann, class_ids=[cat.pk]) for _ in range(30)
    ]
    project.review_sample_rate = 0.3  # set afterwards: the annotation hook would already open the sample tasks
    project.save()
    expected = {a.pk for a in annotations if sample_hash(a.pk) < 0.3}
    assert 3 <= len(expected) <= 15  # the hash spreads consecutive ids evenly

    opened = review_tasks_refresh(project=project)
    again = review_tasks_refresh(project=project)

    sampled = set(ReviewTask.objects.filter(reason=ReviewTaskReason.SAMPLE).values_list("annotation_id", flat=True))
    assert sampled == expected
    assert opened[ReviewTaskReason.SAMPLE] == len(expected)
    assert again[ReviewTaskReason.SAMPLE] == 0


def test_disagreeing_annotators_send_the_item_to_review(setup):
    project, cat, dog, ann, bob, _rev, item_factory = setup
    project.annotations_per_item = 2
    project.save()
    item = item_factory(project=project)
    annotation_create(item=item, user=ann, class_ids=[cat.pk])
    annotation_create(item=item, user=bob, class_ids=[dog.pk])
    item.refresh_from_db()
    assert item.state == ItemState.REVIEW

    review_tasks_for_items(project=project, item_ids=[item.pk])

    task = ReviewTask.objects.get(item=item, reason=ReviewTaskReason.DISAGREEMENT)
    assert task.score == pytest.approx(0.5)
    assert review_task_next(project=project) == task


def test_confident_model_contradiction_opens_a_task(setup):
    project, cat, dog, ann, _bob, _rev, item_factory = setup
    contradicted, unsure, agreeing = (item_factory(project=project) for _ in range(3))
    for item in (contradicted, unsure, agreeing):
        annotation_create(item=item, user=ann, class_ids=[cat.pk])
    version = ModelVersion.objects.create(
        project=project, number=1, artifact_path="x", architecture="a", class_ids=[cat.pk, dog.pk], active=True
    )
    for item, probs, predicted in (
        (contradicted, [0.05, 0.95], dog),
        (unsure, [0.2, 0.8], dog),
        (agreeing, [0.97, 0.03], cat),
    ):
        Prediction.objects.create(
            item=item, model_version=version, probabilities=probs, predicted_class=predicted,
            confidence=max(probs), uncertainty=1 - max(probs),
        )  # fmt: skip

    review_tasks_refresh(project=project)

    tasks = ReviewTask.objects.filter(reason=ReviewTaskReason.MODEL)
    assert [t.item_id for t in tasks] == [contradicted.pk]
    assert tasks[0].score == pytest.approx(0.95)


def test_reject_sends_the_item_back_to_the_queue(setup):
    project, cat, _dog, ann, bob, rev, item_factory = setup
    item = item_factory(project=project)
    annotation = annotation_create(item=item, user=ann, class_ids=[cat.pk])
    task = ReviewTask.objects.create(project=project, item=item, annotation=annotation, reason=ReviewTaskReason.SAMPLE)
    assert item_claim_next(project=project, user=bob) is None

    review_submit(task=task, reviewer=rev, verdict="reject", comment="blurry, not a cat")

    item.refresh_from_db()
    assert item.state == ItemState.UNLABELED
    assert resolved_classes(item) is None
    assert Review.objects.get(annotation=annotation).comment == "blurry, not a cat"
    assert item_claim_next(project=project, user=bob) == item
    task.refresh_from_db()
    assert task.done


@pytest.mark.parametrize("verdict", ["accept", "reject"])
def test_a_verdict_answers_every_open_task_about_the_same_label(setup, verdict):
    # Given ann's label up for review twice: an audit sample and a model contradiction
    project, cat, _dog, ann, _bob, rev, item_factory = setup
    item = item_factory(project=project)
    annotation = annotation_create(item=item, user=ann, class_ids=[cat.pk])
    sample = ReviewTask.objects.create(
        project=project, item=item, annotation=annotation, reason=ReviewTaskReason.SAMPLE
    )
    model = ReviewTask.objects.create(project=project, item=item, annotation=annotation, reason=ReviewTaskReason.MODEL)

    # When the reviewer gives a verdict in the model's task
    review_submit(task=model, reviewer=rev, verdict=verdict)

    # Then the audit sample is answered too: the same label is not judged twice, and counts once in the report
    sample.refresh_from_db()
    assert sample.done
    assert review_task_next(project=project) is None
    assert Review.objects.filter(annotation=annotation).count() == 1


def test_correct_makes_the_reviewers_label_win_and_accept_confirms(setup):
    project, cat, dog, ann, _bob, rev, item_factory = setup
    wrong, right = item_factory(project=project), item_factory(project=project)
    a1 = annotation_create(item=wrong, user=ann, class_ids=[cat.pk])
    a2 = annotation_create(item=right, user=ann, class_ids=[dog.pk])
    t1 = ReviewTask.objects.create(project=project, item=wrong, annotation=a1, reason=ReviewTaskReason.SAMPLE)
    t2 = ReviewTask.objects.create(project=project, item=right, annotation=a2, reason=ReviewTaskReason.SAMPLE)
    other = ReviewTask.objects.create(project=project, item=wrong, annotation=a1, reason=ReviewTaskReason.MODEL)

    review_submit(task=t1, reviewer=rev, verdict="correct", corrected_class_ids=[dog.pk])
    review_submit(task=t2, reviewer=rev, verdict="accept")

    assert resolved_classes(wrong) == {"dog"}
    assert ResolvedLabel.objects.get(item=wrong).source == LabelSource.REVIEW
    assert resolved_classes(right) == {"dog"}
    other.refresh_from_db()
    assert other.done  # a correction answers every open question about the item
    row = next(r for r in quality_report(project=project).annotators if r.username == "ann")
    assert (row.reviewed, row.review_accuracy) == (2, 0.5)


@pytest.mark.parametrize(
    ("verdict", "classes", "message"),
    [
        ("maybe", None, "Unknown verdict"),
        ("correct", [], "at least one class"),
        ("correct", [999999], r"Unknown class id\(s\) for this project: \[999999\]"),
    ],
)
def test_bad_verdicts_change_nothing(setup, verdict, classes, message):
    project, cat, _dog, ann, _bob, rev, item_factory = setup
    item = item_factory(project=project)
    annotation = annotation_create(item=item, user=ann, class_ids=[cat.pk])
    task = ReviewTask.objects.create(project=project, item=item, annotation=annotation, reason=ReviewTaskReason.SAMPLE)

    with pytest.raises(ValidationError, match=message):
        review_submit(task=task, reviewer=rev, verdict=verdict, corrected_class_ids=classes)

    assert not Review.objects.exists()
    task.refresh_from_db()
    assert not task.done
    assert resolved_classes(item) == {"cat"}


def test_a_closed_task_cannot_be_answered_twice(setup):
    project, cat, _dog, ann, _bob, rev, item_factory = setup
    item = item_factory(project=project)
    annotation = annotation_create(item=item, user=ann, class_ids=[cat.pk])
    task = ReviewTask.objects.create(project=project, item=item, annotation=annotation, reason=ReviewTaskReason.SAMPLE)
    review_submit(task=task, reviewer=rev, verdict="accept")
    with pytest.raises(ValidationError, match="already closed"):
        review_submit(task=ReviewTask.objects.get(pk=task.pk), reviewer=rev, verdict="reject")
    assert Review.objects.count() == 1


def test_wrong_gold_answers_go_to_review_and_score_the_annotator(setup):
    project, cat, dog, ann, _bob, _rev, item_factory = setup
    gold_items = [item_factory(project=project) for _ in range(2)]
    for item in gold_items:
        item_gold_set(item=item, class_ids=[cat.pk])
    annotation_create(item=gold_items[0], user=ann, class_ids=[cat.pk])
    annotation_create(item=gold_items[1], user=ann, class_ids=[dog.pk])

    review_tasks_refresh(project=project)

    gold_tasks = ReviewTask.objects.filter(reason=ReviewTaskReason.GOLD)
    assert [t.item_id for t in gold_tasks] == [gold_items[1].pk]
    row = next(r for r in quality_report(project=project).annotators if r.username == "ann")
    assert (row.gold_answers, row.gold_accuracy) == (2, 0.5)


def test_marking_an_item_gold_after_the_fact_flags_wrong_answers(setup):
    project, cat, dog, ann, _bob, _rev, item_factory = setup
    item = item_factory(project=project)
    annotation_create(item=item, user=ann, class_ids=[dog.pk])
    item_gold_set(item=item, class_ids=[cat.pk])
    assert ReviewTask.objects.filter(item=item, reason=ReviewTaskReason.GOLD, done=False).exists()
    with pytest.raises(ValidationError):
        item_gold_set(item=item, class_ids=[cat.pk, dog.pk])  # single-label project


def test_agreement_figures_for_two_annotators(setup):
    project, cat, dog, ann, bob, _rev, item_factory = setup
    project.annotations_per_item = 2
    project.save()
    # ann: cat cat dog dog ; bob: cat dog dog dog -> 3 of 4 agree.
    for a, b in ((cat, cat), (cat, dog), (dog, dog), (dog, dog)):
        item = item_factory(project=project)
        annotation_create(item=item, user=ann, class_ids=[a.pk])
        annotation_create(item=item, user=bob, class_ids=[b.pk])

    report = quality_report(project=project)

    from sklearn.metrics import cohen_kappa_score

    assert report.items_multiply_labeled == 4
    (pair,) = report.pairs
    assert pair.agreement == pytest.approx(0.75)
    assert pair.kappa == pytest.approx(cohen_kappa_score(["c", "c", "d", "d"], ["c", "d", "d", "d"]))
    assert report.fleiss_kappa is not None
    assert report.krippendorff_alpha is not None
    assert {r.username: r.peer_agreement for r in report.annotators} == {"ann": 0.75, "bob": 0.75}


def test_a_correction_to_the_given_class_is_refused_and_changes_nothing(setup):
    # Given: ann labeled the item "cat" and it is up for audit.
    project, cat, dog, ann, _bob, rev, item_factory = setup
    item = item_factory(project=project)
    annotation = annotation_create(item=item, user=ann, class_ids=[cat.pk])
    task = ReviewTask.objects.create(project=project, item=item, annotation=annotation, reason=ReviewTaskReason.SAMPLE)

    # When / then: a "correction" to cat is refused; nothing is recorded and the task stays open.
    with pytest.raises(ValidationError, match="already the given label"):
        review_submit(task=task, reviewer=rev, verdict="correct", corrected_class_ids=[cat.pk])
    assert not Review.objects.exists()
    task.refresh_from_db()
    assert not task.done
    assert ResolvedLabel.objects.get(item=item).source != LabelSource.REVIEW

    # A real correction still goes through.
    review_submit(task=task, reviewer=rev, verdict="correct", corrected_class_ids=[dog.pk])
    assert resolved_classes(item) == {"dog"}


def test_a_correction_to_an_imported_label_is_refused_too(setup):
    # Given: an item labeled only by import (no annotation), sent to review by the model.
    project, cat, _dog, _ann, _bob, rev, item_factory = setup
    item = item_factory(project=project)
    resolved = ResolvedLabel.objects.create(item=item, project=project, source=LabelSource.IMPORT)
    resolved.classes.set([cat])
    task = ReviewTask.objects.create(project=project, item=item, reason=ReviewTaskReason.MODEL)

    with pytest.raises(ValidationError, match="already the given label"):
        review_submit(task=task, reviewer=rev, verdict="correct", corrected_class_ids=[cat.pk])

    assert not Review.objects.exists()
    assert item.annotations.count() == 0  # no reviewer annotation row left behind


def test_model_top_classes_reads_only_the_active_version(setup):
    # Given: v1 predicted the item, v2 is active and has not scored it yet.
    project, cat, dog, _ann, _bob, _rev, item_factory = setup
    item = item_factory(project=project)
    v1 = ModelVersion.objects.create(
        project=project, number=1, artifact_path="x", architecture="a", class_ids=[cat.pk, dog.pk]
    )
    ModelVersion.objects.create(
        project=project, number=2, artifact_path="x", architecture="a", class_ids=[cat.pk, dog.pk], active=True
    )
    Prediction.objects.create(
        item=item, model_version=v1, probabilities=[0.1, 0.9], predicted_class=dog, confidence=0.9, uncertainty=0.1
    )

    top, version = model_top_classes(item=item)

    assert (top, version) == ([], 2)


def test_a_model_contradiction_card_shows_what_the_version_that_raised_it_said(setup, client):
    # Given: v1 said dog at 97 % on ann's "cat" and raised a task; v2 is active and has not scored the image
    project, cat, dog, ann, _bob, rev, item_factory = setup
    item = item_factory(project=project)
    annotation_create(item=item, user=ann, class_ids=[cat.pk])
    v1 = ModelVersion.objects.create(
        project=project, number=1, artifact_path="x", architecture="a", class_ids=[cat.pk, dog.pk]
    )
    Prediction.objects.create(
        item=item, model_version=v1, probabilities=[0.03, 0.97], predicted_class=dog, confidence=0.97, uncertainty=0.03
    )
    ModelVersion.objects.create(
        project=project, number=2, artifact_path="x", architecture="a", class_ids=[cat.pk, dog.pk], active=True
    )
    ReviewTask.objects.create(project=project, item=item, reason=ReviewTaskReason.MODEL, score=0.97)
    client.force_login(rev)

    # When the reviewer opens it, then the card says why v2 gives no opinion (v2, made after the label, learned it:
    # a round stores no prediction of a label it trained on) and shows v1's claim, made without this label
    card = " ".join(
        client.get(reverse("labeling:review", args=[project.slug]), {"reason": "model"}).content.decode().split()
    )
    assert "v2 was trained on this item with this label, so its opinion of it is not independent" in card
    assert "has no prediction" not in card
    raised = card[card.index('id="model-raised"') :]
    assert "This task was raised by <strong>v1</strong>, which had not been trained on this label and said:" in raised
    assert '<span class="name">dog</span>' in raised
    assert "97%" in raised


@pytest.mark.parametrize("verdict", ["accept", "reject", "correct"])
def test_a_reviewer_cannot_judge_their_own_label_on_the_review_page(setup, client, verdict):
    # given: a reviewer who also labels, and an audit task on their own label
    project, cat, dog, _ann, _bob, rev, item_factory = setup
    item = item_factory(project=project)
    own = annotation_create(item=item, user=rev, class_ids=[cat.pk])
    task = ReviewTask.objects.create(project=project, item=item, annotation=own, reason=ReviewTaskReason.SAMPLE)
    client.force_login(rev)

    # when: they press a verdict on it
    answer = client.post(
        reverse("labeling:review_verdict", args=[project.slug, task.pk]),
        {"verdict": verdict, "class_ids": [dog.pk]},
        HTTP_HX_REQUEST="true",
    )

    # then: the error card says why, and nothing changed
    assert answer.status_code == 400
    assert "your own label" in answer.content.decode()
    assert 'role="alert"' in answer.content.decode()
    assert not Review.objects.exists()
    task.refresh_from_db()
    assert not task.done
    assert resolved_classes(item) == {"cat"}


def test_another_reviewer_may_judge_it_and_an_imported_label_record_stays_reviewable(setup, member_of):
    project, cat, _dog, _ann, _bob, rev, item_factory = setup
    other = member_of(project, Role.REVIEWER, "rev2")
    item = item_factory(project=project)
    own = annotation_create(item=item, user=rev, class_ids=[cat.pk])
    task = ReviewTask.objects.create(project=project, item=item, annotation=own, reason=ReviewTaskReason.SAMPLE)

    review_submit(task=task, reviewer=other, verdict="accept")

    # An imported label judged by rev is recorded in rev's name; a later question about it is still rev's to answer.
    imported = item_factory(project=project)
    resolved = ResolvedLabel.objects.create(item=imported, project=project, source=LabelSource.IMPORT)
    resolved.classes.set([cat])
    first = ReviewTask.objects.create(project=project, item=imported, reason=ReviewTaskReason.MODEL)
    review_submit(task=first, reviewer=rev, verdict="accept")
    again = ReviewTask.objects.create(project=project, item=imported, reason=ReviewTaskReason.SAMPLE)
    review_submit(task=again, reviewer=rev, verdict="accept")
    assert Review.objects.filter(reviewer=rev).count() == 2


@pytest.mark.parametrize("after", ["abc", "-1", "1.5", "²", str(2**63), str(2**70)])
def test_a_crafted_next_link_is_a_404_not_a_server_error(setup, client, after):
    project, _cat, _dog, _ann, _bob, rev, _item_factory = setup
    client.force_login(rev)
    answer = client.get(reverse("labeling:review", args=[project.slug]), {"after": after})
    assert answer.status_code == 404


def test_the_next_link_still_skips_the_task_on_screen(setup, client):
    project, cat, _dog, ann, _bob, rev, item_factory = setup
    tasks = []
    for _ in range(2):
        item = item_factory(project=project)
        annotation = annotation_create(item=item, user=ann, class_ids=[cat.pk])
        tasks.append(
            ReviewTask.objects.create(project=project, item=item, annotation=annotation, reason=ReviewTaskReason.GOLD)
        )
    client.force_login(rev)
    first = client.get(reverse("labeling:review", args=[project.slug]), {"reason": "gold"}).context["task"]
    second = client.get(reverse("labeling:review", args=[project.slug]), {"reason": "gold", "after": first.pk})
    assert second.status_code == 200
    assert {first.pk, second.context["task"].pk} == {t.pk for t in tasks}
