"""The random share of each batch, through a real scoring: a round, an in-process re-score and a sharded re-score
flag exactly the items `random_picks` drew (Item.picked_at_random), all in the batch the queue serves first, every
other pool item unflagged; a label made on one records it."""

from __future__ import annotations

import pytest

from labeling.models import Item, ItemState, JobKind, JobStatus, Role, Split
from labeling.services.annotations import annotation_create
from labeling.services.jobs import job_create
from training import services
from training.ml.strategies import RANDOM_SHARE, random_picks
from training.models import ModelVersion, RunStatus, TrainingRun
from training.services import sharding

from .loop_fixtures import TINY_ROUND, digits_project, label_through_queue

pytestmark = pytest.mark.django_db

BATCH = 20  # the selection batch of a project that does not set one


def pool_in_rank_order(project) -> list[int]:
    """The open, unlabeled train items in id order: the order a scoring ranks them in."""
    qs = Item.objects.filter(project=project, split=Split.TRAIN, state=ItemState.UNLABELED, resolved__isnull=True)
    return list(qs.order_by("pk").values_list("pk", flat=True))


def drawn(pool: list[int], seed: int) -> set[int]:
    return {pool[int(i)] for i in random_picks(len(pool), BATCH, RANDOM_SHARE, seed)}


def flagged(project) -> set[int]:
    return set(Item.objects.filter(project=project, picked_at_random=True).values_list("pk", flat=True))


def top_batch(project) -> set[int]:
    return set(Item.objects.filter(project=project, priority__gt=1).values_list("pk", flat=True))


def test_each_scoring_flags_exactly_its_random_draws_and_a_label_on_one_records_it(
    project_factory, member_of, settings
):
    # Given a digits project with the default strategy, 30 labels, trained once
    settings.LABELLOOP_ROUND_OVERRIDES = TINY_ROUND
    settings.LABELLOOP_RUN_HEARTBEAT_INTERVAL = 3600
    project, truth, classes = digits_project(
        project_factory, n=80, min_labels_to_train=10, al_strategy="diverse_margin"
    )
    user = member_of(project, Role.ANNOTATOR)
    label_through_queue(project, user, truth, classes, 30)
    TrainingRun.objects.create(project=project_factory(), status=RunStatus.FAILED)  # the round's seed is not 1
    run = services.training_run_enqueue(project=project, trigger="manual", mode="head", send=False)
    assert services.training_run_execute(run_id=run.pk)["status"] == "succeeded"

    # Then the round flagged its 2 random draws of the 20 (seeded by the run), both in the batch served first
    pool = pool_in_rank_order(project)
    by_round = drawn(pool, seed=run.pk)
    assert len(by_round) == round(RANDOM_SHARE * BATCH) == 2
    assert flagged(project) == by_round
    assert by_round <= top_batch(project)
    assert len(top_batch(project)) == BATCH

    # When the pool is re-scored across shards (seeded by the version number: other draws)
    version = ModelVersion.objects.get(project=project, active=True)
    settings.LABELLOOP_SCORE_SHARD_SIZE = 15
    job = job_create(project=project, kind=JobKind.SCORE)
    sharding.sharded_scoring_start(project=project, job=job)  # eager here: the chord runs in-process
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.result["shards"] > 1

    # Then exactly the new draws are flagged; the round's others are reset
    by_rescore = drawn(pool, seed=version.number)
    assert by_rescore != by_round
    assert flagged(project) == by_rescore
    assert by_rescore <= top_batch(project)

    # And re-scoring in one process draws the same items as the shards did
    Item.objects.filter(project=project).update(picked_at_random=False)
    services.model_score_pool(project=project)
    assert flagged(project) == by_rescore

    # When the annotator labels one random draw and one of the strategy's picks
    random_item = Item.objects.get(pk=min(by_rescore))
    strategy_item = Item.objects.get(pk=min(top_batch(project) - by_rescore))
    on_random = annotation_create(item=random_item, user=user, class_ids=[classes[truth[random_item.pk]].pk])
    on_strategy = annotation_create(item=strategy_item, user=user, class_ids=[classes[truth[strategy_item.pk]].pk])

    # Then each label records what the item was when it was served
    on_random.refresh_from_db()
    on_strategy.refresh_from_db()
    assert (on_random.picked_at_random, on_strategy.picked_at_random) == (True, False)
