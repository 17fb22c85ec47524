"""`manage.py api_token USER` prints the user's token and leaves it working; only `--new` replaces it, and says
that the old one stops working. A replaced token's 401 says it was replaced (tester h56 P3)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client

from labeling.management.commands.api_token import Command

pytestmark = pytest.mark.django_db


def _command(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("api_token", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue().strip()


def _token_from_the_api(username: str, password: str) -> str:
    answer = Client().post("/api/auth/token/", {"username": username, "password": password})
    assert answer.status_code == 200
    return answer.json()["token"]


def test_the_command_prints_the_token_a_script_already_uses_and_it_keeps_working(django_user_model):
    django_user_model.objects.create_user("ann2", password="Lab-pass-9911")
    script_key = _token_from_the_api("ann2", "Lab-pass-9911")

    printed, said = _command("ann2")

    assert printed == script_key
    assert "--new" in said
    assert Client(HTTP_AUTHORIZATION=f"Token {script_key}").get("/api/projects/").status_code == 200


def test_the_command_makes_a_token_for_a_user_who_has_none(django_user_model):
    django_user_model.objects.create_user("newcomer", password="Lab-pass-9911")

    printed, said = _command("newcomer")

    assert said == "Made an API token for newcomer (they had none that works)."
    assert Client(HTTP_AUTHORIZATION=f"Token {printed}").get("/api/projects/").status_code == 200
    assert _command("newcomer")[0] == printed  # asked again: the same token


def test_new_replaces_the_token_says_so_and_the_old_one_gets_a_401_naming_a_replacement(django_user_model):
    django_user_model.objects.create_user("ann1", password="Lab-pass-9911")
    old_key = _token_from_the_api("ann1", "Lab-pass-9911")

    printed, said = _command("ann1", "--new")

    assert printed != old_key
    assert said == "Replaced the API token of ann1: the old one stops working now."
    assert Client(HTTP_AUTHORIZATION=f"Token {printed}").get("/api/projects/").status_code == 200
    refused = Client(HTTP_AUTHORIZATION=f"Token {old_key}").get("/api/projects/")
    assert refused.status_code == 401
    assert "a newer token replaced it" in refused.json()["detail"]
    assert _token_from_the_api("ann1", "Lab-pass-9911") == printed  # the password exchange gives the new one


def test_the_help_says_the_token_is_kept_unless_new_is_given():
    text = " ".join(Command().create_parser("manage.py", "api_token").format_help().split())
    assert "the one they have" in text
    assert "--new" in text
