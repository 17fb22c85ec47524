"""A round compares its new version with the active one on the same holdout items: the active version's stored
holdout predictions (items labeled since are scored with its checkpoint in the round), not the accuracy it stored
on its own, older and smaller, holdout. Where that cannot be had, the old figure is used and the reason says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.urls import reverse

from labeling.models import Item, Role, Split
from labeling.services.annotations import annotation_create
from tests.factories import page_client
from tests.training import fake_rounds
from tests.training.fake_rounds import holdout_metrics
from training.ml import pipeline
from training.models import ModelVersion, Prediction, RunMode, RunStatus, TrainingRun
from training.services.runs import training_run_enqueue, training_run_execute

pytestmark = pytest.mark.django_db

HOLDOUT = 8


@pytest.fixture
def digits(project_factory, label_class_factory, item_factory, member_of, settings, tmp_path):
    """Classes zero/one; 6 labeled train items, 8 labeled holdout items, 4 open ones; an active v4 whose stored
    accuracy (0.714) was measured on its own holdout of 21 items, and whose checkpoint folder exists."""
    settings.LABELLOOP_TRAIN_DEVICE = "cpu"
    settings.LABELLOOP_RUN_HEARTBEAT_INTERVAL = 3600
    project = project_factory()
    classes = [label_class_factory(project=project, name=n, order=i) for i, n in enumerate(("zero", "one"))]
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    for i in range(6 + HOLDOUT):
        item = item_factory(project=project, split=Split.HOLDOUT if i >= 6 else Split.TRAIN)
        annotation_create(item=item, user=annotator, class_ids=[classes[i % 2].pk])
    for _ in range(4):
        item_factory(project=project, split=Split.TRAIN)
    (tmp_path / "v4").mkdir()
    ModelVersion.objects.create(
        project=project, run=TrainingRun.objects.create(project=project, status=RunStatus.SUCCEEDED), number=4,
        artifact_path=str(tmp_path / "v4"), architecture="resnet10t", class_ids=[c.pk for c in classes],
        metrics=holdout_metrics(15, 21), active=True,
    )  # fmt: skip
    return project


def holdout_items(project) -> list[Item]:
    return list(Item.objects.filter(project=project, split=Split.HOLDOUT).order_by("pk"))


def truth(item: Item) -> int:
    return item.resolved.classes.get().pk


def v4_predicts(project, items: list[Item], right: int) -> None:
    """Stored holdout predictions of v4 on `items`: the first `right` of them right, the rest wrong."""
    v4 = ModelVersion.objects.get(project=project, number=4)
    for k, item in enumerate(items):
        wanted = truth(item) if k < right else next(c for c in v4.class_ids if c != truth(item))
        probs = [0.9 if c == wanted else 0.1 for c in v4.class_ids]
        Prediction.objects.create(item=item, model_version=v4, probabilities=probs, predicted_class_id=wanted,
                                  confidence=0.9, uncertainty=0.1)  # fmt: skip


def version_row(project, member_of, number: int) -> str:
    page = page_client(member_of(project, Role.ML_ENGINEER, "eng")).get(reverse("training:model", args=[project.slug]))
    return page.content.decode().split(f'id="version-{number}"')[1].split("</tr>")[0].replace("&#x27;", "'")


def versions(project) -> dict[int, bool]:
    return dict(ModelVersion.objects.filter(project=project).values_list("number", "active"))


def test_a_new_version_as_good_as_the_active_one_on_the_same_items_goes_live(digits, tmp_path, monkeypatch, member_of):
    # Given v4 stored 0.714 on its old holdout of 21, but gets 1 of today's 8 holdout items right
    v4_predicts(digits, holdout_items(digits), right=1)

    # When a round's v5 gets 2 of the 8 right (0.250, interval 0.07 to 0.59: wholly below 0.714)
    summary = train(digits, holdout_metrics(2, HOLDOUT), tmp_path, monkeypatch)

    # Then it is compared with v4's 0.125 on the same 8 items, and goes live
    assert versions(digits) == {4: False, 5: True}
    assert summary["compared_on_same_holdout"] | {"version_id": None} == {
        "version_id": None, "number": 4, "accuracy": 0.125, "n": HOLDOUT, "same_items": True, "interval": None,
    }  # fmt: skip
    assert "<strong>active</strong>" in version_row(digits, member_of, 5)


def test_a_new_version_clearly_worse_on_the_same_items_is_held_back_and_says_on_what(
    digits, tmp_path, monkeypatch, member_of
):
    # Given v4's stored figure is 0.300 (an old holdout of 10), but it gets all of today's 8 holdout items right
    ModelVersion.objects.filter(project=digits, number=4).update(metrics=holdout_metrics(3, 10))
    v4_predicts(digits, holdout_items(digits), right=HOLDOUT)

    # When v5 gets 2 of the 8 right (interval 0.07 to 0.59: it reaches 0.300, not 1.000)
    train(digits, holdout_metrics(2, HOLDOUT), tmp_path, monkeypatch)

    # Then v5 is held back, and the reason names the figure it was compared with
    assert versions(digits) == {4: True, 5: False}
    reason = (
        "not made active: holdout accuracy 0.250 (0.07 to 0.59, n 8) is clearly below v4's 1.000 (0.68 to 1.00) on "
        "the same 8 holdout items: the two 95 % intervals do not overlap"
    )
    assert ModelVersion.objects.get(project=digits, number=5).metrics["not_made_active"] == reason
    assert reason.capitalize() in version_row(digits, member_of, 5)


def test_holdout_items_labeled_since_are_scored_with_the_active_checkpoint(digits, tmp_path, monkeypatch):
    # Given v4's stored holdout predictions cover 6 of today's 8 holdout items (all wrong); 2 were labeled since
    items = holdout_items(digits)
    v4_predicts(digits, items[:6], right=0)
    seen = []

    def score_pool(checkpoint, pool, cache_dir, cfg, progress=None, opener=None, labeled=None):
        seen.append((Path(checkpoint).name, sorted(row[0] for row in pool)))
        ids = np.array([row[0] for row in pool], dtype=np.int64)
        probs = np.array([[0.9, 0.1] if cfg.class_names.index("zero") == 0 else [0.1, 0.9] for _ in ids])
        return pipeline.ScoreResult(pool_ids=ids, pool_probs=probs, pool_uncertainty=np.zeros(len(ids)),
                                    pool_priority=np.zeros(len(ids)), device="cpu")  # fmt: skip

    monkeypatch.setattr(pipeline, "score_pool", score_pool)

    # When a round's v5 is measured on the 8
    summary = train(digits, holdout_metrics(2, HOLDOUT), tmp_path, monkeypatch)

    # Then v4's checkpoint scored just the 2 new items, its predictions are stored, and the figure is on all 8
    assert seen == [("v4", [items[6].pk, items[7].pk])]
    v4 = ModelVersion.objects.get(project=digits, number=4)
    assert Prediction.objects.filter(model_version=v4, item__split=Split.HOLDOUT).count() == HOLDOUT
    right = sum(truth(item) == v4.class_ids[0] for item in items[6:])  # the fake always says "zero"
    assert (summary["compared_on_same_holdout"]["n"], summary["compared_on_same_holdout"]["accuracy"]) == (
        HOLDOUT,
        right / HOLDOUT,
    )


def test_without_the_active_versions_holdout_predictions_the_reason_names_its_own_holdout(
    digits, tmp_path, monkeypatch, member_of
):
    # Given v4 has no holdout predictions and its checkpoint is gone
    (tmp_path / "v4").rmdir()

    # When v5 is far worse than v4's stored 0.714
    summary = train(digits, holdout_metrics(1, HOLDOUT), tmp_path, monkeypatch)

    # Then the old figure is used, and the reason says it was v4's own holdout of 21 items
    assert versions(digits) == {4: True, 5: False}
    reason = (
        "not made active: holdout accuracy 0.125 (0.02 to 0.47, n 8) is clearly below v4's 0.714 (0.50 to 0.86) on "
        "its own holdout of 21 items: the two 95 % intervals do not overlap"
    )
    assert summary["not_made_active"] == reason
    assert "compared_on_same_holdout" not in summary
    assert reason.capitalize() in version_row(digits, member_of, 5)


@pytest.mark.slow
def test_real_rounds_compare_on_the_same_holdout_and_the_figure_is_the_one_evaluate_gives(
    project_factory, member_of, settings
):
    from labeling.models import ItemState
    from training.selectors.holdout_figures import holdout_accuracy_on_items
    from training.services.quality import holdout_predictions_write
    from training.services.snapshot import label_snapshot

    from .loop_fixtures import TINY_ROUND, digits_project, label_through_queue

    settings.LABELLOOP_ROUND_OVERRIDES = TINY_ROUND
    settings.LABELLOOP_RUN_HEARTBEAT_INTERVAL = 3600
    project, truth_of, classes = digits_project(project_factory, n=160, min_labels_to_train=10)
    annotator = member_of(project, Role.ANNOTATOR)

    def round_() -> dict:
        run = training_run_enqueue(project=project, trigger="manual", mode=RunMode.HEAD, send=False)
        summary = training_run_execute(run_id=run.pk)
        assert summary["status"] == RunStatus.SUCCEEDED, TrainingRun.objects.get(pk=run.pk).error
        return summary

    # Given v1, trained on 30 labels, with its holdout predictions stored after it went live (as its task does)
    label_through_queue(project, annotator, truth_of, classes, 30)
    round_()
    v1 = ModelVersion.objects.get(project=project, number=1)
    holdout_predictions_write(project=project, version_number=1)
    before = Prediction.objects.filter(model_version=v1, item__split=Split.HOLDOUT).count()

    # When 30 more labels (a few of them holdout) come in and a round trains v2
    label_through_queue(project, annotator, truth_of, classes, 30)
    summary = round_()

    # Then v1 was measured on the very holdout v2 was: the new holdout items were scored with v1's checkpoint
    snap = label_snapshot(project=project)
    labeled_holdout = Item.objects.filter(project=project, split=Split.HOLDOUT).exclude(state=ItemState.UNLABELED)
    assert len(snap.holdout) == labeled_holdout.count() > before
    assert Prediction.objects.filter(model_version=v1, item__split=Split.HOLDOUT).count() == len(snap.holdout)
    compared = summary["compared_on_same_holdout"]
    assert (compared["number"], compared["n"], compared["same_items"]) == (1, len(snap.holdout), True)

    # And the figure follows evaluate's rule: v2's own, taken the same way from its stored holdout predictions,
    # is the accuracy its round measured
    v2 = ModelVersion.objects.get(project=project, number=2)
    holdout_predictions_write(project=project, version_number=2)
    targets = [(item_id, [snap.classes.ids[i] for i in idx]) for item_id, _, idx in snap.holdout]
    mine = holdout_accuracy_on_items(version=v2, targets=targets, judged=snap.classes.ids, multi_label=False)
    assert mine.accuracy == pytest.approx(v2.metrics["accuracy"])


def test_a_multi_label_figure_is_subset_accuracy_over_the_classes_judged(project_factory, item_factory):
    from training.selectors.holdout_figures import holdout_accuracy_on_items

    # Given a version of classes a, b and c (c archived since: the new version is judged on a and b)
    project = project_factory()
    a, b, c = 11, 12, 13
    version = ModelVersion.objects.create(
        project=project, run=TrainingRun.objects.create(project=project, status=RunStatus.SUCCEEDED), number=1,
        artifact_path="x", architecture="resnet10t", class_ids=[a, b, c], metrics={}, active=True,
    )  # fmt: skip
    items = [item_factory(project=project, split=Split.HOLDOUT) for _ in range(4)]
    said = ([0.9, 0.8, 0.1], [0.9, 0.2, 0.9], [0.5, 0.4, 0.0], [0.1, 0.1, 0.1])
    for item, probs in zip(items, said, strict=True):
        Prediction.objects.create(item=item, model_version=version, probabilities=list(probs), confidence=max(probs),
                                  uncertainty=0.0)  # fmt: skip
    # Ticked (p >= 0.5) among a, b: {a, b}, {a}, {a}, {}; the labels: {a, b}, {a}, {a, b}, {}
    targets = [(items[0].pk, [a, b]), (items[1].pk, [a]), (items[2].pk, [a, b]), (items[3].pk, [])]

    figure = holdout_accuracy_on_items(version=version, targets=targets, judged=[a, b], multi_label=True)

    assert (figure.accuracy, figure.n, figure.same_items) == (0.75, 4, True)
    # An item it never predicted: no figure on these items
    assert holdout_accuracy_on_items(version=version, targets=[*targets, (10**6, [a])], judged=[a, b],
                                     multi_label=True) is None  # fmt: skip


def test_one_miss_more_than_a_perfect_active_version_on_the_same_items_is_not_held_back(
    digits, tmp_path, monkeypatch, member_of
):
    # Given v4 gets all of today's 8 holdout items right (1.000, interval 0.68 to 1.00)
    v4_predicts(digits, holdout_items(digits), right=HOLDOUT)

    # When v5 gets 7 of the 8 right (0.875, interval 0.53 to 0.98: below 1.000, but not clearly worse)
    summary = train(digits, holdout_metrics(7, HOLDOUT), tmp_path, monkeypatch)

    # Then v5 goes live
    assert summary["compared_on_same_holdout"]["accuracy"] == 1.0
    assert "not_made_active" not in summary
    assert versions(digits) == {4: False, 5: True}
    assert "<strong>active</strong>" in version_row(digits, member_of, 5)


def train(project, metrics, tmp_path, monkeypatch) -> dict:
    return fake_rounds.train(project, metrics, tmp_path, monkeypatch, holdout=HOLDOUT)
