"""Train now (page), POST runs/create/ (API) and manage.py train refuse a run that would train the active version
again: no new labels since it and the settings it was trained with. Each says so and offers a deliberate override
("Train anyway", force=true, --force); new labels or a changed setting train as before, and the scheduler, which
waits for new labels, queues nothing either way. The rounds here are real (enqueue, execute, version) around a
stand-in run_round that records its RoundConfig in the checkpoint's config.json as the real one does."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from labeling.models import Role
from labeling.services.annotations import annotation_create
from tests.factories import api_client, page_client
from tests.training.fake_rounds import fake_round, holdout_metrics
from training.ml import pipeline
from training.models import RunStatus, TrainingRun
from training.selectors.runs import projects_due_for_training
from training.services.runs import training_run_enqueue, training_run_execute

pytestmark = pytest.mark.django_db

SAME = "No new labels since v1 and the same settings: a run would train the same model again."


@pytest.fixture
def trained(project_factory, label_class_factory, item_factory, member_of, tmp_path, monkeypatch):
    """A project whose v1 was trained (with the project's own mode, as Train now asks) on its six labels."""
    project = project_factory(slug="digits", retrain_every=1)
    classes = [label_class_factory(project=project, name=n) for n in ("a", "b")]
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    for i in range(6):
        annotation_create(item=item_factory(project=project), user=annotator, class_ids=[classes[i % 2].pk])
    item_factory(project=project)  # one open image for the pool
    stand_in = fake_round(holdout_metrics(1, 2), tmp_path)

    def run_round(cfg, train, holdout, pool, cache_dir, out_dir, progress):
        result = stand_in(cfg, train, holdout, pool, cache_dir, out_dir, progress)
        (result.checkpoint_dir / "config.json").write_text(json.dumps({"round_config": cfg.to_dict()}))
        return result

    monkeypatch.setattr(pipeline, "run_round", run_round)
    run = training_run_enqueue(project=project, trigger="manual", send=False)
    assert training_run_execute(run_id=run.pk)["status"] == RunStatus.SUCCEEDED, TrainingRun.objects.get(pk=run.pk)
    return project, classes, annotator, member_of(project, Role.ML_ENGINEER, "eng")


def _runs(project) -> int:
    return TrainingRun.objects.filter(project=project).count()


def test_train_now_says_it_would_train_the_same_model_and_offers_train_anyway(trained):
    project, *_, engineer = trained
    client = page_client(engineer)
    url = reverse("training:train_now", args=[project.slug])

    response = client.post(url)

    assert response.status_code == 409
    html = response.content.decode()
    assert SAME in html
    assert "Train anyway" in html
    assert 'name="force" value="1"' in html
    assert _runs(project) == 1  # nothing queued

    # "Train anyway" queues the run
    page = client.post(url, {"force": "1"}, follow=True).content.decode()
    assert _runs(project) == 2
    assert f"Run #{TrainingRun.objects.latest('pk').pk} queued." in page


def test_new_labels_or_a_changed_setting_train_as_before(trained, item_factory):
    project, classes, annotator, engineer = trained
    client = page_client(engineer)
    url = reverse("training:train_now", args=[project.slug])

    project.image_size = 160
    project.save(update_fields=["image_size"])
    assert client.post(url).status_code == 302
    assert _runs(project) == 2
    TrainingRun.objects.filter(project=project, status=RunStatus.QUEUED).update(status=RunStatus.CANCELLED)

    project.image_size = 128
    project.save(update_fields=["image_size"])
    assert client.post(url).status_code == 409  # back to v1's settings: the same model again
    annotation_create(item=item_factory(project=project), user=annotator, class_ids=[classes[0].pk])
    assert client.post(url).status_code == 302
    assert _runs(project) == 3


def test_the_api_answers_409_same_model_and_force_queues(trained):
    project, *_, engineer = trained
    client = api_client(engineer)
    url = reverse("api-run-create", args=[project.slug])

    refused = client.post(url, {}, format="json")

    assert refused.status_code == 409
    assert refused.json() == {"detail": f"{SAME} Send force=true to train anyway.", "code": "same_model", "version": 1}
    assert _runs(project) == 1
    forced = client.post(url, {"force": True}, format="json")
    assert forced.status_code == 201
    assert _runs(project) == 2


def test_manage_py_train_refuses_and_force_trains(trained):
    project, *_ = trained

    with pytest.raises(
        CommandError, match=re.escape("a run would train the same model again. Use --force to train anyway.")
    ):
        call_command("train", project.slug, "--in-process", stdout=io.StringIO(), stderr=io.StringIO())
    assert _runs(project) == 1

    out = io.StringIO()
    call_command("train", project.slug, "--in-process", "--force", verbosity=0, stdout=out, stderr=io.StringIO())
    assert "succeeded" in out.getvalue()
    assert "model v2" in out.getvalue()


def test_the_scheduler_queues_nothing_without_new_labels(trained):
    project, *_ = trained
    assert project not in projects_due_for_training()
