"""The settings page of a project kept on hub weights while LABELLOOP_MODEL_HUB is off says, on the weights menu's
hub option, what happens: no training run is queued (Train now, the API and manage.py train refuse it; the scheduler
holds it), not that training fails."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse

from labeling.models import Role
from tests.factories import page_client

pytestmark = pytest.mark.django_db


def test_the_hub_option_of_a_project_kept_on_hub_says_no_run_is_queued(project_factory, member_of):
    # Given a project set to "hub" before the hub was turned off (the default), and its manager
    project = project_factory(backbone_weights="hub")
    manager = page_client(member_of(project, Role.MANAGER))

    # When the manager opens its settings page
    html = unescape(manager.get(reverse("labeling:project_settings", args=[project.slug])).content.decode())

    # Then the weights menu's hub option, selected, says no run is queued while the hub is off
    select = re.search(r'<select name="backbone_weights".*?</select>', html, flags=re.S).group(0)
    option = re.search(r'<option value="hub"[^>]*>([^<]*)</option>', select)
    assert "selected" in option.group(0)
    assert option.group(1) == (
        "From the model hub (current setting; no training run is queued while LABELLOOP_MODEL_HUB is off)"
    )
    assert "training fails" not in select
