"""A queued heatmap says what it waits for: the project's running training run (its number, stage, progress and age),
since the gpu worker finishes that first, else the gpu worker and how long the heatmap has been queued. The pill
still reads one short word; the tooltip and a hidden line (.explain-wait) say the rest."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from labeling.models import Role
from tests.factories import page_client
from tests.training.test_h50_quality_review_links import one_read_as_eight
from training.models import Explanation, ExplanationStatus, RunStatus, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(project_factory, label_class_factory, item_factory, member_of):
    """A project whose first item's heatmap of "eight" is queued, a reviewer's client, and the fragment's poll URL."""
    project = project_factory()
    version, items, eight = one_read_as_eight(project, label_class_factory, item_factory)
    row = Explanation.objects.create(
        model_version=version, item=items[0], class_index=1, class_name="eight", status=ExplanationStatus.QUEUED
    )
    url = reverse("training:explanation", args=[project.slug, items[0].pk, eight.pk]) + "?version=1&poll=1"
    return {"project": project, "row": row, "url": url, "client": page_client(member_of(project, Role.REVIEWER, "r"))}


def pill(body: str) -> tuple[str, str]:
    """(the pill's visible word, its tooltip) of a pending heatmap fragment."""
    found = re.search(r'class="explain-status explain-pending"[^>]*title="([^"]*)"[^>]*>.*?</span>([^<]*)</span>', body)
    assert found is not None, body
    return found.group(2), html.unescape(found.group(1))


def wait_line(body: str) -> str | None:
    found = re.search(r'<span class="explain-wait"[^>]*hidden>([^<]*)</span>', body)
    return html.unescape(found.group(1)) if found else None


def test_a_queued_heatmap_names_the_training_run_it_waits_for(queued, project_factory):
    # Given the project's training run 3 minutes in, at "train" and 43 % done, and another project's run too
    now = timezone.now()
    run = TrainingRun.objects.create(
        project=queued["project"], status=RunStatus.RUNNING, stage="train", progress=0.43,
        started_at=now - timedelta(minutes=3, seconds=5),
    )  # fmt: skip
    other = TrainingRun.objects.create(
        project=project_factory(), status=RunStatus.RUNNING, stage="embed", started_at=now
    )

    # When the tile polls the heatmap
    body = queued["client"].get(queued["url"]).content.decode()

    # Then the pill still reads "Queued", and its tooltip and the page's line name that run and how far it is
    word, title = pill(body)
    expected = f"Waits for training run {run.pk} (stage train, 43% done, started 3 min ago)."
    assert word == "Queued"
    assert title.endswith(" " + expected)
    assert wait_line(body) == expected
    assert f"training run {other.pk} " not in body


def test_a_queued_heatmap_without_a_running_run_waits_for_the_gpu_worker(queued):
    # Given no training run of the project running (one finished earlier), and the heatmap queued 8 seconds ago
    TrainingRun.objects.create(
        project=queued["project"], status=RunStatus.SUCCEEDED, started_at=timezone.now() - timedelta(hours=1)
    )
    Explanation.objects.filter(pk=queued["row"].pk).update(created_at=timezone.now() - timedelta(seconds=8))

    # When the tile polls the heatmap
    body = queued["client"].get(queued["url"]).content.decode()

    # Then it says it waits for the gpu worker and since when, and names no run
    word, title = pill(body)
    assert word == "Queued"
    line = wait_line(body)
    assert line is not None
    assert re.fullmatch(r"Waits for the gpu worker \(queued (8|9) s ago\)\.", line), line
    assert title.endswith(" " + line)
    assert "training run" not in line


def test_a_computing_heatmap_says_no_wait_and_the_wait_costs_one_query(queued):
    # Given the project's training run running
    TrainingRun.objects.create(project=queued["project"], status=RunStatus.RUNNING, started_at=timezone.now())
    client, url = queued["client"], queued["url"]
    client.get(url)  # the session's first read

    # When the queued heatmap is polled, and again once the worker has taken it
    with CaptureQueriesContext(connection) as waiting:
        queued_body = client.get(url).content.decode()
    Explanation.objects.filter(pk=queued["row"].pk).update(status=ExplanationStatus.RUNNING)
    with CaptureQueriesContext(connection) as computing:
        computing_body = client.get(url).content.decode()

    # Then only the queued one carries the line, which costs its poll one query more
    assert wait_line(queued_body) is not None
    assert pill(computing_body)[0] == "Computing"
    assert wait_line(computing_body) is None
    assert "Waits for" not in computing_body
    assert len(waiting.captured_queries) - len(computing.captured_queries) == 1
