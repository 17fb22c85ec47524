"""Re-scoring spread over Celery workers: shards on two real worker processes, a shard that fails once and is
retried, every pool item predicted and re-ranked, and the same queue order as scoring in one process."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from labeling.models import Item, ItemState, Job, JobKind, JobStatus, Role, Split
from labeling.services.jobs import job_create
from tests.training.loop_fixtures import TINY_ROUND, digits_project, label_through_queue, round_overrides_env
from training import services
from training.models import ModelVersion, Prediction
from training.services import sharding

pytestmark = pytest.mark.django_db

SHARD = 100


def pool_of(project) -> dict[int, float]:
    qs = Item.objects.filter(project=project, split=Split.TRAIN, state=ItemState.UNLABELED)
    return dict(qs.values_list("pk", "priority"))


def trained(project_factory, member_of, settings, n: int = 300) -> tuple:
    """A project with a real active version (a round in this process), diverse_margin ranking."""
    settings.LABELLOOP_ROUND_OVERRIDES = TINY_ROUND
    settings.LABELLOOP_RUN_HEARTBEAT_INTERVAL = 3600
    project, truth, classes = digits_project(project_factory, n=n, min_labels_to_train=10, al_strategy="diverse_margin")
    label_through_queue(project, member_of(project, Role.ANNOTATOR), truth, classes, 40)
    run = services.training_run_enqueue(project=project, trigger="manual", mode="head", send=False)
    summary = services.training_run_execute(run_id=run.pk)
    assert summary["status"] == "succeeded", summary
    return project, ModelVersion.objects.get(project=project, active=True)


def test_bald_scores_rank_like_any_other_base_score():
    u = np.array([0.1, 0.7, 0.3, 0.0, 0.5])
    p = sharding.pool_priorities(
        strategy="bald", probs=None, uncertainty=u, embeddings=None, labeled_embeddings=None, batch_size=2, seed=0,
        multi_label=False,
    )  # fmt: skip
    assert list(np.argsort(-p, kind="stable")) == [1, 4, 2, 0, 3]
    assert (p[[1, 4]] > 1).all(), "the top-2 batch is served first"
    assert (p[[0, 2, 3]] < 1).all()


@pytest.mark.slow
def test_sharded_scoring_ranks_the_pool_like_scoring_in_one_process(project_factory, member_of, settings):
    project, version = trained(project_factory, member_of, settings)
    settings.LABELLOOP_SCORE_SHARD_SIZE = SHARD
    assert sharding.sharded_scoring_wanted(project=project)
    services.model_score_pool(project=project)
    in_process = pool_of(project)
    Item.objects.filter(pk__in=list(in_process)).update(priority=-1.0)
    Prediction.objects.filter(model_version=version).delete()

    job = job_create(project=project, kind=JobKind.SCORE)
    info = sharding.sharded_scoring_start(project=project, job=job)  # eager here: the chord runs in-process

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert info["shards"] == job.result["shards"] == -(-len(in_process) // SHARD) > 1
    sharded = pool_of(project)
    assert set(sharded) == set(in_process)
    assert Prediction.objects.filter(model_version=version, item_id__in=list(sharded)).count() == len(sharded)

    # Same diverse batch, same order of everything else as the whole pool ranked at once.
    def batch(priorities: dict[int, float]) -> list[int]:
        return sorted((i for i, p in priorities.items() if p > 1), key=lambda i: -priorities[i])

    assert batch(sharded) == batch(in_process)
    assert np.allclose([sharded[i] for i in in_process], list(in_process.values()), atol=1e-6)
    assert not default_storage.exists(f"scoring/{project.pk}/{info['batch']}/shard-00000.npz"), "cleaned up"


@pytest.mark.integration
@pytest.mark.slow
def test_two_workers_share_the_shards_and_a_failed_shard_is_retried(start_worker, project_factory, member_of, settings):
    from config.celery_app import app

    project, version = trained(project_factory, member_of, settings, n=400)
    app.control.purge()  # the round's quality follow-ups (label-error search) would keep one worker busy
    pool = pool_of(project)
    Item.objects.filter(pk__in=list(pool)).update(priority=-1.0)
    # Nothing cached: the shards run the backbone themselves.
    cache = services.project_cache_dir(project)
    for path in sorted(cache.rglob("*.npy")):
        path.unlink()
    settings.LABELLOOP_SCORE_SHARD_SIZE = SHARD
    env = {**round_overrides_env(), "LABELLOOP_DEBUG_SCORE_SHARD_FAIL": "1"}  # shard 1 fails its first attempt
    # Two workers on the scoring queue (the `gpu` queue of config/settings/base.py's routes).
    queue = sharding.SCORE_QUEUE
    workers = [start_worker(name=name, queues=queue, extra_env=env) for name in ("w1", "w2")]

    call_command("score", project.slug, verbosity=0)

    job = Job.objects.get(project=project, kind=JobKind.SCORE)
    logs = "\n".join(w.output()[-3000:] for w in workers)
    assert job.status == JobStatus.SUCCEEDED, f"{job.message}\n{logs}"
    hosts = job.result["workers"]
    assert {h.split("@")[0] for h in hosts} <= {"w1", "w2"}, hosts
    for worker in workers:  # both took shards (the one that failed first counts under the worker that retried it)
        assert "score_shard_task[" in worker.output(), worker.output()[-2000:]
    assert sum(hosts.values()) == job.result["shards"] == -(-len(pool) // SHARD)
    assert job.result["retried_shards"] == [1]
    assert "shard 1 fails its first attempt" in logs
    after = pool_of(project)
    assert set(after) == set(pool)
    assert all(p >= 0 for p in after.values()), "every pool item got a priority"
    predicted = Prediction.objects.filter(model_version=version, item_id__in=list(pool))
    assert predicted.count() == len(pool), "every pool item has a prediction of the active version"
