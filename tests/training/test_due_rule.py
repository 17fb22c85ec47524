"""One "due for training" rule: what the model page says about the next run is what the scheduler then does."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from labeling.models import Job, JobKind, JobStatus, Role
from labeling.services.annotations import annotation_create
from training import services
from training.models import RunMode, RunStatus, RunTrigger, TrainingRun

pytestmark = pytest.mark.django_db


def page_next_run(project, user) -> tuple[bool, str]:
    """(does the model page say a run is due, the page's sentence about the next run)."""
    client = Client()
    client.force_login(user)
    html = client.get(reverse("training:model", args=[project.slug])).content.decode()
    match = re.search(r'<p class="muted" id="next-run" data-due="(yes|no)">(.*?)</p>', html, re.S)
    assert match, "the model page has no line about the next run"
    return match.group(1) == "yes", " ".join(re.sub(r"<[^>]+>", "", match.group(2)).split())


def scheduler_starts(project) -> list[TrainingRun]:
    queued = services.training_scheduler_tick()["queued"]
    return list(TrainingRun.objects.filter(pk__in=queued, project=project))


def test_a_new_project_with_images_is_due_for_a_cold_start_on_the_page_and_in_the_scheduler(
    project_factory, item_factory, member_of
):
    # given a project with images, no labels and no import running
    project = project_factory(min_labels_to_train=20)
    item_factory(project=project)
    viewer = member_of(project, Role.ML_ENGINEER)

    # when the page is read, then the scheduler ticks
    due, text = page_next_run(project, viewer)
    started = scheduler_starts(project)

    # then both say a cold start is due, and the scheduler starts exactly that
    assert due
    assert "a cold start is due" in text
    assert [(r.mode, r.trigger) for r in started] == [(RunMode.COLD_START, RunTrigger.SCHEDULER)]


def test_while_an_import_runs_neither_the_page_nor_the_scheduler_starts_the_cold_start(
    project_factory, item_factory, member_of
):
    # given a project whose first images are still being imported
    project = project_factory(min_labels_to_train=20)
    item_factory(project=project)
    job = Job.objects.create(project=project, kind=JobKind.IMPORT, status=JobStatus.RUNNING)
    viewer = member_of(project, Role.ML_ENGINEER)

    # then the page says the cold start waits, and the scheduler starts nothing
    due, text = page_next_run(project, viewer)
    assert not due
    assert "waits until the import finishes" in text
    assert scheduler_starts(project) == []

    # when the import finishes, then both say due and the scheduler starts the cold start
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    due, text = page_next_run(project, viewer)
    assert due
    assert "a cold start is due" in text
    assert [r.mode for r in scheduler_starts(project)] == [RunMode.COLD_START]


def test_after_n_labels_the_page_and_the_scheduler_agree_a_run_is_due(
    project_factory, item_factory, label_class_factory, member_of
):
    # given a project after its cold start, that trains after 3 labels
    project = project_factory(min_labels_to_train=3, training_mode=RunMode.HEAD)
    cat = label_class_factory(project=project, name="cat")
    items = [item_factory(project=project) for _ in range(4)]
    TrainingRun.objects.create(project=project, mode=RunMode.COLD_START, status=RunStatus.SUCCEEDED)
    annotator = member_of(project, Role.ANNOTATOR)
    viewer = member_of(project, Role.ML_ENGINEER)

    # when 2 of 3 labels are in, then neither says due
    for item in items[:2]:
        annotation_create(item=item, user=annotator, class_ids=[cat.pk])
    due, text = page_next_run(project, viewer)
    assert not due
    assert "2 labels so far; the scheduler queues a run at 3." in text
    assert scheduler_starts(project) == []

    # when the 3rd label is in, then the page says due and the scheduler starts a training run
    annotation_create(item=items[2], user=annotator, class_ids=[cat.pk])
    due, text = page_next_run(project, viewer)
    assert due
    assert "3 labels so far; a run is due" in text
    assert [(r.mode, r.trigger) for r in scheduler_starts(project)] == [(RunMode.HEAD, RunTrigger.SCHEDULER)]

    # and while that run is in flight, the page no longer says due, and says which run is under way
    due, text = page_next_run(project, viewer)
    assert not due
    run = TrainingRun.objects.get(project=project, mode=RunMode.HEAD)
    assert f"run {run.pk} is queued (its progress: Runs, below)" in text
    assert "No model trained yet." in text
