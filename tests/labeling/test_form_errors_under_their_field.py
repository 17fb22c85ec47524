"""Every form drawn with as_p (project creation, settings, alerts, exports, API keys) shows a field's errors under
that field: Django's own layout put them above the field's label, right under the field before, where they read as
that field's (a slug refusal under the name's input)."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import page_client

pytestmark = pytest.mark.django_db


def positions(html: str, *needles: str) -> list[int]:
    found = [html.find(needle) for needle in needles]
    assert all(at >= 0 for at in found), dict(zip(needles, found, strict=True))
    return found


def test_a_taken_slug_is_named_under_the_slug_field_not_under_the_name(
    django_user_model, allow_project_creation, project_factory
):
    # Given a project "birds" and a manager creating another
    project_factory(slug="birds", name="Birds")
    creator = allow_project_creation(django_user_model.objects.create_user("maria", password="pw"))
    client = Client()
    client.force_login(creator)

    # When the new project asks for the taken slug
    answer = client.post(
        reverse("labeling:project_create"),
        {"name": "Birds 2", "slug": "birds", "task_type": "single", "annotations_per_item": 1, "classes": "a"},
    )

    # Then the refusal comes after the slug's label and input and before the next field's label
    html = answer.content.decode()
    name_input, slug_label, slug_input, error = positions(
        html, 'name="name"', 'for="id_slug"', 'name="slug"', "A project with the slug &#x27;birds&#x27; exists"
    )
    next_label = html.find("<label for=", slug_input)
    assert name_input < slug_label < slug_input < error < next_label
    # ... in the error block that belongs to a field (styled to sit under it), with the field marked invalid
    assert re.search(r'<div class="field-errors"><ul class="errorlist"[^>]*><li>A project with the slug', html)
    assert re.search(r'<input[^>]*name="slug"[^>]*aria-invalid="true"', html)


def test_a_refused_alert_threshold_is_named_under_its_own_field(project_factory, member_of):
    # Given a manager on the Monitoring page's Alerts card
    project = project_factory()
    manager = member_of(project, "manager")

    # When a threshold out of range is saved
    answer = page_client(manager).post(
        reverse("serving:alert_settings", args=[project.slug]),
        {"webhook_url": "", "drift_p_threshold": "7", "low_confidence_threshold": "0.5",
         "low_confidence_alert_share": "0.3"},
    )  # fmt: skip

    # Then its error follows its own input, before the next field's label
    html = answer.content.decode()
    assert answer.status_code == 400
    (field_input,) = positions(html, 'name="drift_p_threshold"')
    error = html.find('<div class="field-errors">', field_input)
    next_label = html.find("<label for=", field_input)
    assert field_input < error < next_label, (field_input, error, next_label)
    assert html.find('<div class="field-errors">') == error  # the only error block, and it is this field's
