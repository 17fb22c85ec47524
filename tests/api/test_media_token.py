"""A script signed in with an API token can fetch the images the API points it to (it got the sign-in page)."""

from __future__ import annotations

import pytest
from django.test import Client

from labeling.api.tokens import token_replace
from labeling.models import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def script(project_factory, item_factory, label_class_factory, member_of):
    project = project_factory(slug="birds", holdout_fraction=0.0)
    label_class_factory(project=project, name="cat")
    item = item_factory(project=project)
    annotator = member_of(project, Role.ANNOTATOR, "ann")
    return {"project": project, "item": item, "user": annotator, "key": token_replace(user=annotator).key}


def get(url: str, key: str | None = None):
    return Client().get(url, **({"HTTP_AUTHORIZATION": f"Token {key}"} if key else {}))


def test_the_image_urls_the_queue_api_gives_open_with_the_same_token(script):
    served = get("/api/projects/birds/next/", script["key"]).json()["item"]
    assert served["id"] == script["item"].pk
    with script["item"].file.open("rb") as fh:
        original = fh.read()
    answer = get(served["original_url"], script["key"])
    assert (answer.status_code, answer["Content-Type"], answer.content) == (200, "image/png", original)
    thumb = get(served["thumb_url"], script["key"])
    assert thumb.status_code == 200
    assert thumb.content
    assert "sessionid" not in answer.cookies  # the token signs in this request only


def test_a_wrong_or_outdated_token_is_a_401_not_the_sign_in_page(script):
    url = get("/api/projects/birds/next/", script["key"]).json()["item"]["original_url"]
    wrong = get(url, "0" * 40)
    assert wrong.status_code == 401
    assert "password changed" in wrong.json()["detail"]
    script["user"].set_password("another one")
    script["user"].save()
    assert get(url, script["key"]).status_code == 401


def test_a_token_opens_only_its_own_projects_images(script, project_factory, item_factory, member_of):
    other = project_factory(slug="fish")
    theirs = item_factory(project=other)
    outsider = token_replace(user=member_of(other, Role.MANAGER, "fishmonger")).key
    url = get("/api/projects/birds/next/", script["key"]).json()["item"]["original_url"]
    assert get(url, outsider).status_code == 404
    assert get(f"/p/birds/media/{theirs.pk}/original/", script["key"]).status_code == 404


def test_without_a_token_the_page_rule_is_unchanged(script):
    answer = get(f"/p/birds/media/{script['item'].pk}/original/")
    assert answer.status_code == 302
    assert "/accounts/login/" in answer["Location"]
