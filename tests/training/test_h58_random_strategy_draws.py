"""Under the "random" strategy every pick of the queue is a random draw (h58 P6): after a manager sets Random order,
a re-score, a sharded re-score, a round and a cold start flag every item they rank, labels made on them count as
random draws on the model page, and the page says the two rows are the same kind of pick; labels made before the
change keep what they were."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labeling.models import Annotation, Item, ItemState, JobKind, JobStatus, Role, Split
from labeling.services.annotations import annotation_create
from labeling.services.jobs import job_create
from labeling.services.queue import item_claim_next
from tests.factories import page_client
from tests.labeling.test_settings_page import settings_post
from training import services
from training.models import RunMode, RunStatus, TrainingRun
from training.services import sharding

from .loop_fixtures import TINY_ROUND, FixedRng, digits_project, label_through_queue

pytestmark = pytest.mark.django_db


def open_pool(project) -> set[int]:
    qs = Item.objects.filter(project=project, split=Split.TRAIN, state=ItemState.UNLABELED, resolved__isnull=True)
    return set(qs.values_list("pk", flat=True))


def flagged(project) -> set[int]:
    return set(Item.objects.filter(project=project, picked_at_random=True).values_list("pk", flat=True))


def label_train_items(project, user, truth, classes, n: int) -> list[int]:
    """Label the next `n` items the queue serves from the train pool (the ranked one), as an annotator does."""
    done = []
    for _ in range(n):
        item = item_claim_next(project=project, user=user, rng=FixedRng(0.99))
        assert item is not None
        assert item.split == Split.TRAIN
        annotation_create(item=item, user=user, class_ids=[classes[truth[item.pk]].pk])
        done.append(item.pk)
    return done


def row(html: str, key: str) -> str:
    start = html.index(f'id="picks-{key}"')
    return html[start : html.index("</tr>", start)]


def test_after_the_strategy_is_set_to_random_every_pick_is_a_random_draw(project_factory, member_of, settings):
    # Given a default-strategy digits project with 30 labels, trained once
    settings.LABELLOOP_ROUND_OVERRIDES = TINY_ROUND
    settings.LABELLOOP_RUN_HEARTBEAT_INTERVAL = 3600
    project, truth, classes = digits_project(
        project_factory, n=80, min_labels_to_train=10, al_strategy="diverse_margin"
    )
    annotator, manager = member_of(project, Role.ANNOTATOR), member_of(project, Role.MANAGER)
    label_through_queue(project, annotator, truth, classes, 30)
    run = services.training_run_enqueue(project=project, trigger="manual", mode="head", send=False)
    assert services.training_run_execute(run_id=run.pk)["status"] == "succeeded"
    label_through_queue(project, annotator, truth, classes, 5)
    on_train = Annotation.objects.filter(item__project=project, item__split=Split.TRAIN)
    before = dict(on_train.values_list("pk", "picked_at_random"))
    strategy_before = sum(not r for r in before.values())
    assert strategy_before > 0

    # When the manager sets Random order on the settings page and the pool is re-scored
    assert settings_post(page_client(manager), project, al_strategy="random").status_code == 302
    project.refresh_from_db()
    assert project.al_strategy == "random"
    services.model_score_pool(project=project)

    # Then every open item is a random draw
    assert open_pool(project) <= flagged(project)

    # And the 10 labels made next through the queue count as random draws; the earlier ones keep what they were
    done = label_train_items(project, annotator, truth, classes, 10)
    made = Annotation.objects.filter(item_id__in=done)
    assert list(made.values_list("picked_at_random", flat=True)) == [True] * 10
    assert dict(Annotation.objects.filter(pk__in=before).values_list("pk", "picked_at_random")) == before

    # And the model page counts them as random draws and says why both rows are one kind of pick under Random order
    html = page_client(manager).get(reverse("training:model", args=[project.slug])).content.decode()
    random_before = sum(before.values())
    assert f"<td>{random_before + 10}</td>" in row(html, "random")
    assert f"<td>{strategy_before}</td>" in row(html, "strategy")
    assert 'id="picks-all-random"' in html
    assert "the two rows are the same kind of pick" in html

    # And a sharded re-score and the next round flag every item they rank too
    settings.LABELLOOP_SCORE_SHARD_SIZE = 15
    Item.objects.filter(project=project).update(picked_at_random=False)
    job = job_create(project=project, kind=JobKind.SCORE)
    sharding.sharded_scoring_start(project=project, job=job)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert open_pool(project) <= flagged(project)
    Item.objects.filter(project=project).update(picked_at_random=False)
    run = services.training_run_enqueue(project=project, trigger="manual", mode="head", send=False)
    assert services.training_run_execute(run_id=run.pk)["status"] == "succeeded"
    assert open_pool(project) <= flagged(project)


def test_a_cold_start_under_random_order_draws_every_item(project_factory, member_of, settings):
    # Given a new project set to Random order
    settings.LABELLOOP_ROUND_OVERRIDES = TINY_ROUND
    settings.LABELLOOP_RUN_HEARTBEAT_INTERVAL = 3600
    project, truth, classes = digits_project(project_factory, n=30, al_strategy="random")

    # When its cold start ranks the queue
    run = services.training_run_enqueue(project=project, trigger="manual", mode=RunMode.COLD_START, send=False)
    assert services.training_run_execute(run_id=run.pk)["status"] == RunStatus.SUCCEEDED

    # Then every item it ranked is a random draw, and the first label records it
    assert flagged(project) == open_pool(project) != set()
    done = label_train_items(project, member_of(project, Role.ANNOTATOR), truth, classes, 1)
    assert Annotation.objects.get(item_id=done[0]).picked_at_random
    assert TrainingRun.objects.get(pk=run.pk).mode == RunMode.COLD_START
