"""A 404 under /api/ is JSON, as DRF's own are, also for a path no API view matches (a negative model number, an
unknown endpoint); pages outside /api/ keep the HTML page."""

from __future__ import annotations

import pytest
from django.test import Client

from labeling.models import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_of_digits(project_factory, member_of) -> Client:
    project = project_factory(slug="digits", name="Digits")
    client = Client()
    client.force_login(member_of(project, Role.MANAGER))
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/api/projects/digits/models/-1/",  # no URL pattern takes a negative number
        "/api/nope/",
        "/api/nope",
        "/api",
    ],
)
def test_an_api_404_is_json(client_of_digits, path):
    response = client_of_digits.get(path, HTTP_ACCEPT="application/json")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"detail": "Not found."}


def test_it_has_the_shape_of_an_api_views_own_404(client_of_digits):
    own = client_of_digits.get("/api/projects/digits/models/99/")  # the view's lookup finds no version 99
    unmatched = client_of_digits.get("/api/projects/digits/models/-1/")

    assert own.status_code == unmatched.status_code == 404
    assert own["Content-Type"] == unmatched["Content-Type"]
    assert list(own.json()) == list(unmatched.json()) == ["detail"]


def test_an_anonymous_api_404_is_json_too(client):
    response = client.get("/api/nope/")

    assert (response.status_code, response.json()) == (404, {"detail": "Not found."})


@pytest.mark.parametrize("path", ["/p/nope/", "/nope/", "/apis/"])
def test_a_page_404_stays_the_html_page(client_of_digits, path):
    response = client_of_digits.get(path)

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert "Page not found" in response.content.decode()
