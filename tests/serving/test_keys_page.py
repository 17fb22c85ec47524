"""The keys page: a manager or ML engineer makes a key (shown once, stored as a hash), revokes it, and sets how
long the prediction log keeps images; other roles and other projects cannot."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.urls import reverse

from labeling.models import Role
from serving.models import ApiKey, ServingSettings
from tests.factories import page_client, png_bytes

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", [Role.ML_ENGINEER, Role.MANAGER])
def test_a_key_is_shown_once_stored_hashed_and_works_until_revoked(model_project, member_of, predict, role):
    # Given an ML engineer (or manager) on the keys page
    project, _, _ = model_project
    client = page_client(member_of(project, role))
    url = reverse("serving:keys", args=[project.slug])

    # When they make a key
    response = client.post(url, {"name": "mobile app"})

    # Then the page shows the token once; the database keeps only its sha256 and a visible prefix
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    token = re.search(r'id="new-key-token">([^<]+)<', response.content.decode())[1]
    key = ApiKey.objects.get(project=project)
    assert key.key_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token.startswith(key.prefix)
    assert len(key.prefix) < len(token) // 2
    assert token not in client.get(url).content.decode()
    assert f"{key.prefix}…" in client.get(url).content.decode()

    # And the token is accepted by the service (this project has no model yet: 409, not 401)
    assert predict(project.slug, token, images=[png_bytes(1)])[0] == 409

    # When they revoke it, it is refused at once
    response = client.post(reverse("serving:key_revoke", args=[project.slug, key.pk]))
    assert response.status_code == 302
    status, answer = predict(project.slug, token, images=[png_bytes(1)])
    assert (status, "revoked" in answer["error"]) == (401, True)
    assert "revoked" in client.get(url).content.decode()


def test_a_key_needs_a_name(model_project, member_of):
    project, _, _ = model_project
    client = page_client(member_of(project, Role.MANAGER))
    response = client.post(reverse("serving:keys", args=[project.slug]), {"name": "  "})
    assert response.status_code == 400
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize(("role", "status"), [(Role.ANNOTATOR, 403), (Role.REVIEWER, 403), (None, 404)])
def test_other_roles_and_non_members_cannot_see_or_make_keys(model_project, member_of, user_factory, role, status):
    project, _, _ = model_project
    client = page_client(member_of(project, role) if role else user_factory())
    url = reverse("serving:keys", args=[project.slug])
    assert client.get(url).status_code == status
    assert client.post(url, {"name": "x"}).status_code == status
    assert not ApiKey.objects.exists()


def test_a_key_of_another_project_cannot_be_revoked_from_this_one(model_project, member_of, project_factory, api_key):
    project, _, _ = model_project
    other = project_factory()
    key, _ = api_key(other)
    client = page_client(member_of(project, Role.MANAGER))
    response = client.post(reverse("serving:key_revoke", args=[project.slug, key.pk]))
    assert response.status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


def test_keep_images_days_is_a_project_setting(model_project, member_of):
    project, _, _ = model_project
    client = page_client(member_of(project, Role.MANAGER))
    url = reverse("serving:retention", args=[project.slug])
    assert client.post(url, {"keep_images_days": "-1"}).status_code == 400
    assert not ServingSettings.objects.exists()
    assert client.post(url, {"keep_images_days": "0"}).status_code == 302
    assert ServingSettings.objects.get(project=project).keep_images_days == 0
    assert 'value="0"' in client.get(reverse("serving:keys", args=[project.slug])).content.decode()
