"""The keys page and the prediction service say the body limit in the same binary units (20 MiB, not "20 MB"), and
the keys page refuses a key name with a direction-control character, as the API and the command do."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from labeling.models import Role
from serving.models import ApiKey

pytestmark = pytest.mark.django_db


def test_the_keys_page_and_the_413_say_the_limit_in_mib(project, member_of, api_key, predict, settings):
    # Given the default limit, 20 MiB (20,971,520 bytes)
    assert settings.LABELLOOP_SERVING_MAX_BODY_BYTES == 20 * 1024 * 1024
    client = Client()
    client.force_login(member_of(project, Role.ML_ENGINEER))

    # Then the keys page states it in MiB
    page = client.get(reverse("serving:keys", args=[project.slug])).content.decode()
    assert "Requests are limited to" in page
    assert '<span id="max-body">20.0 MiB</span>' in page
    assert " MB." not in page

    # and a body over it is refused in the same words, the exact bytes beside them
    _, token = api_key(project)
    status, answer = predict(project.slug, token, body=b"{}", content_length=22_020_238)
    assert status == 413
    assert answer["error"] == (
        "request body is 21.0 MiB (22,020,238 bytes), over the 20.0 MiB (20,971,520 bytes) limit"
    )


def test_the_keys_page_refuses_a_key_name_with_a_direction_control(project, member_of):
    client = Client()
    client.force_login(member_of(project, Role.MANAGER))
    response = client.post(reverse("serving:keys", args=[project.slug]), {"name": "evil\u202egnp.exe"})
    assert response.status_code == 400
    assert "direction-control character (U+202E)" in response.content.decode()
    assert ApiKey.objects.count() == 0
