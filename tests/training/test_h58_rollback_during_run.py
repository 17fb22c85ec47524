"""Rolling back while a training run is under way holds (h58 P1): a version made active by hand after a run was
asked for stays active; the run's new version is kept, not made active, and the run, the version list and the
model page say why ("not made active: v1 was made active by hand during this run"). The rollback's Scoring job
scores with the version it was asked for, even when it runs after the run.

Through the API as the tester did: POST runs/create/, then POST models/1/activate/ while the run is queued or
training. The worker's part is driven here (training_run_execute with a round that does not train, then the
scoring task); which version goes live is the product's decision."""

from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse

from labeling.models import Item, Job, JobKind, JobStatus, Role
from tests.factories import api_client, page_client
from tests.training.fake_rounds import fake_round, holdout_metrics, two_class_project
from training.ml import pipeline
from training.models import ModelVersion, RunStatus, TrainingRun
from training.services.runs import training_run_execute
from training.tasks import training_score_task

pytestmark = pytest.mark.django_db

HELD = "not made active: v1 was made active by hand during this run"


@pytest.fixture
def team(project_factory, label_class_factory, item_factory, member_of, settings):
    """Two classes, 6 labeled train items, 2 holdout items, 4 open items; v1 and v2 kept, v3 active (15 of 21)."""
    project, classes = two_class_project(project_factory, label_class_factory, item_factory, member_of, settings)
    for number, right in ((1, 14), (2, 13), (3, 15)):
        ModelVersion.objects.create(
            project=project, run=TrainingRun.objects.create(project=project, status=RunStatus.SUCCEEDED),
            number=number, artifact_path=f"v{number}", architecture="resnet10t", class_ids=[c.pk for c in classes],
            metrics=holdout_metrics(right, 21), active=number == 3,
        )  # fmt: skip
    return project


def fake_score_pool(checkpoint, pool, cache_dir, cfg, progress=None, opener=None, labeled=None):
    """score_pool standing in for the model: every version ranks the pool in id order."""
    ids = np.array(sorted(row[0] for row in pool), dtype=np.int64)
    return pipeline.ScoreResult(
        pool_ids=ids, pool_probs=np.tile(np.array([0.9, 0.1], np.float32), (len(ids), 1)),
        pool_uncertainty=np.full(len(ids), 0.2, np.float32), pool_priority=np.arange(len(ids), 0, -1, dtype=np.float32),
        device="cpu", pool_random_ids=np.array([], np.int64),
    )  # fmt: skip


def active(project) -> dict[int, bool]:
    return dict(ModelVersion.objects.filter(project=project).values_list("number", "active"))


@pytest.mark.parametrize("when", ["while it trains", "while it is queued"])
def test_a_rollback_during_a_run_stays_active_and_the_run_keeps_its_version_not_active(
    team, member_of, tmp_path, monkeypatch, when
):
    manager = api_client(member_of(team, Role.MANAGER, "manager"))
    base = f"/api/projects/{team.slug}"
    created = manager.post(f"{base}/runs/create/", {"mode": "head", "force": True}, format="json")
    assert created.status_code == 201, created.content
    run_id = created.json()["id"]
    answers = []

    def rollback():
        answers.append(manager.post(f"{base}/models/1/activate/"))

    # The round would make its version v4 active: it is not clearly worse than v3 (20 of 21 against 15 of 21)
    train = fake_round(holdout_metrics(20, 21), tmp_path)

    def round_with_a_rollback(*args):
        if when == "while it trains":
            assert TrainingRun.objects.get(pk=run_id).status == RunStatus.RUNNING
            rollback()
        return train(*args)

    monkeypatch.setattr(pipeline, "run_round", round_with_a_rollback)
    if when == "while it is queued":
        rollback()
    summary = training_run_execute(run_id=run_id)

    # The manager's rollback was answered 202 with its Scoring job
    assert answers[0].status_code == 202, answers[0].content
    assert summary["status"] == RunStatus.SUCCEEDED, TrainingRun.objects.get(pk=run_id).error
    # v1 stays active; v4 is kept, not active, and says why
    assert active(team) == {1: True, 2: False, 3: False, 4: False}
    assert summary["not_made_active"] == HELD
    assert manager.get(f"{base}/models/1/").json()["active"] is True
    v4 = manager.get(f"{base}/models/4/").json()
    assert (v4["active"], v4["metrics"]["not_made_active"]) == (False, HELD)
    run = manager.get(f"{base}/runs/{run_id}/").json()
    assert (run["status"], run["model_version"], run["not_made_active"]) == ("succeeded", 4, HELD)

    # The model page names v1 as active, made active by hand, and says by v4 why it is not
    html = page_client(member_of(team, Role.ML_ENGINEER, "eng")).get(reverse("training:model", args=[team.slug]))
    text = html.content.decode()
    assert "Active model: <strong>v1</strong>" in text
    assert '<span id="active-by-hand">made active by hand by manager</span>' in text
    row = text.split('id="version-4"')[1].split("</tr>")[0]
    assert "Not made active: v1 was made active by hand during this run" in row
    assert "make active" in row

    # The rollback's Scoring job, run after the run (it waited behind it), scores with v1 and ranks the queue
    job = Job.objects.get(project=team, kind=JobKind.SCORE)
    monkeypatch.setattr(pipeline, "score_pool", fake_score_pool)
    training_score_task(team.pk, job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert (job.result["version"], job.result["scored"], job.result.get("priorities")) == (1, 4, None)
    card = page_client(member_of(team, Role.ML_ENGINEER, "eng2")).get(reverse("training:model", args=[team.slug]))
    assert "Scored 4 open images with v1" in card.content.decode()


def test_a_version_made_active_by_hand_before_the_run_was_asked_for_is_replaced_as_before(
    team, member_of, tmp_path, monkeypatch
):
    manager = api_client(member_of(team, Role.MANAGER, "manager"))
    base = f"/api/projects/{team.slug}"
    assert manager.post(f"{base}/models/1/activate/").status_code == 202

    created = manager.post(f"{base}/runs/create/", {"mode": "head", "force": True}, format="json")
    monkeypatch.setattr(pipeline, "run_round", fake_round(holdout_metrics(20, 21), tmp_path))
    summary = training_run_execute(run_id=created.json()["id"])

    assert active(team) == {1: False, 2: False, 3: False, 4: True}
    assert "not_made_active" not in summary
    assert manager.get(f"{base}/runs/{created.json()['id']}/").json()["not_made_active"] is None


def test_the_rollbacks_scoring_job_scores_with_the_version_asked_for_after_another_is_made_active(
    team, member_of, monkeypatch
):
    manager = api_client(member_of(team, Role.MANAGER, "manager"))
    base = f"/api/projects/{team.slug}"
    first = manager.post(f"{base}/models/1/activate/").json()
    assert manager.post(f"{base}/models/2/activate/").status_code == 202  # before the first job ran
    priorities = dict(Item.objects.filter(project=team).values_list("pk", "priority"))

    monkeypatch.setattr(pipeline, "score_pool", fake_score_pool)
    job = Job.objects.get(project=team, pk=first["id"])
    training_score_task(team.pk, job.pk)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.result["version"] == 1
    assert job.result["priorities"] == "skipped: another version was made active meanwhile"
    assert dict(Item.objects.filter(project=team).values_list("pk", "priority")) == priorities  # v2 ranks it
    assert active(team) == {1: False, 2: True, 3: False}
