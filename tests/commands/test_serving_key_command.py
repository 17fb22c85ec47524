"""`manage.py serving_key create|list|revoke`: an operator makes a prediction key from the shell (the secret printed
once), lists and revokes it; the prediction service takes the key until it is revoked."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from serving.models import ApiKey
from tests.factories import png_bytes
from tests.serving import conftest as serving_fixtures

pytestmark = pytest.mark.django_db

# The serving tests' fixtures: a key made by an ML engineer, and the prediction service called in process.
api_key = serving_fixtures.api_key
predict = serving_fixtures.predict


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("serving_key", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_prints_the_secret_once_and_the_service_takes_it_until_revoked(project, user_factory, predict):
    user_factory(username="ops")

    # When the operator makes a key
    out, err = run("create", project.slug, "--name", "batch job", "--user", "ops")

    # Then stdout is the secret alone (for a script), stderr says it is shown once
    token = out.strip()
    assert token.startswith("llp_")
    assert "not shown again" in err
    key = ApiKey.objects.get()
    assert (key.name, key.created_by.username, key.prefix) == ("batch job", "ops", token[:12])
    assert predict(project.slug, token, files=[("a.png", png_bytes(1))])[0] == 409  # key accepted; no model yet

    # and the list shows it without the secret
    listed, _ = run("list", project.slug)
    assert f"{key.pk}\t{key.prefix}…\tbatch job\tactive" in listed
    assert token not in listed

    # When it is revoked
    out, _ = run("revoke", project.slug, str(key.pk), "--user", "ops")

    # Then the service refuses it, and the list says so
    assert "revoked" in out
    status, payload = predict(project.slug, token, files=[("a.png", png_bytes(1))])
    assert (status, payload["error"]) == (401, "this API key was revoked")
    assert "\trevoked " in run("list", project.slug)[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["create", "no-such", "--name", "x"], "No project with slug 'no-such'"),
        (["create", "{slug}", "--name", "   "], "Give the key a name"),
        (["create", "{slug}", "--name", "x" * 101], "at most 100 characters"),
        (["create", "{slug}", "--name", "x", "--user", "ghost"], "No user 'ghost'"),
        (["create", "{slug}", "--name", "evil\u202egnp.exe"], r"direction-control character \(U\+202E\)"),
        (["revoke", "{slug}", "424242"], "No key 424242 in project"),
        (["revoke", "{slug}", "99999999999999999999"], "No key 99999999999999999999"),
    ],
)
def test_bad_input_exits_1_and_changes_nothing(project, args, says):
    with pytest.raises(CommandError, match=says):
        run(*[a.format(slug=project.slug) for a in args])
    assert ApiKey.objects.count() == 0


def test_a_key_of_another_project_cannot_be_revoked_through_this_one(project, project_factory, api_key):
    theirs, _ = api_key(project_factory(slug="other"))
    with pytest.raises(CommandError, match="No key"):
        run("revoke", project.slug, str(theirs.pk))
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert run("list", project.slug)[0] == ""
