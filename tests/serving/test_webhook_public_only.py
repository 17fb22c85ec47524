"""Alert webhooks go to public addresses only (LABELLOOP_WEBHOOK_PRIVATE_ADDRESSES off, the production default):
since managers set the URL on the Monitoring page, a URL that points inside the network (loopback, private ranges,
the cloud metadata address) is refused when saved and again when sent, and a receiver's redirect is not followed."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse

from labeling.models import Role
from serving.models import ServingSettings
from serving.services.alerts import alert_settings_set, alert_webhook_send
from tests.factories import api_client, page_client
from tests.serving.test_alerts import receiver, report  # noqa: F401  (receiver is a fixture)

pytestmark = pytest.mark.django_db

INWARD = [
    "http://127.0.0.1:8000/admin/",
    "http://localhost/hook",
    "http://10.1.2.3/hook",
    "http://192.168.0.10:8080/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://0.0.0.0/hook",
]


@pytest.mark.parametrize("url", INWARD)
def test_a_manager_cannot_point_the_webhook_inward_on_the_page_or_the_api(project_factory, member_of, settings, url):
    settings.LABELLOOP_WEBHOOK_PRIVATE_ADDRESSES = False
    project = project_factory()
    manager = member_of(project, Role.MANAGER)
    alert_settings_set(project=project, webhook_url="https://93.184.215.14/hook")  # a public address, no DNS needed

    # When the manager saves an inward URL on the Monitoring page
    answer = page_client(manager).post(
        reverse("serving:alert_settings", args=[project.slug]),
        {"webhook_url": url, "drift_p_threshold": "0.01", "low_confidence_threshold": "0.5",
         "low_confidence_alert_share": "0.3"},
    )  # fmt: skip

    # Then it is refused with the reason, naming the setting that allows it, and nothing changes
    assert answer.status_code == 400
    assert "is not a public address" in answer.content.decode()
    assert "LABELLOOP_WEBHOOK_PRIVATE_ADDRESSES=on" in answer.content.decode()
    assert ServingSettings.objects.get(project=project).webhook_url == "https://93.184.215.14/hook"

    # ... and the same through the API
    answer = api_client(manager).patch(
        f"/api/projects/{project.slug}/monitoring/alert-settings/", {"webhook_url": url}, format="json"
    )
    assert answer.status_code == 400
    assert "is not a public address" in str(answer.json())
    assert ServingSettings.objects.get(project=project).webhook_url == "https://93.184.215.14/hook"


def test_an_inward_url_stored_before_is_not_posted_to(project_factory, receiver, settings):  # noqa: F811
    # Given a webhook on this machine, saved while private addresses were allowed
    server = receiver()
    project = project_factory()
    alert_settings_set(project=project, webhook_url=server.url)

    # When private addresses are no longer allowed and an alert is sent
    settings.LABELLOOP_WEBHOOK_PRIVATE_ADDRESSES = False
    result = alert_webhook_send(report_id=report(project, drifted=True).pk)

    # Then nothing reaches it, and the result says why
    assert "is not a public address" in result["error"]
    assert server.received == []


def test_a_receivers_redirect_is_not_followed(project_factory):
    # Given a receiver that answers the POST with a redirect (303: a client would follow it with a GET)
    hits: list[tuple[str, str]] = []

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self):
            hits.append(("POST", self.path))
            self.send_response(303)
            self.send_header("Location", "/inner")
            self.end_headers()

        def do_GET(self):
            hits.append(("GET", self.path))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        project = project_factory()
        alert_settings_set(project=project, webhook_url=f"http://127.0.0.1:{server.server_address[1]}/hook")

        # When an alert is sent
        result = alert_webhook_send(report_id=report(project, drifted=True).pk)
    finally:
        server.shutdown()
        server.server_close()

    # Then the redirect is the answer: one POST to the URL set, nothing on to where it pointed
    assert result == {"status": 303}
    assert hits == [("POST", "/hook")]


def test_the_admin_holds_the_webhook_url_to_the_same_rule(project_factory, admin_client, settings):
    # Given staff editing a project's serving settings in the Django admin, private addresses not allowed
    settings.LABELLOOP_WEBHOOK_PRIVATE_ADDRESSES = False
    row = alert_settings_set(project=project_factory(), webhook_url="https://93.184.215.14/hook")
    url = reverse("admin:serving_servingsettings_change", args=[row.pk])
    fields = {"project": row.project_id, "keep_images_days": row.keep_images_days, "drift_p_threshold": 0.01,
              "low_confidence_threshold": 0.5, "low_confidence_alert_share": 0.3,
              "webhook_secret": row.webhook_secret, "auto_queue_per_day": 0}  # fmt: skip

    # When they point the webhook at the cloud metadata address
    answer = admin_client.post(url, {**fields, "webhook_url": "http://169.254.169.254/latest/"})

    # Then the form says why and nothing is saved; a public address still saves
    assert answer.status_code == 200
    assert "is not a public address" in answer.content.decode()
    assert ServingSettings.objects.get(pk=row.pk).webhook_url == "https://93.184.215.14/hook"
    assert admin_client.post(url, {**fields, "webhook_url": "https://93.184.215.15/hook"}).status_code == 302
    assert ServingSettings.objects.get(pk=row.pk).webhook_url == "https://93.184.215.15/hook"


def test_a_name_that_answers_public_to_the_check_and_inward_to_the_connection_gets_nothing(
    project_factory,
    receiver,  # noqa: F811
    settings,
    monkeypatch,
):
    # Given a receiver on this machine and a host name whose DNS answers a public address to the first lookup and
    # this machine to every later one (DNS rebinding)
    import socket

    server = receiver()
    port = int(server.url.split(":")[2].split("/")[0])
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host, *args, **kwargs):
        if host != "hooks.rebind.example":
            return real_getaddrinfo(host, *args, **kwargs)
        lookups.append(host)
        address = "93.184.215.14" if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    project = project_factory()
    alert_settings_set(project=project, webhook_url=f"http://hooks.rebind.example:{port}/hook")  # (no lookup: allowed)
    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    settings.LABELLOOP_WEBHOOK_PRIVATE_ADDRESSES = False

    # When an alert is sent (the check before the POST sees the public address)
    result = alert_webhook_send(report_id=report(project, drifted=True).pk)

    # Then the connection checks the address it connects to, refuses this machine, and nothing reaches the receiver
    assert "hooks.rebind.example is not a public address (127.0.0.1)" in result["error"]
    assert server.received == []
    assert len(lookups) == 2  # the check's lookup and the connection's, not a third behind its back
