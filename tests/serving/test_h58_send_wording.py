"""Monitoring's wording as a tester read it (h58 P8): a send right after traffic, before the service has written
its log, says no prediction is logged yet (the log is written a few seconds after the answer), not that the log is
empty; live accuracy's `predictions` counts the sent predictions, and README and the schema say so alike."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from labeling.models import Item, Job, Role
from labeling.services.annotations import annotation_create
from serving.models import PredictionLog
from tests.factories import png_bytes, token_client
from tests.serving.test_h58_monitoring import SEND, log_prediction
from tests.serving.test_h58_monitoring import project as _shapes

project = _shapes  # the same fixture: the project named "shapes" with classes cat and dog

pytestmark = pytest.mark.django_db


def test_a_send_before_the_log_is_written_says_no_prediction_is_logged_yet(project, member_of):
    # Given a project whose service has answered but not yet written its log (it writes a moment after the answer)
    client = token_client(member_of(project, Role.MANAGER))

    # When the manager's script sends right away
    answer = client.post(SEND.format(project.slug), {"limit": 10}, format="json")

    # Then it is 400 saying nothing is logged yet and why, not that the log is empty, and nothing was sent
    assert answer.status_code == 400
    [message] = answer.json()["detail"]
    assert message.startswith("No production images match: no prediction is logged yet")
    assert "a few seconds after it answers" in message
    assert "empty" not in message
    assert not Job.objects.filter(project=project).exists()


def test_live_predictions_count_the_sent_predictions_as_readme_and_the_schema_say(
    project, member_of, django_capture_on_commit_callbacks
):
    # Given 4 production images v3 was asked about 3 times each (12 requests), 10 of them sent and all labeled cat
    for minute, seed in enumerate([k for k in range(4) for _ in range(3)]):
        log_prediction(project, png_bytes(600 + seed), "cat", 0.5, minute + 1)
    manager = member_of(project, Role.MANAGER)
    client = token_client(manager)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(SEND.format(project.slug), {"limit": 10}, format="json").status_code == 202
    sent = PredictionLog.objects.filter(project=project, queued_at__isnull=False).count()
    assert sent == 10
    cat = project.classes.get(name="cat")
    annotator = member_of(project, Role.ANNOTATOR)
    for item in Item.objects.filter(project=project):
        annotation_create(item=item, user=annotator, class_ids=[cat.pk])

    # When the manager reads the figures and the schema
    [live] = client.get(f"/api/projects/{project.slug}/monitoring/").json()["live_accuracy"]
    schema = client.get("/api/schema/?format=json").json()
    described = schema["components"]["schemas"]["MonitoringAccuracy"]["properties"]["predictions"]["description"]

    # Then `predictions` is the 10 sent predictions of the 4 images, not the 12 requests
    assert (live["n"], live["predictions"]) == (4, sent)

    # And README and the schema both call them the sent predictions; README no longer says "the requests"
    readme = " ".join((Path(settings.BASE_DIR) / "README.md").read_text().split())
    assert described.startswith("The version's sent predictions of those images")
    assert "a request that was not sent does not" in described
    assert re.search(r"`predictions` the version's sent predictions of them", readme)
    assert "`predictions` the requests" not in readme
