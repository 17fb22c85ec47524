"""The model in the loop with the real parts: Redis, Celery worker processes (beat included), the ML pipeline.

Labels go through the queue and annotation services (or the HTTP API); the scheduler notices them, a worker
trains, predictions and priorities land, and the queue serves what the strategy ranks first. Workers get
killed, deliveries duplicated and Redis stopped, and the loop still ends in a consistent state.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from labeling.models import Item, ItemState, ResolvedLabel, Role, Split
from labeling.services.queue import item_claim_next
from tests.conftest import wait_for
from training import services
from training.models import ModelVersion, Prediction, RunStatus, TrainingRun
from training.tasks import training_run_execute_task

from .loop_fixtures import TINY_ROUND, FixedRng, digits_project, label_through_queue, round_overrides_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED)


@pytest.fixture(autouse=True)
def _fresh_broker_pool():
    """celery_env's teardown closes the app's connection pool for good; give each test a new one.

    (Without this, the second test of a session that uses celery_env fails with "Acquire on closed pool".)
    """
    from kombu import pools

    from config.celery_app import app

    app._pool = None
    app.amqp._producer_pool = None
    pools.reset()


@pytest.fixture
def loop_settings(settings):
    settings.LABELLOOP_ROUND_OVERRIDES = TINY_ROUND
    settings.LABELLOOP_RUN_RETRY_AFTER = 0
    return settings


def open_train_items(project) -> dict[int, float]:
    return dict(
        Item.objects.filter(project=project, split=Split.TRAIN, state=ItemState.UNLABELED).values_list("pk", "priority")
    )


def finished_run(project, worker, timeout: float = 240, exclude: tuple[int, ...] = ()) -> TrainingRun:
    """Wait for a run of `project` (other than `exclude`) to finish; it must have succeeded."""
    runs = TrainingRun.objects.filter(project=project, status__in=FINISHED).exclude(pk__in=exclude)
    wait_for(runs.exists, timeout, what=f"a finished run; worker log:\n{worker.output()[-2000:]}")
    run = runs.order_by("-pk").first()
    assert run.status == RunStatus.SUCCEEDED, f"{run.error}\n--- worker ---\n{worker.output()[-3000:]}"
    return run


def test_forty_labels_train_a_model_that_reorders_the_queue(start_worker, project_factory, member_of, loop_settings):
    project, truth, classes = digits_project(project_factory, n=300, min_labels_to_train=40, retrain_every=40)
    annotator = member_of(project, Role.ANNOTATOR)
    label_through_queue(project, annotator, truth, classes, 40)
    before = open_train_items(project)

    worker = start_worker(
        beat=True, concurrency=2, extra_env={"LABELLOOP_SCHEDULER_INTERVAL": "1", **round_overrides_env()}
    )
    run = finished_run(project, worker)

    assert run.trigger == "scheduler"
    assert run.label_count == 40
    assert run.device == "cpu"
    assert run.worker.startswith("w1@")
    assert {"snapshot", "predictions", "priorities", "total"} <= set(run.timings)
    version = ModelVersion.objects.get(project=project, active=True)
    assert version.run_id == run.pk
    assert version.class_ids == [c.pk for c in classes]
    labeled_holdout = ResolvedLabel.objects.filter(project=project, item__split=Split.HOLDOUT).count()
    assert labeled_holdout > 0
    assert version.metrics["n"] == labeled_holdout
    assert 0.0 <= version.metrics["accuracy"] <= 1.0
    assert version.dataset_hash == run.dataset_hash != ""

    after = open_train_items(project)
    assert set(after) == set(before)
    # (The holdout's predictions arrive later, from a follow-up task of the activation: only the pool's count here.)
    rows = Prediction.objects.filter(model_version=version, item__split=Split.TRAIN)
    predictions = {p.item_id: p for p in rows}
    assert set(predictions) == set(after), "every open item gets a prediction"
    assert all(len(p.probabilities) == 10 for p in predictions.values())
    assert all(after[i] != before[i] for i in after), "every open item gets a new priority"

    served = item_claim_next(project=project, user=member_of(project), rng=FixedRng(0.99))
    margins = {i: (lambda s: s[-1] - s[-2])(sorted(p.probabilities)) for i, p in predictions.items()}
    assert served.pk == min(margins, key=margins.get), "the queue serves the smallest-margin item first"

    reviewer = Client()
    reviewer.force_login(member_of(project, Role.REVIEWER))
    page = reviewer.get(reverse("training:model", args=[project.slug])).content.decode()
    assert f"v{version.number}" in page
    assert run.worker in page


def test_a_killed_worker_leaves_the_run_failed_and_a_fresh_run_catches_up(start_worker, project_factory, loop_settings):
    loop_settings.LABELLOOP_RUN_HEARTBEAT_TIMEOUT = 3
    project, truth, classes = digits_project(project_factory, n=80, min_labels_to_train=20, retrain_every=20)
    from django.contrib.auth import get_user_model

    label_through_queue(project, get_user_model().objects.create(username="ann"), truth, classes, 20)
    slow = start_worker(
        name="slow",
        extra_env={"LABELLOOP_DEBUG_PROGRESS_SLEEP": "1.0", "LABELLOOP_RUN_HEARTBEAT_INTERVAL": "0.5",
                   **round_overrides_env()},
    )  # fmt: skip
    run = services.training_run_enqueue(project=project, trigger="manual")
    wait_for(
        lambda: TrainingRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).exclude(stage="starting").exists(),
        60,
        what="the run to start",
    )
    slow.kill(9)

    def reaped() -> bool:
        services.training_scheduler_tick()
        return TrainingRun.objects.get(pk=run.pk).status != RunStatus.RUNNING

    wait_for(reaped, 30, interval=0.5, what="the scheduler to fail the lost run")
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "Worker lost" in run.error
    fresh = TrainingRun.objects.filter(project=project).exclude(pk=run.pk).get()
    assert (fresh.status, fresh.trigger) == (RunStatus.QUEUED, "scheduler")

    worker = start_worker(name="fresh", extra_env=round_overrides_env())
    done = finished_run(project, worker, exclude=(run.pk,))
    assert done.pk == fresh.pk
    assert ModelVersion.objects.filter(project=project).count() == 1


def test_a_duplicate_delivery_trains_once(start_worker, project_factory, loop_settings):
    project, truth, classes = digits_project(project_factory, n=60, min_labels_to_train=10)
    from django.contrib.auth import get_user_model

    label_through_queue(project, get_user_model().objects.create(username="ann"), truth, classes, 12)
    worker = start_worker(concurrency=2, extra_env=round_overrides_env())
    run = services.training_run_enqueue(project=project, trigger="manual", send=False)
    training_run_execute_task.apply_async((run.pk,))
    training_run_execute_task.apply_async((run.pk,))
    wait_for(
        lambda: worker.output().count("succeeded in") >= 2, 240, what=f"two deliveries:\n{worker.output()[-2000:]}"
    )
    outcomes = [line for line in worker.output().splitlines() if "succeeded in" in line]
    assert sum("'skipped': True" in line for line in outcomes) == 1, outcomes
    assert ModelVersion.objects.filter(project=project).count() == 1
    assert TrainingRun.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED


def test_with_redis_down_annotators_keep_labeling_and_the_loop_catches_up(
    start_worker, redis_server, project_factory, member_of, loop_settings
):
    loop_settings.LABELLOOP_RUN_RESEND_AFTER = 1
    project, truth, classes = digits_project(project_factory, n=80, min_labels_to_train=20, retrain_every=20)
    annotator, engineer = Client(), Client()
    annotator.force_login(member_of(project, Role.ANNOTATOR))
    engineer.force_login(member_of(project, Role.ML_ENGINEER))
    worker = start_worker(extra_env=round_overrides_env())

    redis_server.stop()
    try:
        for _ in range(22):
            response = annotator.get(f"/api/projects/{project.slug}/next/?suggest=0")
            assert response.status_code == 200
            item_id = response.json()["item"]["id"]
            posted = annotator.post(
                f"/api/projects/{project.slug}/annotations/",
                {"item_id": item_id, "class_ids": [classes[truth[item_id]].pk]},
                content_type="application/json",
            )
            assert posted.status_code == 201, posted.content
        clicked = engineer.post(reverse("training:train_now", args=[project.slug]), follow=True)
        assert clicked.status_code == 200
        run = TrainingRun.objects.get(project=project)
        assert run.status == RunStatus.QUEUED  # waiting for the broker, not failed
        assert services.training_scheduler_tick()["resent"] == []  # still down: nothing sent, nothing raised
    finally:
        redis_server.start()
    assert ResolvedLabel.objects.filter(project=project).count() == 22  # nothing lost

    def caught_up() -> bool:
        services.training_scheduler_tick()
        return TrainingRun.objects.get(pk=run.pk).status in FINISHED

    wait_for(caught_up, 240, interval=1.0, what=f"the run after Redis returned:\n{worker.output()[-2000:]}")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.label_count == 22
    assert ModelVersion.objects.get(project=project, active=True).label_count == 22
