"""The review card's "Model" section says what the active version thinks of the item, or why it gives no opinion.

A round stores predictions of the unlabeled pool and of the holdout only, so on a "model contradicts" card (a labeled
train item) the active version usually has none: it was trained on that very label. The card says so instead of
"has no prediction", and shows the latest label-error search's out-of-fold view, the opinion of a model that never saw
the label, where that search still contradicts the label (tester h52, P7).
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from labeling.models import ResolvedLabel, ReviewTask, ReviewTaskReason, Role, Split
from labeling.services.annotations import annotation_create
from training.models import LabelErrorSearch, ModelVersion, Prediction, RunStatus, TrainingRun

pytestmark = pytest.mark.django_db

LEARNED = "v3 was trained on this item with this label, so its opinion of it is not independent and is not shown."


@pytest.fixture
def world(cat_dog_review):
    """A project where v1 (50 labels) scored an item dog 97 % while it was unlabeled, "ann" then labeled it cat, and v3,
    trained since, is active: the tester's digits project in small."""
    world = cat_dog_review(review_sample_rate=0.0, members={"ann": Role.ANNOTATOR, "rev": Role.REVIEWER})
    project, cat, dog = world["project"], world["cat"], world["dog"]
    classes = [cat.pk, dog.pk]
    world["v1"] = ModelVersion.objects.create(
        project=project, number=1, artifact_path="x", architecture="a", class_ids=classes
    )
    world["v2"] = ModelVersion.objects.create(
        project=project, number=2, artifact_path="x", architecture="a", class_ids=classes
    )
    return world


def _labeled(world, item_factory, *, split=Split.TRAIN, v1_says=(0.03, 0.97)):
    item = item_factory(project=world["project"], split=split)
    Prediction.objects.create(
        item=item, model_version=world["v1"], probabilities=list(v1_says), predicted_class=world["dog"],
        confidence=max(v1_says), uncertainty=1 - max(v1_says),
    )  # fmt: skip
    annotation_create(item=item, user=world["ann"], class_ids=[world["cat"].pk])
    ReviewTask.objects.create(project=world["project"], item=item, reason=ReviewTaskReason.MODEL, score=0.97)
    return item


def _activate_v3(world, *, labels_seen_at):
    """v3, from a round whose snapshot's newest label was written at `labels_seen_at`, made active."""
    run = TrainingRun.objects.create(
        project=world["project"], status=RunStatus.SUCCEEDED, labels_seen_at=labels_seen_at
    )
    return ModelVersion.objects.create(
        project=world["project"], number=3, run=run, artifact_path="x", architecture="a",
        class_ids=[world["cat"].pk, world["dog"].pk], active=True,
    )  # fmt: skip


def _card(client, world) -> str:
    client.force_login(world["rev"])
    html = client.get(reverse("labeling:review", args=[world["project"].slug]), {"reason": "model"}).content.decode()
    return " ".join(html.split())


def _label_written_at(item):
    return ResolvedLabel.objects.get(item=item).updated_at


def test_a_model_contradicts_card_says_the_active_version_learned_the_label_instead_of_has_no_prediction(
    client, world, item_factory
):
    # Given: the item's label "cat" was in v3's training labels (v3's snapshot came after it), so v3 stored no
    # prediction of it
    item = _labeled(world, item_factory)
    _activate_v3(world, labels_seen_at=_label_written_at(item) + timedelta(seconds=1))

    # When: the reviewer opens the "Model contradicts" card
    card = _card(client, world)

    # Then: it says why v3 gives no figures, in words, and names v1's figures as those of a model that had not
    # learned the label
    assert 'id="model-version">v3<' in card
    assert LEARNED in card
    assert "has no prediction" not in card
    raised = card[card.index('id="model-raised"') :]
    assert "This task was raised by <strong>v1</strong>, which had not been trained on this label and said:" in raised
    assert '<span class="name">dog</span>' in raised
    assert "97%" in raised


