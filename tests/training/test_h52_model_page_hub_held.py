"""The model page and the scheduler agree on a project kept on backbone weights "hub" while LABELLOOP_MODEL_HUB is
off (tester h52): the scheduler holds it (no run), so the page does not say a cold start or a run "is due ... within
seconds"; it says why no run is queued, in the words of hub_weights_training_refusal."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse

from labeling.models import Role
from labeling.selectors.backbone_weights import HUB_TRAINING_REFUSED
from tests.factories import page_client
from training import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def hub_project(project_factory, item_factory, settings):
    """A project due for its cold start (items, no model), kept on "hub"; the hub is off."""
    settings.LABELLOOP_MODEL_HUB = False
    project = project_factory(backbone_weights="hub", min_labels_to_train=20)
    item_factory(project=project)
    return project


def next_run_line(project, user) -> tuple[str, str]:
    """The model page's line about the next run, as text, and its data-due attribute."""
    page = page_client(user).get(reverse("training:model", args=[project.slug]))
    assert page.status_code == 200
    line = re.search(r'<p class="muted" id="next-run" data-due="(\w+)"[^>]*>(.*?)</p>', page.content.decode(), re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", "", line[2])).split()), line[1]


def test_the_model_page_says_no_run_is_queued_where_the_scheduler_holds_the_project(hub_project, member_of):
    engineer = member_of(hub_project, Role.ML_ENGINEER)

    text, due = next_run_line(hub_project, engineer)
    tick = services.training_scheduler_tick()

    # The scheduler holds it and queues nothing ...
    assert (tick["queued"], tick["held"]) == ([], [hub_project.pk])
    # ... and the page says so, instead of a cold start due within seconds
    assert due == "no"
    assert "is due" not in text
    assert "within seconds" not in text
    assert HUB_TRAINING_REFUSED in text


def test_the_model_page_says_the_cold_start_is_due_once_the_hub_is_on(hub_project, member_of, settings):
    settings.LABELLOOP_MODEL_HUB = True
    engineer = member_of(hub_project, Role.ML_ENGINEER)

    text, due = next_run_line(hub_project, engineer)
    tick = services.training_scheduler_tick()

    assert (due, tick["held"], len(tick["queued"])) == ("yes", [], 1)
    assert "a cold start is due: the scheduler queues it within seconds" in text
    assert "LABELLOOP_MODEL_HUB" not in text
