"""The alert webhook (URL, secret) and the alert thresholds are set by a manager on the Monitoring page's Alerts
card: before, only the Django admin could set them, which managers cannot open (and `make demo` has no staff
account), and no page said so."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from labeling.models import Role
from serving.models import ServingSettings
from tests.factories import page_client

pytestmark = pytest.mark.django_db

GOOD = {
    "webhook_url": "https://hooks.example.org/labelloop",
    "drift_p_threshold": "0.05",
    "low_confidence_threshold": "0.6",
    "low_confidence_alert_share": "0.2",
}


def _stored(project) -> tuple:
    row = ServingSettings.objects.filter(project=project).first()
    if row is None:
        return None
    return (row.webhook_url, row.drift_p_threshold, row.low_confidence_threshold, row.low_confidence_alert_share,
            row.webhook_secret)  # fmt: skip


def test_a_manager_saves_the_webhook_url_and_thresholds_on_the_monitoring_page(project_factory, member_of):
    project = project_factory()
    manager = page_client(member_of(project, Role.MANAGER))
    page = reverse("serving:monitoring", args=[project.slug])

    # Given the Monitoring page, the manager finds an Alerts card with a webhook URL field
    html = manager.get(page).content.decode()
    assert 'id="alerts"' in html
    assert "Webhook URL" in html

    # When they save a URL and thresholds
    answer = manager.post(reverse("serving:alert_settings", args=[project.slug]), GOOD, follow=True)

    # Then they are stored and the page says so, showing the saved values
    assert answer.status_code == 200
    assert _stored(project)[:4] == ("https://hooks.example.org/labelloop", 0.05, 0.6, 0.2)
    html = answer.content.decode()
    assert "Alert settings saved. Webhook: https://hooks.example.org/labelloop." in html
    assert 'value="https://hooks.example.org/labelloop"' in html
    assert 'value="0.05"' in html
    # The secret is not on the page, only its last four characters
    secret = _stored(project)[4]
    assert secret not in html
    assert f"…{secret[-4:]}" in html


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"webhook_url": "ftp://example.org/hook"}, "The webhook URL must be a full address starting with http://"),
        ({"webhook_url": "hooks.example.org/x"}, "The webhook URL must be a full address starting with http://"),
        ({"drift_p_threshold": "0.9"}, "Ensure this value is less than or equal to 0.5."),
        ({"low_confidence_threshold": "-0.1"}, "Ensure this value is greater than or equal to 0.0."),
        ({"low_confidence_alert_share": "lots"}, "Enter a number."),
    ],
)
def test_bad_values_are_refused_with_the_reason_and_change_nothing(project_factory, member_of, bad, message):
    project = project_factory()
    manager = page_client(member_of(project, Role.MANAGER))
    url = reverse("serving:alert_settings", args=[project.slug])
    assert manager.post(url, GOOD).status_code == 302
    before = _stored(project)

    answer = manager.post(url, {**GOOD, "webhook_url": "https://other.example.org/", **bad})

    assert answer.status_code == 400
    assert message in answer.content.decode()
    assert (
        "Alert settings not saved: fix the values marked in the Alerts card. Nothing changed."
        in answer.content.decode()
    )
    assert _stored(project) == before


def test_a_new_secret_is_shown_once_and_signs_from_then_on(project_factory, member_of):
    project = project_factory()
    manager = page_client(member_of(project, Role.MANAGER))
    answer = manager.post(reverse("serving:webhook_secret", args=[project.slug]))
    assert answer.status_code == 200
    assert answer["Cache-Control"] == "no-store"
    shown = re.search(r'id="new-secret-value">([0-9a-f]+)<', answer.content.decode())[1]
    assert shown == _stored(project)[4]
    # Shown once: the page afterwards names only its last four characters
    html = manager.get(reverse("serving:monitoring", args=[project.slug])).content.decode()
    assert shown not in html
    assert f"…{shown[-4:]}" in html


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.ML_ENGINEER, Role.ANNOTATOR])
def test_other_roles_cannot_save_and_see_no_form(project_factory, member_of, role):
    project = project_factory()
    page_client(member_of(project, Role.MANAGER)).post(reverse("serving:alert_settings", args=[project.slug]), GOOD)
    before = _stored(project)
    client = page_client(member_of(project, role))

    assert (
        client.post(reverse("serving:alert_settings", args=[project.slug]), {**GOOD, "webhook_url": ""}).status_code
        == 403
    )
    assert client.post(reverse("serving:webhook_secret", args=[project.slug])).status_code == 403
    assert _stored(project) == before

    page = client.get(reverse("serving:monitoring", args=[project.slug]))
    if role == Role.ANNOTATOR:
        assert page.status_code == 403  # annotators do not see monitoring at all
        return
    html = page.content.decode()
    assert 'id="alerts-form"' not in html
    assert "new-secret-button" not in html
    # Read-only: the thresholds, and whether a webhook is set, never its address (it may hold a token)
    assert "<dd>0.05</dd>" in html
    assert "<dt>Webhook</dt><dd>set</dd>" in html
    assert "hooks.example.org" not in html
    assert "A manager of the project changes these here." in html


def test_the_api_sets_the_same_settings_for_managers_only(project_factory, member_of):
    from tests.factories import token_client

    project = project_factory()
    manager = token_client(member_of(project, Role.MANAGER))
    url = reverse("api-alert-settings", args=[project.slug])

    # A manager sets the URL and a threshold; the answer shows the stored values and the secret's end only
    answer = manager.patch(
        url, {"webhook_url": "https://hooks.example.org/x", "drift_p_threshold": 0.02}, format="json"
    )
    assert answer.status_code == 200, answer.content
    assert _stored(project)[:4] == ("https://hooks.example.org/x", 0.02, 0.5, 0.3)
    assert answer.json()["secret_hint"] == _stored(project)[4][-4:]
    assert "webhook_secret" not in answer.json()

    # Bad values: 400 with the reason, nothing changes
    before = _stored(project)
    bad = manager.patch(url, {"webhook_url": "ftp://example.org/", "drift_p_threshold": 0.03}, format="json")
    assert bad.status_code == 400
    assert "http:// or https://" in bad.json()["webhook_url"][0]
    assert manager.patch(url, {"low_confidence_alert_share": 1.5}, format="json").status_code == 400
    assert _stored(project) == before

    # A new secret is in that answer only, and it is the one that signs
    secret = manager.post(reverse("api-webhook-secret", args=[project.slug]))
    assert secret.status_code == 201
    assert secret.json()["webhook_secret"] == _stored(project)[4]

    # A reviewer or an ML engineer reads the thresholds (as the page shows them), not the webhook, and changes nothing
    for role in (Role.REVIEWER, Role.ML_ENGINEER):
        other = token_client(member_of(project, role))
        read = other.get(url)
        assert read.status_code == 200
        assert "webhook_url" not in read.json()
        assert other.patch(url, {"webhook_url": ""}, format="json").status_code == 403
        assert other.post(reverse("api-webhook-secret", args=[project.slug])).status_code == 403
    assert _stored(project)[0] == "https://hooks.example.org/x"
