"""Training runs: one in flight per project, idempotent execution, lost workers fail, the scheduler queues."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.models import Item, Job, JobKind, JobStatus, Split
from labeling.services.priorities import item_priorities_set
from tests.factories import bulk_items
from training import selectors, services
from training.models import ModelVersion, RunMode, RunStatus, TrainingRun
from training.services.snapshot import class_order, label_snapshot

from .helpers import resolve

pytestmark = pytest.mark.django_db


@pytest.fixture
def cats(project_factory, label_class_factory):
    project = project_factory(min_labels_to_train=4, retrain_every=3)
    return project, [label_class_factory(project=project, name=n) for n in ("cat", "dog")]


def test_only_one_run_in_flight_per_project(cats):
    project, _ = cats
    first = services.training_run_enqueue(project=project, trigger="manual")
    second = services.training_run_enqueue(project=project, trigger="manual")
    assert first.status == RunStatus.QUEUED
    assert second is None
    assert TrainingRun.objects.filter(project=project).count() == 1


def test_unknown_mode_is_refused_and_nothing_is_queued(cats):
    project, _ = cats
    with pytest.raises(ValueError, match="Unknown training mode"):
        services.training_run_enqueue(project=project, trigger="manual", mode="turbo")
    assert not TrainingRun.objects.exists()


@pytest.mark.parametrize("status", [RunStatus.RUNNING, RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED])
def test_a_duplicate_delivery_does_not_start_a_run_twice(cats, status):
    project, _ = cats
    run = TrainingRun.objects.create(project=project, status=status, worker="w1@a")
    out = services.training_run_execute(run_id=run.pk, worker="w2@b")
    run.refresh_from_db()
    assert out["skipped"] is True
    assert run.status == status
    assert run.worker == "w1@a"
    assert not ModelVersion.objects.exists()


def test_a_run_whose_worker_stopped_heartbeating_is_failed(cats, project_factory, settings):
    settings.LABELLOOP_RUN_HEARTBEAT_TIMEOUT = 30
    project, _ = cats
    now = timezone.now()
    lost = TrainingRun.objects.create(
        project=project, status=RunStatus.RUNNING, worker="gpu1@box", heartbeat_at=now - timedelta(seconds=31)
    )
    alive = TrainingRun.objects.create(project=project_factory(), status=RunStatus.RUNNING, heartbeat_at=now)
    assert services.training_runs_reap() == [lost.pk]
    lost.refresh_from_db()
    alive.refresh_from_db()
    assert lost.status == RunStatus.FAILED
    assert "no heartbeat from gpu1@box" in lost.error
    assert lost.finished_at is not None
    assert alive.status == RunStatus.RUNNING


def test_cancel_only_touches_queued_runs(cats):
    project, _ = cats
    run = services.training_run_enqueue(project=project, trigger="manual")
    assert services.training_run_cancel(run=run)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert services.training_run_enqueue(project=project, trigger="manual") is not None


def test_scheduler_queues_a_first_run_once_enough_labels_exist(cats, item_factory):
    project, (cat, dog) = cats
    items = [item_factory(project=project) for _ in range(6)]
    for item in items[:3]:
        resolve(item, cat)
    TrainingRun.objects.create(project=project, mode="coldstart", status=RunStatus.SUCCEEDED)
    assert services.training_scheduler_tick()["queued"] == []
    resolve(items[3], dog)  # the 4th label reaches min_labels_to_train
    queued = services.training_scheduler_tick()["queued"]
    assert len(queued) == 1
    run = TrainingRun.objects.get(pk=queued[0])
    assert (run.status, run.trigger, run.mode) == (RunStatus.QUEUED, "scheduler", project.training_mode)
    assert services.training_scheduler_tick()["queued"] == []  # one in flight is enough


def test_scheduler_counts_only_labels_newer_than_the_last_run(cats, item_factory):
    project, (cat, _dog) = cats
    items = [item_factory(project=project) for _ in range(8)]
    for item in items[:4]:
        resolve(item, cat)
    TrainingRun.objects.create(
        project=project, status=RunStatus.SUCCEEDED, labels_seen_at=timezone.now(), finished_at=timezone.now()
    )
    resolve(items[4], cat)
    resolve(items[5], cat)
    assert services.training_scheduler_tick()["queued"] == []  # 2 new < retrain_every 3
    resolve(items[6], cat)
    assert len(services.training_scheduler_tick()["queued"]) == 1


def test_a_new_project_with_items_gets_a_cold_start_but_not_while_importing(cats, item_factory):
    project, _ = cats
    item_factory(project=project)
    job = Job.objects.create(project=project, kind=JobKind.IMPORT, status=JobStatus.RUNNING)
    assert services.training_scheduler_tick()["queued"] == []
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    [run_id] = services.training_scheduler_tick()["queued"]
    assert TrainingRun.objects.get(pk=run_id).mode == RunMode.COLD_START


def test_scheduler_backs_off_after_a_failed_run(cats, item_factory, settings):
    settings.LABELLOOP_RUN_RETRY_AFTER = 3600
    project, (cat, _) = cats
    for _ in range(5):
        resolve(item_factory(project=project), cat)
    TrainingRun.objects.create(project=project, status=RunStatus.FAILED, finished_at=timezone.now())
    assert services.training_scheduler_tick()["queued"] == []
    settings.LABELLOOP_RUN_RETRY_AFTER = 0
    assert len(services.training_scheduler_tick()["queued"]) == 1


def test_due_projects_come_from_one_query(cats, project_factory, item_factory, django_assert_num_queries):
    project, (cat, _) = cats
    for _ in range(5):
        resolve(item_factory(project=project), cat)
    other = project_factory()
    item_factory(project=other)
    with django_assert_num_queries(1):
        due = {p.pk: (p.new_labels, p.threshold) for p in selectors.projects_due_for_training()}
    assert due == {project.pk: (5, 4), other.pk: (0, other.min_labels_to_train)}


def test_snapshot_keeps_holdout_out_of_the_pool_and_hashes_labels(cats, item_factory):
    project, (cat, dog) = cats
    train = [item_factory(project=project) for _ in range(3)]
    held = item_factory(project=project, split=Split.HOLDOUT)
    open_held = item_factory(project=project, split=Split.HOLDOUT)
    resolve(train[0], cat)
    resolve(held, dog)
    snap = label_snapshot(project=project)
    assert [row[0] for row in snap.train] == [train[0].pk]
    assert snap.train[0][2] == [0]
    assert [(row[0], row[2]) for row in snap.holdout] == [(held.pk, [1])]
    assert [row[0] for row in snap.pool] == [train[1].pk, train[2].pk]
    assert open_held.pk not in {row[0] for row in snap.pool}
    assert all(Item.objects.get(pk=i).file.path == path for i, path in snap.pool)
    assert snap.label_count == 2
    before = snap.dataset_hash
    assert label_snapshot(project=project).dataset_hash == before
    resolve(train[0], dog)
    assert label_snapshot(project=project).dataset_hash != before


def test_class_order_uses_live_leaves_and_records_ancestors(project_factory, label_class_factory):
    project = project_factory()
    animal = label_class_factory(project=project, name="animal")
    cat = label_class_factory(project=project, name="cat", parent=animal)
    dog = label_class_factory(project=project, name="dog", parent=animal)
    label_class_factory(project=project, name="old", archived=True)
    car = label_class_factory(project=project, name="car")
    order = class_order(project=project)
    assert order.ids == [cat.pk, dog.pk, car.pk]
    assert order.names == ["animal / cat", "animal / dog", "car"]
    assert order.hierarchy == {0: [3], 1: [3], 2: []}


def test_priorities_are_written_for_this_project_only(cats, project_factory, item_factory):
    project, _ = cats
    mine = [item_factory(project=project) for _ in range(3)]
    theirs = item_factory(project=project_factory())
    n = item_priorities_set(project=project, priorities={mine[0].pk: 0.9, mine[2].pk: -1.5, theirs.pk: 7.0})
    assert n == 2
    got = dict(Item.objects.values_list("pk", "priority"))
    assert (got[mine[0].pk], got[mine[2].pk], got[theirs.pk]) == (0.9, -1.5, 0.0)


@pytest.mark.parametrize("n_items", [3, 600])
def test_priorities_are_written_in_bulk_whatever_the_pool_size(cats, n_items, django_assert_max_num_queries):
    # Given a pool of 3 or 600 items
    project, _ = cats
    items = bulk_items(project, n_items)

    # When a round writes every item's priority
    with django_assert_max_num_queries(3):  # savepoint, one statement (PostgreSQL) or executemany (SQLite), release
        n = item_priorities_set(project=project, priorities={item.pk: i / n_items for i, item in enumerate(items)})

    # Then the number of statements does not grow with the pool, and every priority was written
    assert n == n_items
    assert dict(Item.objects.values_list("pk", "priority")) == {item.pk: i / n_items for i, item in enumerate(items)}


def test_priorities_refuse_nan_and_change_nothing(cats, item_factory):
    project, _ = cats
    a, b = item_factory(project=project), item_factory(project=project)
    with pytest.raises(ValueError, match="not a finite number"):
        item_priorities_set(project=project, priorities={a.pk: 0.5, b.pk: float("nan")})
    assert set(Item.objects.values_list("priority", flat=True)) == {0.0}
