"""A project kept on backbone weights "hub" while LABELLOOP_MODEL_HUB is off gets no training run from the scheduler:
each would start a worker only to fail (HubWeightsUnavailable), and the back-off after a failure would let one more
fail every LABELLOOP_RUN_RETRY_AFTER seconds, filling its Runs table. Once the project moves to weights a worker can
load, or the hub is turned on, the scheduler queues it again."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from labeling.forms import ProjectSettingsForm
from labeling.models import Role
from labeling.selectors.backbone_weights import HUB_TRAINING_REFUSED, hub_weights_training_refusal
from tests.factories import page_client, token_client
from training import services
from training.models import RunMode, RunStatus

pytestmark = pytest.mark.django_db


def settings_url(project) -> str:
    return reverse("labeling:project_settings", args=[project.slug])


def runs_listed(project, user) -> list[dict]:
    """The project's runs as its API lists them."""
    answer = token_client(user).get(f"/api/projects/{project.slug}/runs/")
    assert answer.status_code == 200, answer.content
    return answer.json()["results"]


def ticks_as_runs_fail(project, n: int) -> None:
    """`n` scheduler ticks, each run it queues failing at its start as a worker fails it without the hub."""
    for _ in range(n):
        services.training_scheduler_tick()
        for run in project.training_runs.filter(status=RunStatus.QUEUED):
            services.training_run_fail(run_id=run.pk, error="HubWeightsUnavailable: no internet from the worker")


@pytest.fixture
def hub_project(project_factory, item_factory, settings):
    """A project due for its cold start, kept on "hub" while the hub is off; failed runs retried at once."""
    settings.LABELLOOP_RUN_RETRY_AFTER = 0.0
    project = project_factory(backbone_weights="hub", min_labels_to_train=20)
    item_factory(project=project)
    return project


def test_the_scheduler_queues_no_run_for_a_project_on_hub_while_the_hub_is_off(hub_project, member_of):
    manager = member_of(hub_project, Role.MANAGER)

    # When the scheduler ticks on and on (each tick past the back-off after a failure)
    ticks_as_runs_fail(hub_project, 5)
    tick = services.training_scheduler_tick()

    # Then no run was queued, so none failed: the project's runs list is empty, and the tick says it held it
    assert runs_listed(hub_project, manager) == []
    assert (tick["queued"], tick["held"]) == ([], [hub_project.pk])
    # and the project's settings page says why, naming the setting and what to choose instead
    page = unescape(page_client(manager).get(settings_url(hub_project)).content.decode())
    warning = re.search(r'<p class="error" id="hub-weights-warning"[^>]*>(.*?)</p>', page, flags=re.S)[1]
    assert "LABELLOOP_MODEL_HUB=off" in warning
    assert "no training run is queued for it (the scheduler holds it" in warning
    assert "a run started by hand fails" not in warning  # Train now, the API and the command refuse it instead
    assert "Choose bundled or registered weights" in warning
    # the reason a "Train now" or the model page can give is the same rule's
    assert hub_weights_training_refusal(hub_project.backbone_weights) == HUB_TRAINING_REFUSED


def test_the_scheduler_queues_a_hub_project_once_the_hub_is_on(hub_project, member_of, settings):
    settings.LABELLOOP_MODEL_HUB = True

    tick = services.training_scheduler_tick()

    assert tick["held"] == []
    runs = runs_listed(hub_project, member_of(hub_project, Role.ML_ENGINEER))
    assert [(r["id"], r["mode"]) for r in runs] == [(tick["queued"][0], RunMode.COLD_START)]


def test_the_scheduler_queues_the_project_once_its_manager_chooses_bundled_weights(hub_project, member_of):
    manager = member_of(hub_project, Role.MANAGER)
    ticks_as_runs_fail(hub_project, 2)

    # When its manager moves it to bundled weights on the settings page
    data = {
        k: v for k, v in ProjectSettingsForm(instance=hub_project).initial.items() if v is not None and v is not False
    }
    saved = page_client(manager).post(
        settings_url(hub_project),
        {**data, "backbone_weights": "bundled", "action": "settings"},
    )
    assert saved.status_code == 302, saved.context["settings_form"].errors
    tick = services.training_scheduler_tick()

    # Then the next tick queues its cold start, the first run it ever got
    assert tick["held"] == []
    runs = runs_listed(hub_project, manager)
    assert [(r["id"], r["mode"], r["status"]) for r in runs] == [
        (tick["queued"][0], RunMode.COLD_START, RunStatus.QUEUED)
    ]


def test_train_now_the_api_and_the_command_refuse_at_once_and_queue_nothing(hub_project, member_of):
    """A run started by hand on a project kept on "hub" with the hub off is refused with the settings page's reason,
    instead of being queued to fail at its start on a worker."""
    engineer = member_of(hub_project, Role.ML_ENGINEER)

    # When an ML engineer presses Train now on the model page
    page = page_client(engineer).post(reverse("training:train_now", args=[hub_project.slug]), follow=True)
    # Then the page says why, and no run was queued
    assert HUB_TRAINING_REFUSED in unescape(page.content.decode())
    assert "queued." not in unescape(page.content.decode())
    # When a script asks the API for a run
    answer = token_client(engineer).post(f"/api/projects/{hub_project.slug}/runs/create/", {"mode": "head"})
    # Then it gets a 400 with the same reason
    assert (answer.status_code, answer.json()) == (400, {"detail": HUB_TRAINING_REFUSED})
    # When the command is run
    with pytest.raises(CommandError, match="LABELLOOP_MODEL_HUB=off"):
        call_command("train", hub_project.slug, verbosity=0)
    # Then none of the three made a run
    assert runs_listed(hub_project, engineer) == []


def test_a_failed_runs_error_starts_with_what_went_wrong_however_long_its_traceback(project, member_of):
    """The runs table shows a failed run's error's start; a long traceback must not push the reason out."""
    from training.services.runs import ERROR_CHARS, failure_text

    reason = "The model hub weights for tf_efficientnet_lite0 could not be downloaded: choose bundled weights."

    def deep(n: int):
        if n == 0:
            raise RuntimeError(reason + " Cause: " + "x" * 3000)
        deep(n - 1)

    try:
        deep(40)
    except RuntimeError as exc:
        text = failure_text(exc)
    run = services.training_run_enqueue(project=project, trigger="manual", send=False)
    services.training_run_fail(run_id=run.pk, error=text, only_if=(RunStatus.QUEUED,))

    error = runs_listed(project, member_of(project, Role.ML_ENGINEER))[0]["error"]
    assert error.startswith(f"RuntimeError: {reason}")
    assert len(error) <= ERROR_CHARS
    assert error.rstrip().endswith("x")  # the traceback's last line (the exception) is kept after the head
