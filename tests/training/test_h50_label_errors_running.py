"""A label-error search while it runs (tester h50, P12): the label-errors page says a search is running instead of
"has not run yet" and offers no second start, the model page says the cross-validated estimate is being computed
instead of blaming the labels, and the job's bar moves as the search's steps finish."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from labeling.models import Job, JobKind, Role
from labeling.services.jobs import job_start
from tests.training.test_label_errors_page import red_and_blue_labeled
from tests.training.test_metric_intervals_pages import metrics_world  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db


def _start_search(client, project, django_capture_on_commit_callbacks, *, run: bool) -> Job:
    """Press "Search for label errors now"; with run=False the task is not sent (it waits in the queue)."""
    with django_capture_on_commit_callbacks(execute=run):
        response = client.post(reverse("training:label_errors_find", args=[project.slug]))
    assert response.status_code == 302
    return Job.objects.filter(project=project, kind=JobKind.LABEL_ERRORS).latest("created_at")


def test_first_search_running_is_said_and_not_offered_again(
    client, project_factory, member_of, django_capture_on_commit_callbacks
):
    # Given a project's first label-error search, started from the page and now running on the worker
    project = project_factory()
    client.force_login(member_of(project, Role.MANAGER, "boss"))
    job = _start_search(client, project, django_capture_on_commit_callbacks, run=False)
    url = reverse("labeling:review_label_errors", args=[project.slug])
    queued = client.get(url).content.decode()
    job_start(job=job, total=1)
    job.refresh_from_db()

    # When the manager opens the label-errors page
    html = client.get(url).content.decode()

    # Then it says a search is running since when, not that none has run, and offers no second start
    started = job.started_at.strftime("%H:%M")
    assert f"A label-error search is running (started {started} UTC)." in html
    assert "No label-error search has run yet" not in html
    assert "Search for label errors now" not in html
    # and while it waited for a worker, that it was waiting
    assert f"A label-error search is waiting to start (asked for at {job.created_at:%H:%M} UTC)." in queued
    assert "Search for label errors now" not in queued


def test_model_page_says_the_estimate_is_being_computed_while_the_search_runs(
    client,
    metrics_world,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    # Given a small holdout, no cross-validated estimate yet, and the first label-error search running
    project = metrics_world["project"]
    client.force_login(metrics_world["viewer"])
    job = _start_search(client, project, django_capture_on_commit_callbacks, run=False)
    job_start(job=job, total=1)
    job.refresh_from_db()

    # When the ML engineer opens the model page
    html = client.get(reverse("training:model", args=[project.slug])).content.decode()

    # Then the estimate's card gives the true reason: the running search, with its start
    note = re.search(r'id="cv-pending"[^>]*>([^<]*)</p>', html)
    assert note is not None, "the card blames the labels instead of the running search"
    assert f"being computed by the label-error search started {job.started_at:%H:%M} UTC" in note[1]
    assert 'id="cv-missing"' not in html


def test_the_progress_bar_moves_as_the_search_runs(
    client, project_factory, member_of, django_capture_on_commit_callbacks, monkeypatch
):
    # Given two colours with 22 labels each: enough for the search to judge them
    project, manager = red_and_blue_labeled(project_factory, member_of)
    client.force_login(manager)
    # What the job card the page polls says each time the search starts a cross-validation or the estimate
    seen = []

    def bar() -> None:
        job = Job.objects.filter(project=project, kind=JobKind.LABEL_ERRORS).latest("created_at")
        card = client.get(reverse("labeling:job_status", args=[project.slug, job.pk])).content.decode()
        seen.append(re.search(r"(\d+) / (\d+)", card).groups())

    from training.ml import confident, heads

    real_cv, real_head = confident.cross_val_pred_probs, heads.cross_val_head

    def cv(*args, **kwargs):
        bar()
        return real_cv(*args, **kwargs)

    def head(*args, **kwargs):
        bar()
        return real_head(*args, **kwargs)

    monkeypatch.setattr(confident, "cross_val_pred_probs", cv)
    monkeypatch.setattr(heads, "cross_val_head", head)

    # When the manager starts a search and the worker runs it
    job = _start_search(client, project, django_capture_on_commit_callbacks, run=True)

    # Then the bar moved through several steps (it sat at "0 / 1" for the whole run) and ended full
    done = [int(d) for d, _ in seen]
    assert len(set(done)) >= 3, seen
    assert done == sorted(done)
    assert all(int(t) > 1 for _, t in seen), seen
    job.refresh_from_db()
    assert job.status == "succeeded", job.message
    assert job.done == job.total > 1
