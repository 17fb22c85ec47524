""" "make active" on the model page re-scores the pool with the version made active: the page shows the Scoring job
with its bar, and once it has run the labeling queue serves the new version's ranking and suggestions (not the
order and suggestions of the version before)."""

from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse

from labeling.models import Item, ItemState, Job, JobKind, JobStatus, LabelClass, Role, Split
from labeling.services.annotations import annotation_create
from tests.conftest import wait_for
from tests.factories import page_client
from training import services
from training.ml import pipeline
from training.models import ModelVersion, Prediction, RunStatus, TrainingRun
from training.tasks import training_score_task

from .loop_fixtures import TINY_ROUND, digits_project, label_through_queue, round_overrides_env

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_versions(project_factory, label_class_factory, item_factory, member_of, settings):
    """Classes zero/one, 4 labels, 6 open items; v4 active (it ranks the open items in id order and suggests
    "zero"), v5 inactive."""
    settings.LABELLOOP_TRAIN_DEVICE = "cpu"
    project = project_factory(holdout_fraction=0.0)  # the queue serves the train pool: the ranked items
    classes = [label_class_factory(project=project, name=n, order=i) for i, n in enumerate(("zero", "one"))]
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    for i in range(4):
        annotation_create(item=item_factory(project=project, split=Split.TRAIN), user=annotator,
                          class_ids=[classes[i % 2].pk])  # fmt: skip
    open_items = [item_factory(project=project, split=Split.TRAIN) for _ in range(6)]
    runs = [TrainingRun.objects.create(project=project, status=RunStatus.SUCCEEDED) for _ in range(2)]
    ids = [c.pk for c in classes]
    v4, _ = (
        ModelVersion.objects.create(project=project, run=runs[n - 4], number=n, artifact_path=f"v{n}",
                                    architecture="resnet10t", class_ids=ids, metrics={}, active=n == 4)
        for n in (4, 5)
    )  # fmt: skip
    for rank, item in enumerate(open_items):
        Item.objects.filter(pk=item.pk).update(priority=float(len(open_items) - rank))
        Prediction.objects.create(item=item, model_version=v4, probabilities=[0.9, 0.1], predicted_class_id=ids[0],
                                  confidence=0.9, uncertainty=0.1)  # fmt: skip
    return project, [item.pk for item in open_items]


def fake_score_pool(checkpoint, pool, cache_dir, cfg, progress=None, opener=None, labeled=None):
    """score_pool standing in for the model: v5 (its checkpoint folder "v5") ranks the pool in reverse id order
    and says "one"; any other version ranks in id order and says "zero"."""
    ids = np.array(sorted(row[0] for row in pool), dtype=np.int64)
    reverse = str(checkpoint).endswith("v5")
    priority = np.arange(len(ids), dtype=np.float32) if reverse else np.arange(len(ids), 0, -1, dtype=np.float32)
    probs = np.tile(np.array([0.2, 0.8] if reverse else [0.9, 0.1], dtype=np.float32), (len(ids), 1))
    uncertainty = np.full(len(ids), 0.2, np.float32)
    return pipeline.ScoreResult(pool_ids=ids, pool_probs=probs, pool_uncertainty=uncertainty, pool_priority=priority,
                                device="cpu", pool_random_ids=np.array([], np.int64))  # fmt: skip


def served(client, project) -> tuple[int, int | None]:
    """The item the label page serves next and the class the model suggests first for it (None: no suggestion)."""
    html = client.get(reverse("labeling:label", args=[project.slug])).content.decode()
    item = int(html.split('data-item="')[1].split('"')[0])
    if 'aria-label="Model suggestion"' not in html:
        return item, None
    return item, int(html.split('aria-label="Model suggestion"')[1].split('data-id="')[1].split('"')[0])


def test_make_active_starts_a_scoring_job_the_page_shows_and_the_queue_then_follows_the_new_version(
    two_versions, member_of, monkeypatch
):
    project, open_ids = two_versions
    engineer = page_client(member_of(project, Role.ML_ENGINEER))
    annotator, later = (page_client(member_of(project, Role.ANNOTATOR, name)) for name in ("ann2", "ann3"))
    one = LabelClass.objects.get(project=project, name="one").pk
    zero = LabelClass.objects.get(project=project, name="zero").pk
    assert served(annotator, project) == (open_ids[0], zero), "v4's ranking and suggestion"

    # When the engineer presses "make active" by v5
    page = engineer.post(reverse("training:version_activate", args=[project.slug, 5]), follow=True).content.decode()

    # Then v5 is active and a Scoring job is queued, shown with its bar under the buttons
    assert dict(ModelVersion.objects.filter(project=project).values_list("number", "active")) == {4: False, 5: True}
    job = Job.objects.get(project=project, kind=JobKind.SCORE)
    assert job.status == JobStatus.QUEUED
    assert f"v5 is now the active version: suggestions, exports and serving use it. The labeling queue is being " \
           f"re-scored with it: Scoring #{job.number}, below." in page  # fmt: skip
    card = page.split(f'id="job-{job.pk}"')[1].split('<div class="job"')[0]
    assert f"Scoring #{job.number}</strong> — Queued" in card
    assert 'role="progressbar"' in card

    # When a worker runs the job (the scoring task, as the Re-score button's job runs)
    monkeypatch.setattr(pipeline, "score_pool", fake_score_pool)
    training_score_task(project.pk, job.pk)

    # Then it scored with v5, and the label page serves v5's first pick with v5's suggestion
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert (job.result["version"], job.result["scored"]) == (5, 6)
    assert served(later, project) == (open_ids[-1], one), "v5 ranks the last open item first and says one"


