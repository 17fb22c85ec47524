"""Training mode "auto", the default of new projects: the worker that trains decides (a fine-tune with CUDA, a head
on cached embeddings on a CPU) and the run records which and why."""

from __future__ import annotations

import re

import pytest
import torch
from django.test import Client
from django.urls import reverse

from labeling.constants import DEFAULT_BACKBONE, TRAINING_MODE_CHOICES
from labeling.models import Item, Project, Role
from tests.training.helpers import resolve
from tests.training.loop_fixtures import TINY_ROUND, digits_project
from training import services
from training.ml.config import REQUESTED_MODES, resolve_mode
from training.models import ModelVersion, RunMode, TrainingRun

pytestmark = pytest.mark.django_db


def test_a_project_created_from_the_page_trains_in_auto_mode(user_factory, allow_project_creation):
    # given a project creator
    client = Client()
    client.force_login(allow_project_creation(user_factory()))

    # when they create a project through the page (the form has no training mode field)
    response = client.post(
        reverse("labeling:project_create"),
        {"name": "Fresh", "task_type": "single", "instructions": "", "annotations_per_item": 1, "classes": "a\nb"},
    )

    # then it trains in auto mode, and its settings page shows Auto selected and explains it
    assert response.status_code == 302
    project = Project.objects.get(name="Fresh")
    assert project.training_mode == "auto"
    assert (project.backbone, project.backbone_weights) == (DEFAULT_BACKBONE, "bundled")  # offline from the start
    html = client.get(reverse("labeling:project_settings", args=[project.slug])).content.decode()
    assert f'value="{DEFAULT_BACKBONE}" selected' in html
    select = re.search(r'<select name="training_mode".*?</select>', html, flags=re.S).group(0)
    assert re.findall(r'<option value="([^"]+)"', select) == ["auto", "head", "finetune"]
    assert 'value="auto" selected' in select
    assert "Auto: fine-tune where the training worker has a GPU (CUDA), else train a head" in html


def test_the_modes_a_project_may_ask_for_are_the_ones_the_worker_resolves():
    assert tuple(value for value, _ in TRAINING_MODE_CHOICES) == REQUESTED_MODES
    assert set(REQUESTED_MODES) <= set(RunMode.values)


@pytest.mark.parametrize(
    ("requested", "device", "mode", "why"),
    [
        ("auto", "cpu", "head", "auto: no CUDA on this worker (cpu), so a head is trained on cached embeddings"),
        ("auto", "cuda", "finetune", "auto: this worker has CUDA (cuda), so the whole network is fine-tuned"),
        ("auto", "cuda:1", "finetune", "auto: this worker has CUDA (cuda:1)"),
        ("head", "cuda", "head", "head as the project or the request asked"),
        ("finetune", "cpu", "finetune", "finetune as the project or the request asked"),
    ],
)
def test_auto_fine_tunes_with_cuda_and_trains_a_head_on_a_cpu(requested, device, mode, why):
    resolved, reason = resolve_mode(requested, device)

    assert resolved == mode
    assert why in reason


def _auto_project(project_factory, settings):
    # One head fit (no self-training) and two fine-tune epochs: the mode is under test, not the model.
    settings.LABELLOOP_ROUND_OVERRIDES = {**TINY_ROUND, "epochs": 2, "self_training": False}
    settings.LABELLOOP_RUN_HEARTBEAT_INTERVAL = 3600  # no heartbeat thread writes inside the test transaction
    project, truth, classes = digits_project(project_factory, n=40, image_size=32, training_mode="auto")
    for item in Item.objects.filter(project=project).order_by("pk")[:24]:
        resolve(item, classes[truth[item.pk]])
    return project


def test_an_auto_run_on_a_cpu_worker_trains_a_head_and_says_why(project_factory, member_of, settings):
    # given an auto project and a worker without CUDA
    project = _auto_project(project_factory, settings)
    settings.LABELLOOP_TRAIN_DEVICE = "cpu"

    # when the scheduler's run is queued it asks for auto; when the worker runs it, it resolves it
    run = services.training_run_enqueue(project=project, trigger="scheduler", send=False)
    assert run.mode == "auto"
    summary = services.training_run_execute(run_id=run.pk)

    # then the run trained a head and says why; the model page lists the run's mode
    assert summary["status"] == "succeeded", summary
    run = TrainingRun.objects.get(pk=run.pk)
    assert (run.mode, run.device) == ("head", "cpu")
    assert run.mode_reason == "auto: no CUDA on this worker (cpu), so a head is trained on cached embeddings"
    assert ModelVersion.objects.get(run=run).metrics["mode"] == "head"
    client = Client()
    client.force_login(member_of(project, Role.ML_ENGINEER))
    page = client.get(reverse("training:model", args=[project.slug])).content.decode()
    assert f'id="run-{run.pk}"' in page


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_an_auto_run_on_a_cuda_worker_fine_tunes(project_factory, settings):
    project = _auto_project(project_factory, settings)
    settings.LABELLOOP_TRAIN_DEVICE = ""  # what torch sees: CUDA here

    run = services.training_run_enqueue(project=project, trigger="scheduler", send=False)
    summary = services.training_run_execute(run_id=run.pk)

    assert summary["status"] == "succeeded", summary
    run = TrainingRun.objects.get(pk=run.pk)
    assert run.mode == "finetune"
    assert run.device.startswith("cuda")
    assert run.mode_reason.startswith("auto: this worker has CUDA")
