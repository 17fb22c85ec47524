"""Monitoring alerts: banners from the latest finished drift report, for the roles that see monitoring, and a
signed webhook (HMAC-SHA256 of the body, X-Labelloop-Signature) POSTed once to a real local HTTP server."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from labeling.models import Role
from serving.models import DriftReport, ServingSettings
from serving.selectors.alerts import DRIFT, LOW_CONFIDENCE, alerts_context, project_alerts
from serving.services.alerts import alert_settings_set, alert_webhook_send, drift_alert_notify

pytestmark = pytest.mark.django_db


class Receiver(ThreadingHTTPServer):
    """A webhook receiver on 127.0.0.1 that records each request and answers `status`."""

    def __init__(self, status: int = 200):
        self.received: list[dict] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"headers": self.headers, "body": body, "path": self.path})
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/hooks/labelloop"


@pytest.fixture
def receiver():
    servers = []

    def start(status: int = 200) -> Receiver:
        server = Receiver(status)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def report(project, *, minutes_ago: float = 0, status="done", drifted=False, low_share=0.1, version=1, **extra):
    end = timezone.now() - timedelta(minutes=minutes_ago)
    row = DriftReport.objects.create(
        project=project, version_number=version, window_start=end - timedelta(hours=1), window_end=end,
        n_production=500, n_reference=1000, statistic=0.02 if drifted else 0.001, p_value=1 / 201 if drifted else 0.4,
        threshold=0.01, drifted=drifted, low_confidence_share=low_share, low_confidence_alert=low_share >= 0.3,
        status=status, progress=1.0 if status != "running" else 0.3, **extra,
    )  # fmt: skip
    DriftReport.objects.filter(pk=row.pk).update(created_at=end)
    row.refresh_from_db()
    return row


def test_alerts_follow_the_latest_finished_report(project_factory):
    project = project_factory()
    # Given no report: no alert
    assert project_alerts(project) == []

    # When a report finds drift, the project has a drift alert naming the p-value and the samples
    report(project, minutes_ago=120, drifted=True)
    (alert,) = project_alerts(project)
    assert alert.kind == DRIFT
    assert "p = 0.00498 < 0.01" in alert.message
    assert "500 predictions" in alert.message
    assert "1000 of the project's images" in alert.message

    # And a running or failed check does not clear it; a clean finished report does
    report(project, minutes_ago=60, status="running")
    report(project, minutes_ago=30, status="failed", error="no export")
    assert [a.kind for a in project_alerts(project)] == [DRIFT]
    report(project, minutes_ago=10, low_share=0.45)
    (alert,) = project_alerts(project)
    assert alert.kind == LOW_CONFIDENCE
    assert "45% of 500 predictions" in alert.message
    assert "below 0.5 (alert at 30%)" in alert.message
    report(project, minutes_ago=1)
    assert project_alerts(project) == []


@pytest.mark.parametrize(("role", "sees"), [(Role.ANNOTATOR, False), (Role.REVIEWER, True), (Role.MANAGER, True),
                                            (Role.ML_ENGINEER, True)])  # fmt: skip
def test_the_banner_context_is_offered_to_the_roles_that_see_monitoring(project_factory, role, sees):
    project = project_factory()
    report(project, drifted=True)
    context = alerts_context(SimpleNamespace(project=project, role=role))
    assert ("project_alerts" in context) == sees
    if sees:
        assert [a.kind for a in context["project_alerts"]()] == [DRIFT]
    assert alerts_context(SimpleNamespace()) == {}  # not a project page


def test_a_drift_alert_posts_a_signed_webhook_once(project_factory, receiver, django_capture_on_commit_callbacks):
    # Given a manager's webhook URL pointing at a running receiver
    server = receiver()
    project = project_factory(slug="watched")
    alert_settings_set(project=project, webhook_url=server.url)
    secret = ServingSettings.objects.get(project=project).webhook_secret

    # When a finished report finds drift
    first = report(project, minutes_ago=5, drifted=True)
    with django_capture_on_commit_callbacks(execute=True):
        assert drift_alert_notify(report=first)

    # Then the receiver got one POST whose signature is the HMAC-SHA256 of the body with the project's secret
    (request,) = server.received
    body = request["body"]
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request["headers"]["X-Labelloop-Signature"], expected)
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["path"] == "/hooks/labelloop"
    payload = json.loads(body)
    assert payload["project"]["slug"] == "watched"
    assert [a["kind"] for a in payload["alerts"]] == [DRIFT]
    assert payload["report"]["p_value"] == pytest.approx(1 / 201)
    assert payload["report"]["n_production"] == 500

    # And the next hourly report of the same drift does not send again; a new kind of alert does
    with django_capture_on_commit_callbacks(execute=True):
        assert not drift_alert_notify(report=report(project, drifted=True))
        assert drift_alert_notify(report=report(project, drifted=True, low_share=0.5))
    assert len(server.received) == 2
    assert [a["kind"] for a in json.loads(server.received[1]["body"])["alerts"]] == [DRIFT, LOW_CONFIDENCE]


def test_a_failing_receiver_gets_one_attempt_and_the_task_does_not_raise(project_factory, receiver):
    server = receiver(status=500)
    project = project_factory()
    alert_settings_set(project=project, webhook_url=server.url)
    row = report(project, drifted=True)
    assert alert_webhook_send(report_id=row.pk) == {"status": 500}
    assert len(server.received) == 1

    # A receiver that is gone: a clear error, no exception
    url = server.url
    server.shutdown()
    server.server_close()
    assert url == ServingSettings.objects.get(project=project).webhook_url
    assert "error" in alert_webhook_send(report_id=row.pk)


def test_no_url_no_webhook_and_bad_settings_change_nothing(project_factory):
    project = project_factory()
    assert not drift_alert_notify(report=report(project, drifted=True))
    alert_settings_set(project=project, webhook_url="https://hooks.example.org/a", low_confidence_alert_share=0.25)
    for bad in ({"webhook_url": "ftp://example.org/hook"}, {"webhook_url": "not a url"}, {"drift_p_threshold": 2.0},
                {"low_confidence_threshold": -0.1}, {"colour": "red"}):  # fmt: skip
        with pytest.raises(ValidationError):
            alert_settings_set(project=project, **bad)
    row = ServingSettings.objects.get(project=project)
    assert (row.webhook_url, row.drift_p_threshold, row.low_confidence_threshold, row.low_confidence_alert_share) == (
        "https://hooks.example.org/a",
        0.01,
        0.5,
        0.25,
    )
    assert len(row.webhook_secret) == 64
    other = alert_settings_set(project=project_factory(), low_confidence_alert_share=0.2)
    assert other.webhook_secret != row.webhook_secret


def test_a_drift_alert_shows_as_a_banner_on_the_project_pages_of_those_who_see_monitoring(project_factory, member_of):
    # Given a project whose latest drift check found drift
    project = project_factory()
    report(project, drifted=True)
    reviewer, annotator = Client(), Client()
    reviewer.force_login(member_of(project, Role.REVIEWER))
    annotator.force_login(member_of(project, Role.ANNOTATOR))

    # When a reviewer opens the project's overview, the banner names the drift and links to monitoring
    html = reviewer.get(reverse("labeling:project_detail", args=[project.slug])).content.decode()
    assert 'role="alert"' in html
    assert "p = 0.00498 &lt; 0.01" in html
    assert reverse("serving:monitoring", args=[project.slug]) in html
    # ... an annotator (who does not see monitoring) gets no banner, and a clean later check clears it
    assert "p = 0.00498" not in annotator.get(reverse("labeling:project_detail", args=[project.slug])).content.decode()
    report(project, minutes_ago=-1)
    assert "p = 0.00498" not in reviewer.get(reverse("labeling:project_detail", args=[project.slug])).content.decode()