@pytest.mark.django_db(transaction=True)
def test_make_active_with_the_task_queue_down_says_the_queue_keeps_its_order(two_versions, member_of, monkeypatch):
    from labeling.services import dispatch

    project, _ = two_versions
    engineer = page_client(member_of(project, Role.ML_ENGINEER))
    monkeypatch.setattr(dispatch, "task_send", lambda *args: False)

    page = engineer.post(reverse("training:version_activate", args=[project.slug, 5]), follow=True).content.decode()

    assert dict(ModelVersion.objects.filter(project=project).values_list("number", "active")) == {4: False, 5: True}
    assert Job.objects.get(project=project, kind=JobKind.SCORE).status == JobStatus.FAILED
    assert (
        "v5 is now the active version: suggestions, exports and serving use it. The task queue is unavailable, so "
        "the labeling queue keeps its old order; press Re-score the pool once it is back."
    ) in page.replace("&#x27;", "'")


# ---- with the real parts: rounds on digits, a real worker process on Redis, the page ------------------------


def open_priorities(project) -> dict[int, float]:
    qs = Item.objects.filter(project=project, split=Split.TRAIN, state=ItemState.UNLABELED, resolved__isnull=True)
    return dict(qs.values_list("pk", "priority"))


@pytest.fixture(autouse=False)
def fresh_broker_pool():
    from kombu import pools

    from config.celery_app import app

    app._pool = None
    app.amqp._producer_pool = None
    pools.reset()


@pytest.mark.integration
@pytest.mark.slow
def test_make_active_on_a_real_project_reranks_the_queue_with_that_version_on_a_worker(
    fresh_broker_pool, start_worker, project_factory, member_of, settings
):
    settings.LABELLOOP_ROUND_OVERRIDES = TINY_ROUND
    settings.LABELLOOP_RUN_HEARTBEAT_INTERVAL = 3600
    project, truth, classes = digits_project(project_factory, n=160, min_labels_to_train=10, al_strategy="margin")
    annotator = member_of(project, Role.ANNOTATOR)
    for labels in (20, 30):  # two rounds: v1 on 20 labels, v2 on 50
        label_through_queue(project, annotator, truth, classes, labels)
        run = services.training_run_enqueue(project=project, trigger="manual", mode="head", send=False)
        assert services.training_run_execute(run_id=run.pk)["status"] == "succeeded"
    active = ModelVersion.objects.get(project=project, active=True)
    other = ModelVersion.objects.filter(project=project).exclude(pk=active.pk).get()
    before = open_priorities(project)
    project.__class__.objects.filter(pk=project.pk).update(holdout_fraction=0.0)  # the page serves the ranked pool

    from config.celery_app import app

    app.control.purge()
    worker = start_worker(queues="gpu", extra_env=round_overrides_env())
    engineer = page_client(member_of(project, Role.ML_ENGINEER, "eng"))
    page = engineer.post(reverse("training:version_activate", args=[project.slug, other.number]), follow=True)
    job = Job.objects.get(project=project, kind=JobKind.SCORE)
    assert f"Scoring #{job.number}, below." in page.content.decode()

    wait_for(lambda: Job.objects.get(pk=job.pk).finished, 240, what=f"the scoring job\n{worker.output()[-2000:]}")
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, f"{job.message}\n{worker.output()[-3000:]}"
    assert job.result["version"] == other.number
    after = open_priorities(project)
    assert set(after) == set(before)
    assert after != before, "the queue's order changed"
    scored = Prediction.objects.filter(model_version=other, item_id__in=list(after))
    assert scored.count() == len(after), "every open item has a prediction of the version made active"

    # The ranking is the version's own: scoring with it here in the test process gives the same priorities
    services.model_score_pool(project=project, version=other)
    assert open_priorities(project) == pytest.approx(after, abs=1e-5)

    # And the label page serves its first pick with its suggestion
    html = page_client(annotator).get(reverse("labeling:label", args=[project.slug])).content.decode()
    item = int(html.split('data-item="')[1].split('"')[0])
    assert item == max(after, key=after.get)
    best = scored.get(item_id=item).predicted_class_id
    suggestions = html.split('aria-label="Model suggestion"')[1]
    assert suggestions.split('data-id="')[1].split('"')[0] == str(best)
