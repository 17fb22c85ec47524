"""The Scoring job's card on the model page says its result in one sentence ("Scored 1,312 open images with v3
in 9.5 s."), not the raw result keys ("scored: 1312 · seconds: 9.46 · version: 3"); other kinds' cards are unchanged."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from labeling.models import Job, JobKind, JobStatus, Role
from tests.factories import page_client

pytestmark = pytest.mark.django_db


def finished_job(project, kind, result) -> Job:
    now = timezone.now()
    return Job.objects.create(
        project=project,
        kind=kind,
        status=JobStatus.SUCCEEDED,
        done=1000,
        total=1000,
        message="done",
        result=result,
        started_at=now,
        finished_at=now,
    )


def card_text(client, url: str, job: Job) -> str:
    """The text of the job's card (its <div class="job">, up to the </div> that closes it) on the page at `url`."""
    html = client.get(url).content.decode()
    start = html.index(f'<div class="job" id="job-{job.pk}"')
    depth = 0
    for tag in re.finditer(r"<div\b|</div>", html[start:]):
        depth += 1 if tag[0] == "<div" else -1
        if depth == 0:
            card = html[start : start + tag.end()]
            return " ".join(unescape(re.sub(r"<[^>]+>", " ", card)).split())
    raise AssertionError("the job's card does not end")


@pytest.mark.parametrize(
    ("result", "line"),
    [
        # one worker (training.services.rounds.model_score_pool)
        ({"version": 3, "scored": 1312, "seconds": 9.46}, "Scored 1,312 open images with v3 in 9.5 s."),
        ({"version": 1, "scored": 1, "seconds": 0.2}, "Scored 1 open image with v1 in 0.2 s."),
        ({"version": 2, "scored": 0}, "Scored 0 open images with v2."),
        # spread over workers (training.services.sharding)
        (
            {
                "version": 4,
                "scored": 25000,
                "shards": 6,
                "workers": {"w1": 3, "w2": 3},
                "retried_shards": [],
                "shard_seconds": 61.25,
            },
            "Scored 25,000 open images with v4 in 6 shards, 61.2 s of work in all.",
        ),
    ],
)
def test_the_scoring_card_says_its_result_in_one_line(result, line, project, member_of):
    # Given a finished pool scoring
    engineer = member_of(project, Role.ML_ENGINEER)
    job = finished_job(project, JobKind.SCORE, result)

    # When an engineer opens the model page
    text = card_text(page_client(engineer), reverse("training:model", args=[project.slug]), job)

    # Then its card says one line, and none of the raw keys
    assert line in text
    for raw in ("seconds:", "version:", "shards:", "shard seconds", "workers", "scored: 1312", "scored: 25000"):
        assert raw not in text


def test_the_scoring_card_says_when_the_queue_order_was_kept(project, member_of):
    engineer = member_of(project, Role.ML_ENGINEER)
    skipped = "skipped: another version was made active meanwhile"
    job = finished_job(project, JobKind.SCORE, {"version": 2, "scored": 40, "seconds": 1.04, "priorities": skipped})

    text = card_text(page_client(engineer), reverse("training:model", args=[project.slug]), job)

    assert (
        "Scored 40 open images with v2 in 1.0 s; the queue order was not changed: another version was made active"
        in text
    )
    assert "priorities" not in text


def test_other_kinds_cards_keep_their_figures(project, member_of):
    # An import's card (its job page) still lists its figures as before
    manager = member_of(project, Role.MANAGER)
    job = finished_job(project, JobKind.IMPORT, {"imported": 300, "labeled": 12, "seconds": 9.46})

    text = card_text(page_client(manager), reverse("labeling:job_status", args=[project.slug, job.pk]), job)

    assert "imported: 300 · labeled: 12 · seconds: 9.46" in text
