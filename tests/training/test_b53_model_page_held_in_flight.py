"""The model page while a run is in flight for a project the scheduler holds (backbone weights "hub" while
LABELLOOP_MODEL_HUB is off): it says no run is queued after the one in flight, and why, once; not that the
scheduler queues the next one at N new labels."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from labeling.models import Role
from labeling.selectors.backbone_weights import HUB_TRAINING_REFUSED
from tests.factories import page_client
from training.models import RunStatus, TrainingRun

pytestmark = pytest.mark.django_db

# The reason, as the page says it after a run in flight: HUB_TRAINING_REFUSED less its "No training run is queued: ".
WHY = HUB_TRAINING_REFUSED.partition(": ")[2]


def model_page(project, user) -> tuple[str, str]:
    """The model page's line about the next run, and the whole page, as text."""
    page = page_client(user).get(reverse("training:model", args=[project.slug]))
    assert page.status_code == 200
    html = page.content.decode()
    line = re.search(r'<p class="muted" id="next-run"[^>]*>(.*?)</p>', html, re.S)[1]

    def text(fragment: str) -> str:
        return " ".join(unescape(re.sub(r"<[^>]+>", "", fragment)).split())

    return text(line), text(html)


@pytest.mark.parametrize("status", [RunStatus.QUEUED, RunStatus.RUNNING])
def test_a_run_in_flight_on_a_held_project_says_no_run_is_queued_after_it(
    status, project_factory, item_factory, member_of, settings
):
    # Given a project kept on hub weights while the hub is off, with a run in flight
    settings.LABELLOOP_MODEL_HUB = False
    project = project_factory(backbone_weights="hub", min_labels_to_train=20)
    item_factory(project=project)
    run = TrainingRun.objects.create(project=project, status=status, started_at=timezone.now())
    engineer = member_of(project, Role.ML_ENGINEER)

    # When an engineer opens the model page
    line, page = model_page(project, engineer)

    # Then the line names the run, and says that no run follows it and why, once on the page
    assert f"run {run.pk} is {run.get_status_display().lower()} (its progress: Runs, below);" in line
    assert f"the scheduler queues no run after it: {WHY}" in line
    assert "queues the next one" not in line
    assert page.count("LABELLOOP_MODEL_HUB=off") == 1
    # "No training run is queued" would deny the run the line just named as queued
    assert "No training run is queued" not in page


def test_a_run_in_flight_on_a_project_nothing_holds_still_names_the_next_one(
    project_factory, item_factory, member_of, settings
):
    settings.LABELLOOP_MODEL_HUB = False
    project = project_factory(backbone_weights="bundled", min_labels_to_train=20)
    item_factory(project=project)
    TrainingRun.objects.create(project=project, status=RunStatus.RUNNING, started_at=timezone.now())

    line, _ = model_page(project, member_of(project, Role.ML_ENGINEER))

    assert "the scheduler queues the next one after it, at 20 new labels." in line
    assert "LABELLOOP_MODEL_HUB" not in line