def test_the_card_shows_the_latest_label_error_search_view_while_it_still_contradicts_the_label(
    client, world, item_factory
):
    # Given: v3 learned the label, and the latest label-error search (out-of-fold: its model never saw the label)
    # says dog at 91 % where the label is cat
    item = _labeled(world, item_factory)
    _activate_v3(world, labels_seen_at=_label_written_at(item) + timedelta(seconds=1))
    cat, dog = world["cat"], world["dog"]
    LabelErrorSearch.objects.create(
        project=world["project"],
        status="ok",
        labels=40,
        suspects={str(item.pk): [cat.pk, dog.pk, 0.91, 0.04, 0.8, 0.1]},
    )

    # When: the reviewer opens the "Model contradicts" card
    card = _card(client, world)

    # Then: beside v3's "trained on it", the search's independent view with its figures
    assert LEARNED in card
    assert (
        "Label-error search: a model that never saw this label says <b>dog</b> (91%); it gives the given label 4%."
        in (card)
    )


def test_a_search_view_of_an_earlier_label_is_not_shown_on_a_model_contradicts_card(client, world, item_factory):
    # Given: the latest search judged an earlier label, dog (its row says given dog, model cat); the label is now cat
    item = _labeled(world, item_factory)
    _activate_v3(world, labels_seen_at=_label_written_at(item) + timedelta(seconds=1))
    cat, dog = world["cat"], world["dog"]
    row = [dog.pk, cat.pk, 0.88, 0.1, 0.8, 0.1]
    LabelErrorSearch.objects.create(project=world["project"], status="ok", labels=40, suspects={str(item.pk): row})

    # When: the reviewer opens the card
    card = _card(client, world)

    # Then: no stale figures about another label
    assert 'id="out-of-sample"' not in card
    assert "88%" not in card


def test_a_label_written_after_the_active_versions_training_still_reads_has_no_prediction(client, world, item_factory):
    # Given: v3's snapshot predates the item's label (the label was given or changed after v3 was trained)
    item = _labeled(world, item_factory)
    _activate_v3(world, labels_seen_at=_label_written_at(item) - timedelta(hours=1))

    # When: the reviewer opens the card
    card = _card(client, world)

    # Then: v3 did not learn this label, and it has no prediction: the card says that, not "trained on"
    assert "v3 has no prediction for this item." in card
    assert "was trained on this item" not in card


def test_a_holdout_item_is_never_called_learned(client, world, item_factory):
    # Given: a holdout item (no version trains on one) labeled before v3's snapshot, with no stored v3 prediction
    item = _labeled(world, item_factory, split=Split.HOLDOUT)
    _activate_v3(world, labels_seen_at=timezone.now() + timedelta(seconds=1))
    assert _label_written_at(item) < timezone.now()

    # When: the reviewer opens the card
    card = _card(client, world)

    # Then: "has no prediction", never "trained on"
    assert "v3 has no prediction for this item." in card
    assert "was trained on this item" not in card


def test_a_stored_prediction_of_the_active_version_is_still_shown(client, world, item_factory):
    # Given: v3 learned nothing of the item's label but stored a prediction of it (a holdout item scored after its
    # activation): dog 80 %
    item = _labeled(world, item_factory, split=Split.HOLDOUT)
    v3 = _activate_v3(world, labels_seen_at=_label_written_at(item) + timedelta(seconds=1))
    Prediction.objects.create(
        item=item, model_version=v3, probabilities=[0.2, 0.8], predicted_class=world["dog"], confidence=0.8,
        uncertainty=0.2,
    )  # fmt: skip

    # When: the reviewer opens the card
    card = _card(client, world)

    # Then: v3's own figures, and no sentence about missing ones
    top = card[card.index('class="model-top"') :]
    assert '<span class="name">dog</span>' in top
    assert "80%" in top
    assert "has no prediction" not in card
    assert "was trained on this item" not in card
    assert 'id="model-raised"' not in card
