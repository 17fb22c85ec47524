"""A label-error search or a holdout prediction asked for while the task queue (Redis) is down: the page tells the
truth, no job is left queued for nothing, and asking again once Redis is back sends the work."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from labeling.models import Job, JobKind, JobStatus, Role
from labeling.services.dispatch import BROKER_DOWN
from training.models import ModelVersion, TrainingRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def queued_messages(url: str, queue: str = "default") -> int:
    return redis.Redis.from_url(url).llen(queue)


def test_a_label_error_search_asked_for_with_redis_down_fails_visibly_and_a_retry_once_it_is_back_is_sent(
    celery_env, redis_server, project_factory, member_of
):
    project = project_factory()
    reviewer = Client()
    reviewer.force_login(member_of(project, Role.REVIEWER))
    find = reverse("training:label_errors_find", args=[project.slug])

    # Given Redis is down when the reviewer asks for a search
    redis_server.stop()
    try:
        page = reviewer.post(find, follow=True).content.decode()
        # Then the job ended failed with the reason, and the page says so (no "queued" search nothing will run)
        job = Job.objects.get(project=project, kind=JobKind.LABEL_ERRORS)
        assert (job.status, job.message) == (JobStatus.FAILED, BROKER_DOWN)
        assert "could not start" in page
    finally:
        redis_server.start()

    # When Redis is back and the reviewer asks again
    page = reviewer.post(find, follow=True).content.decode()

    # Then a new search is queued and its message is waiting on the default queue for a worker
    retry = Job.objects.filter(project=project, kind=JobKind.LABEL_ERRORS).exclude(pk=job.pk).get()
    assert retry.status == JobStatus.QUEUED
    assert f"Label-error search #{retry.number} queued" in page
    assert queued_messages(redis_server.url) == 1


def test_a_search_left_queued_by_an_older_outage_is_replaced_not_returned_forever(
    celery_env, redis_server, project_factory, member_of
):
    # Given a search queued an hour ago whose message never reached the broker
    project = project_factory()
    stale = Job.objects.create(project=project, kind=JobKind.LABEL_ERRORS, status=JobStatus.QUEUED)
    Job.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(hours=1))
    reviewer = Client()
    reviewer.force_login(member_of(project, Role.REVIEWER))

    # When the reviewer asks for a search
    reviewer.post(reverse("training:label_errors_find", args=[project.slug]))

    # Then the dead job is closed with a reason and a new one is sent
    stale.refresh_from_db()
    assert stale.status == JobStatus.FAILED
    fresh = Job.objects.filter(project=project, kind=JobKind.LABEL_ERRORS, status=JobStatus.QUEUED).get()
    assert fresh.pk != stale.pk
    assert queued_messages(redis_server.url) == 1


def test_predicting_the_holdout_with_redis_down_says_nothing_was_sent(
    celery_env, redis_server, project_factory, member_of
):
    project = project_factory()
    run = TrainingRun.objects.create(project=project, status="succeeded")
    ModelVersion.objects.create(project=project, run=run, number=1, active=True)
    engineer = Client()
    engineer.force_login(member_of(project, Role.ML_ENGINEER))

    redis_server.stop()
    try:
        page = engineer.post(reverse("training:holdout_predict", args=[project.slug]), {"v": 1}, follow=True)
    finally:
        redis_server.start()

    html = page.content.decode()
    assert "Predicting the holdout" not in html
    assert "is not being predicted" in html


def test_rescoring_with_redis_down_fails_the_job_visibly_and_a_retry_once_it_is_back_is_sent(
    celery_env, redis_server, project_factory, member_of
):
    # Given a project with an active model and an engineer on its model page
    project = project_factory()
    run = TrainingRun.objects.create(project=project, status="succeeded")
    ModelVersion.objects.create(project=project, run=run, number=1, active=True)
    engineer = Client()
    engineer.force_login(member_of(project, Role.ML_ENGINEER))
    rescore = reverse("training:rescore", args=[project.slug])

    # When they ask for a re-score while Redis is down
    redis_server.stop()
    try:
        page = engineer.post(rescore, follow=True).content.decode()
    finally:
        redis_server.start()

    # Then the scoring job ended failed with the reason, and the page says the queue is unavailable
    job = Job.objects.get(project=project, kind=JobKind.SCORE)
    assert (job.status, job.message) == (JobStatus.FAILED, BROKER_DOWN)
    assert "task queue is unavailable" in page

    # And asking again with Redis back queues a new job whose message waits for a worker
    page = engineer.post(rescore, follow=True).content.decode()
    retry = Job.objects.filter(project=project, kind=JobKind.SCORE).exclude(pk=job.pk).get()
    assert retry.status == JobStatus.QUEUED
    assert "Scoring queued." in page
    assert queued_messages(redis_server.url, "gpu") == 1  # scoring runs on the model workers' queue
