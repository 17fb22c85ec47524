"""The model page: who sees it, "Train now", live progress of a run, versions with their metrics."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from labeling.models import Role
from tests.factories import page_client
from training.ml.strategies import TYPICAL_LABELS_PER_CLASS, TYPICAL_MAX_LABELS
from training.models import ModelVersion, RunStatus, TrainingRun

pytestmark = pytest.mark.django_db


def test_reviewers_see_the_model_page_annotators_do_not_outsiders_get_404(project, project_factory, member_of):
    url = reverse("training:model", args=[project.slug])
    assert page_client(member_of(project, Role.REVIEWER)).get(url).status_code == 200
    assert page_client(member_of(project, Role.ANNOTATOR)).get(url).status_code == 403
    assert page_client(member_of(project_factory(), Role.MANAGER)).get(url).status_code == 404
    assert Client().get(url).status_code == 302


def test_page_shows_runs_and_versions_with_headline_metrics(project, member_of):
    run = TrainingRun.objects.create(
        project=project, status=RunStatus.SUCCEEDED, device="cpu", worker="gpu1@box", label_count=40,
        timings={"snapshot": 0.1, "fit": 1.24, "sends": 1, "sent_at": 1e9},
    )  # fmt: skip
    ModelVersion.objects.create(
        project=project, run=run, number=1, artifact_path="x", architecture="tf_efficientnet_lite0",
        metrics={"accuracy": 0.8125, "macro_f1": 0.75, "ece": 0.0421, "n": 16}, label_count=40,
        dataset_hash="ab" * 32, active=True,
    )  # fmt: skip
    TrainingRun.objects.create(project=project, status=RunStatus.FAILED, error="RuntimeError: <boom>")
    html = page_client(member_of(project, Role.ML_ENGINEER)).get(reverse("training:model", args=[project.slug]))
    text = html.content.decode()
    assert "0.813" in text
    assert "0.750" in text
    assert "0.042" in text
    assert "gpu1@box" in text
    assert "fit 1.2" in text
    assert "sent_at" not in text
    assert "<strong>active</strong>" in text
    assert "RuntimeError: &lt;boom&gt;" in text  # escaped
    assert project.al_strategy in text
    # what the default strategy does, and when it switches
    assert f"{TYPICAL_LABELS_PER_CLASS} labels per class (or {TYPICAL_MAX_LABELS} labels in all" in text
    assert "at least 70 % confidence" in text  # the head's self-training, as the worker applies it


def test_the_live_fragment_polls_only_while_a_run_is_in_flight(project, member_of):
    user = member_of(project, Role.REVIEWER)
    live = reverse("training:model_live", args=[project.slug])
    assert "hx-trigger" not in page_client(user).get(live).content.decode()
    TrainingRun.objects.create(project=project, status=RunStatus.RUNNING, stage="embed", progress=0.42)
    text = page_client(user).get(live).content.decode()
    assert 'hx-trigger="every 2s"' in text
    assert "embed · 42%" in text
    assert "<html" not in text  # a fragment, not the page


def test_train_now_queues_one_run_for_ml_engineers_only(project, member_of):
    url = reverse("training:train_now", args=[project.slug])
    assert page_client(member_of(project, Role.REVIEWER)).post(url).status_code == 403
    engineer = page_client(member_of(project, Role.ML_ENGINEER))
    response = engineer.post(url, {"mode": "finetune"}, follow=True)
    run = TrainingRun.objects.get(project=project)
    assert (run.trigger, run.mode, run.status) == ("manual", "finetune", RunStatus.QUEUED)
    assert f"Run #{run.pk} queued." in response.content.decode()
    again = engineer.post(url, follow=True)
    assert "already queued or running" in again.content.decode()
    assert TrainingRun.objects.filter(project=project).count() == 1
    assert engineer.get(url).status_code == 405


def test_train_now_rejects_an_unknown_mode(project, member_of):
    engineer = page_client(member_of(project, Role.MANAGER))
    response = engineer.post(reverse("training:train_now", args=[project.slug]), {"mode": "turbo"}, follow=True)
    assert "Unknown training mode" in response.content.decode()
    assert not TrainingRun.objects.exists()


def test_train_and_score_commands_fail_clearly(project):
    with pytest.raises(CommandError, match="No project"):
        call_command("train", "no-such-project")
    with pytest.raises(CommandError, match="no active model"):
        call_command("score", project.slug, verbosity=0)
    TrainingRun.objects.create(project=project, status=RunStatus.RUNNING)
    with pytest.raises(CommandError, match="already running"):
        call_command("train", project.slug, verbosity=0)


def test_a_manager_turns_mirror_averaging_off_and_the_next_round_uses_plain_embeddings(project, member_of):
    from labeling.forms import ProjectSettingsForm
    from training.services.rounds import round_config
    from training.services.snapshot import ClassOrder

    assert project.flip_average  # new projects average each image with its mirror
    manager = page_client(member_of(project, Role.MANAGER))
    model_url = reverse("training:model", args=[project.slug])
    assert "embeddings averaged with the mirrored image" in manager.get(model_url).content.decode()
    settings_page = manager.get(reverse("labeling:project_settings", args=[project.slug])).content.decode()
    assert "Mirror-averaged embeddings" in settings_page

    data = {k: v for k, v in ProjectSettingsForm(instance=project).initial.items() if v is not None}
    data.pop("flip_average")  # an unticked checkbox is absent from the POST
    response = manager.post(reverse("labeling:project_settings", args=[project.slug]), {**data, "action": "settings"})
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.flip_average is False
    assert "plain embeddings (no mirror averaging)" in manager.get(model_url).content.decode()
    classes = ClassOrder(ids=[1, 2], names=["cat", "dog"])
    assert round_config(project=project, classes=classes, mode="head").flip_average is False


def test_the_page_names_the_labels_training_leaves_out(project, member_of, item_factory):
    # Given a taxonomy where labels were given at a level ("even": its subclasses were not known) and on a class
    # archived since
    from labeling.services.annotations import annotation_create
    from labeling.services.projects import label_class_archive, label_classes_from_paths
    from training.services.snapshot import label_snapshot

    classes = label_classes_from_paths(project=project, paths=["even/zero", "even/two", "odd/one", "gone"])
    ann = member_of(project, Role.ANNOTATOR, "ann")
    for path, n in (("even/zero", 3), ("odd/one", 1), ("even", 2), ("gone", 1)):
        for _ in range(n):
            annotation_create(item=item_factory(project=project), user=ann, class_ids=[classes[path].pk])
    label_class_archive(project=project, class_id=classes["gone"].pk)

    # When an ML engineer opens the model page
    html = page_client(member_of(project, Role.ML_ENGINEER)).get(reverse("training:model", args=[project.slug]))

    # Then it says which labels the model does not learn from, as many as the training snapshot leaves out
    text = " ".join(html.content.decode().split())
    assert (
        "3 labels are kept but not learned from (the model learns the classes without subclasses that are not "
        "archived): on a class with subclasses, even (2); on an archived class, gone (1)." in text
    )
    assert label_snapshot(project=project).label_count == 7 - 3
