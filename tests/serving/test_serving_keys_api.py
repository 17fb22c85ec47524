"""/api/projects/<slug>/serving-keys/: a script makes, lists and revokes the prediction service's project API keys."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from labeling.models import Role
from serving.models import ApiKey
from tests.factories import png_bytes, token_client
from tests.schema_conformance import assert_matches_schema

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", [Role.ML_ENGINEER, Role.MANAGER])
def test_make_list_use_and_revoke_a_key(project, member_of, predict, role):
    # Given an ML engineer's (or manager's) API token
    client = token_client(member_of(project, role, "ml"))
    url = f"/api/projects/{project.slug}/serving-keys/"

    # When they make a key
    made = client.post(url, {"name": "mobile app"}, format="json")

    # Then the answer has the secret, once, and is not cached
    assert made.status_code == 201, made.content
    assert_matches_schema(made, "/api/projects/{slug}/serving-keys/", "POST")
    assert made["Cache-Control"] == "no-store"
    key = made.json()
    assert key["key"].startswith("llp_")
    assert key["key"].startswith(key["prefix"])
    assert (key["name"], key["active"], key["created_by"], key["revoked_at"]) == ("mobile app", True, "ml", None)

    # and the list shows it, without the secret
    listed = client.get(url)
    assert listed.status_code == 200
    assert_matches_schema(listed, "/api/projects/{slug}/serving-keys/")
    assert [(k["id"], k["prefix"]) for k in listed.json()] == [(key["id"], key["prefix"])]
    assert key["key"] not in listed.content.decode()

    # and the prediction service takes it: past the key check to "no model exported yet" (a wrong key is 401)
    assert predict(project.slug, key["key"], files=[("a.png", png_bytes(1))])[0] == 409
    assert predict(project.slug, key["key"] + "x", files=[("a.png", png_bytes(1))])[0] == 401

    # When they revoke it
    revoked = client.delete(f"{url}{key['id']}/")

    # Then it is listed as revoked, and the service refuses it
    assert revoked.status_code == 200, revoked.content
    assert_matches_schema(revoked, "/api/projects/{slug}/serving-keys/{key_id}/", "DELETE")
    assert (revoked.json()["active"], revoked.json()["revoked_by"]) == (False, "ml")
    assert client.get(url).json()[0]["active"] is False
    status, payload = predict(project.slug, key["key"], files=[("a.png", png_bytes(1))])
    assert (status, payload["error"]) == (401, "this API key was revoked")

    # and revoking again changes nothing
    again = client.delete(f"{url}{key['id']}/")
    assert again.status_code == 200
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_a_key_needs_a_name_of_at_most_100_characters(project, member_of, name):
    answer = token_client(member_of(project, Role.ML_ENGINEER)).post(
        f"/api/projects/{project.slug}/serving-keys/", {"name": name}, format="json"
    )
    assert answer.status_code == 400
    assert "name" in answer.json()
    assert ApiKey.objects.count() == 0


@pytest.mark.parametrize("role", [Role.ANNOTATOR, Role.REVIEWER])
def test_annotators_and_reviewers_get_403(project, member_of, api_key, role):
    key, _ = api_key(project)
    client = token_client(member_of(project, role))
    url = f"/api/projects/{project.slug}/serving-keys/"
    assert client.get(url).status_code == 403
    assert client.post(url, {"name": "mine"}, format="json").status_code == 403
    assert client.delete(f"{url}{key.pk}/").status_code == 403
    assert ApiKey.objects.get().revoked_at is None
    assert ApiKey.objects.count() == 1


def test_another_projects_keys_are_404_and_unchanged(project, project_factory, member_of, api_key):
    # Given a key of another project, and an ML engineer of this one
    other = project_factory()
    theirs, _ = api_key(other)
    client = token_client(member_of(project, Role.ML_ENGINEER))

    # Then neither their project's address nor their key's id through this project reaches it
    assert client.get(f"/api/projects/{other.slug}/serving-keys/").status_code == 404
    assert client.post(f"/api/projects/{other.slug}/serving-keys/", {"name": "x"}, format="json").status_code == 404
    assert client.delete(f"/api/projects/{other.slug}/serving-keys/{theirs.pk}/").status_code == 404
    assert client.delete(f"/api/projects/{project.slug}/serving-keys/{theirs.pk}/").status_code == 404
    assert client.delete(f"/api/projects/{project.slug}/serving-keys/99999999999999999999/").status_code == 404
    assert client.get(f"/api/projects/{project.slug}/serving-keys/").json() == []
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert ApiKey.objects.count() == 1
    assert APIClient().get(f"/api/projects/{project.slug}/serving-keys/").status_code == 401


@pytest.mark.parametrize("control", ["\u202e", "\u202a", "\u2066", "\u2069"])
def test_a_key_name_with_a_direction_control_is_refused_as_project_names_are(project, member_of, control):
    # When an ML engineer names a key with a right-to-left override (it would show "exe.txt" for "txt.exe")
    answer = token_client(member_of(project, Role.ML_ENGINEER)).post(
        f"/api/projects/{project.slug}/serving-keys/", {"name": f"evil{control}gnp.exe"}, format="json"
    )

    # Then it is refused in the words a project name is refused in, naming the character; no key is made
    assert answer.status_code == 400, answer.content
    message = " ".join(answer.json()["name"])
    assert f"direction-control character (U+{ord(control):04X})" in message
    assert "remove it" in message
    assert ApiKey.objects.count() == 0


def test_a_missing_key_is_404_in_the_products_words(project, project_factory, member_of, api_key):
    theirs, _ = api_key(project_factory())
    client = token_client(member_of(project, Role.ML_ENGINEER))
    for key_id in (424242, theirs.pk, 99999999999999999999):
        answer = client.delete(f"/api/projects/{project.slug}/serving-keys/{key_id}/")
        assert answer.status_code == 404
        assert answer.json() == {"detail": "No such serving key in this project."}
