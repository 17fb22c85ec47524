"""`manage.py api_token USER` prints a token that works on the API until the password changes."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_command_prints_a_working_token_that_ends_with_a_password_change(django_user_model):
    user = django_user_model.objects.create_user("mia", password="first-pw")
    out = io.StringIO()
    call_command("api_token", "mia", stdout=out)
    key = out.getvalue().strip()

    client = Client(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/projects/").status_code == 200

    user.set_password("second-pw")
    user.save()
    assert client.get("/api/projects/").status_code == 401


def test_the_command_refuses_an_unknown_user():
    with pytest.raises(CommandError, match="No active user"):
        call_command("api_token", "nobody")
