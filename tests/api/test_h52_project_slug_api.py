"""POST /api/projects/ refuses a typed slug that is not one as the new-project page and `manage.py project_create`
do: with the slug that would do, in the page's words (one check: the new-project form's clean_slug)."""

from __future__ import annotations

import pytest

from labeling.models import Project
from tests.factories import token_client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("typed", "would_do"),
    [("Bad Slug!", "bad-slug"), ("my slug", "my-slug"), ("ÉTÉ", "ete")],
)
def test_the_api_refuses_a_slug_that_is_not_one_with_one_that_would_do(
    user_factory, allow_project_creation, typed, would_do
):
    manager = allow_project_creation(user_factory())

    response = token_client(manager).post(
        "/api/projects/", {"name": "Bad one", "slug": typed, "classes": ["a", "b"]}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["slug"] == [
        f"A slug is letters a-z, digits, hyphens and underscores, with no spaces: {would_do!r} would do."
    ]
    assert not Project.objects.exists()


def test_the_api_still_creates_a_project_at_a_good_slug(user_factory, allow_project_creation):
    manager = allow_project_creation(user_factory())

    response = token_client(manager).post(
        "/api/projects/", {"name": "Good one", "slug": "good-one", "classes": ["a", "b"]}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["slug"] == "good-one"
