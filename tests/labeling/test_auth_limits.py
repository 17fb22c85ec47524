"""Password guessing on the sign-in pages (the site's and the admin's) is cut off after a few failures."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_counts(settings):
    settings.LABELLOOP_LOGIN_FAILURES = 5
    settings.LABELLOOP_LOGIN_WINDOW_SECONDS = 900
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def lena(django_user_model):
    return django_user_model.objects.create_user("lena", password="the-right-pw", is_staff=True)


def guess(client: Client, password: str, username: str = "lena", url: str = "/accounts/login/", **extra):
    return client.post(url, {"username": username, "password": password}, **extra)


def test_after_five_wrong_passwords_even_the_right_one_is_refused(lena):
    # given: someone guessing lena's password
    client = Client()
    assert [guess(client, f"guess-{i}").status_code for i in range(5)] == [200] * 5

    # when: the sixth try has the right password
    answer = guess(client, "the-right-pw")

    # then: refused without a check, the page says why, and nobody is signed in
    assert answer.status_code == 429
    assert "Too many failed sign-ins" in answer.content.decode()
    assert int(answer["Retry-After"]) == 900
    assert client.get(reverse("labeling:project_list")).status_code == 302


def test_other_users_and_other_addresses_are_not_locked_out(lena, django_user_model):
    django_user_model.objects.create_user("omar", password="omar-pw")
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for i in range(5):
        guess(attacker, f"guess-{i}")
    assert guess(attacker, "the-right-pw").status_code == 429

    assert guess(Client(REMOTE_ADDR="203.0.113.9"), "omar-pw", username="omar").status_code == 302
    assert guess(Client(REMOTE_ADDR="198.51.100.7"), "the-right-pw").status_code == 302


def test_a_successful_sign_in_clears_the_count(lena):
    client = Client()
    for i in range(4):
        guess(client, f"guess-{i}")
    assert guess(client, "the-right-pw").status_code == 302
    client.logout()
    assert [guess(client, f"again-{i}").status_code for i in range(5)] == [200] * 5
    assert guess(client, "the-right-pw").status_code == 429


def test_the_window_ends_the_lockout(lena, settings):
    settings.LABELLOOP_LOGIN_WINDOW_SECONDS = 1
    client = Client()
    for i in range(5):
        guess(client, f"guess-{i}")
    assert guess(client, "the-right-pw").status_code == 429
    time.sleep(1.2)
    assert guess(client, "the-right-pw").status_code == 302


def test_the_admin_sign_in_is_limited_too(lena):
    client = Client()
    url = reverse("admin:login")
    assert [guess(client, f"guess-{i}", url=url).status_code for i in range(5)] == [200] * 5
    answer = guess(client, "the-right-pw", url=url)
    assert answer.status_code == 429
    assert client.get("/admin/").status_code == 302
    # The site's page shares the count: the same guesser gets no fresh five there.
    assert guess(client, "the-right-pw").status_code == 429


def test_a_forged_forwarded_address_buys_no_fresh_count(lena, settings):
    settings.LABELLOOP_BEHIND_PROXY = False
    client = Client()
    for i in range(5):
        guess(client, f"guess-{i}", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}")
    assert guess(client, "the-right-pw", HTTP_X_FORWARDED_FOR="10.0.0.99").status_code == 429


def test_behind_a_proxy_the_address_it_appended_counts(lena, settings):
    settings.LABELLOOP_BEHIND_PROXY = True
    proxy = Client(REMOTE_ADDR="10.0.0.1")
    for i in range(5):
        guess(proxy, f"guess-{i}", HTTP_X_FORWARDED_FOR=f"1.2.3.{i}, 203.0.113.9")
    assert guess(proxy, "the-right-pw", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429
    assert guess(proxy, "the-right-pw", HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 302


def test_the_api_token_exchange_counts_the_same_failures_as_the_sign_in_page(lena, settings):
    """The token endpoint checked passwords with no lockout (10 a minute from one address, forever): locked out on the
    sign-in page, the right password still got a token there."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}), "token": "1000/minute"}}  # fmt: skip
    from rest_framework.test import APIClient

    from labeling.api.tokens import token_get

    # Given five wrong passwords on the sign-in page
    for i in range(5):
        guess(Client(), f"guess-{i}")

    # When the right one is sent to the API's token exchange from the same address: refused, and no token made
    api = APIClient()
    answer = api.post("/api/auth/token/", {"username": "lena", "password": "the-right-pw"}, format="json")
    assert answer.status_code == 429
    assert "Too many failed sign-ins" in answer.json()["detail"]
    assert int(answer["Retry-After"]) == 900
    assert token_get(user=lena) is None

    # And the other way round: five wrong passwords to the API lock the sign-in page for that username
    cache.clear()
    assert [api.post("/api/auth/token/", {"username": "lena", "password": f"g{i}"}, format="json").status_code
            for i in range(5)] == [400] * 5  # fmt: skip
    assert guess(Client(), "the-right-pw").status_code == 429

    # A right password before the limit clears the count, as on the page
    cache.clear()
    for i in range(4):
        api.post("/api/auth/token/", {"username": "lena", "password": f"g{i}"}, format="json")
    assert (
        api.post("/api/auth/token/", {"username": "lena", "password": "the-right-pw"}, format="json").status_code == 200
    )
    assert guess(Client(), "wrong").status_code == 200
    assert guess(Client(), "the-right-pw").status_code == 302
