"""config.settings.production: `check --deploy` is clean, and it refuses to start without its secrets."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = ("DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DJANGO_ALLOWED_HOSTS")

if (ROOT / ".env").exists():
    pytestmark = pytest.mark.skip(reason="a .env file at the repository root would supply the variables under test")


def production_env(tmp_path, **overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED and not k.startswith(("LABELLOOP_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        REDIS_URL="redis://127.0.0.1:6379/0",
        DJANGO_ALLOWED_HOSTS="labelloop.example.com",
    )
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_check_deploy_is_clean_with_the_required_variables_set(tmp_path):
    out = run(["manage.py", "check", "--deploy"], production_env(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    # Every deployment check (security.W001 ... W022, E100 ...) passes; other apps' warnings are theirs.
    assert "(security." not in out.stdout + out.stderr, out.stdout + out.stderr
    tagged = run(
        ["manage.py", "check", "--deploy", "--tag", "security", "--fail-level", "WARNING"], production_env(tmp_path)
    )
    assert tagged.returncode == 0, tagged.stdout + tagged.stderr
    assert "no issues" in tagged.stdout


@pytest.mark.parametrize("missing", REQUIRED)
def test_production_refuses_to_start_without(tmp_path, missing):
    out = run(["manage.py", "check"], production_env(tmp_path, **{missing: None}))
    assert out.returncode != 0
    assert "ImproperlyConfigured" in out.stderr
    assert missing in out.stderr


def test_production_refuses_the_placeholder_secret_key_from_env_example(tmp_path):
    out = run(["manage.py", "check"], production_env(tmp_path, DJANGO_SECRET_KEY="change-me-to-a-long-random-string"))
    assert out.returncode != 0
    assert "DJANGO_SECRET_KEY" in out.stderr


def test_s3_bucket_switches_media_to_private_s3_storage(tmp_path):
    code = (
        "import django; django.setup()\n"
        "from django.core.files.storage import storages; s, e = storages['default'], storages['exports']\n"
        "print(type(s).__name__, s.bucket_name, s.endpoint_url, s.default_acl, s.querystring_auth, s.location)\n"
        "print(type(e).__name__, e.bucket_name, e.location)\n"
    )
    env = production_env(tmp_path, LABELLOOP_S3_BUCKET="media-bucket", LABELLOOP_S3_ENDPOINT_URL="http://minio:9000")
    out = run(["-c", code], env)
    assert out.returncode == 0, out.stderr
    media, exports = out.stdout.splitlines()
    assert media.split() == ["S3Storage", "media-bucket", "http://minio:9000", "None", "True"]  # no prefix
    assert exports.split() == ["S3Storage", "media-bucket", "exports"]


# --- which settings a process gets when nobody names them ----------------------------------------------------------

SHOW_SETTINGS = "from django.conf import settings; print(settings.SETTINGS_MODULE, settings.DEBUG)"


@pytest.mark.parametrize(
    "entry",
    [
        ["manage.py", "shell", "-c", SHOW_SETTINGS],
        ["-c", f"import config.wsgi; {SHOW_SETTINGS}"],
        ["-c", f"import config.asgi; {SHOW_SETTINGS}"],
        ["-c", f"import config.celery_app; {SHOW_SETTINGS}"],
    ],
    ids=["manage.py", "wsgi", "asgi", "celery"],
)
def test_an_entry_point_started_without_a_settings_module_serves_production_never_debug(tmp_path, entry):
    # Given a deployment that forgot DJANGO_SETTINGS_MODULE and carries a leftover DJANGO_DEBUG=true
    env = production_env(tmp_path, DJANGO_SETTINGS_MODULE=None, DJANGO_DEBUG="true")
    # When gunicorn (config.wsgi), an ASGI server, celery or manage.py loads the project
    out = run(entry, env)
    # Then it runs the production settings, with DEBUG off
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["config.settings.production", "False"]


def test_an_entry_point_without_settings_or_secrets_refuses_to_start_and_says_how_to_develop(tmp_path):
    # Given a bare environment: no settings module, no secret key, no database (e.g. `gunicorn config.wsgi` on a box)
    env = production_env(tmp_path, DJANGO_SETTINGS_MODULE=None, DJANGO_SECRET_KEY=None, DATABASE_URL=None)
    out = run(["-c", "import config.wsgi"], env)
    # Then it refuses, naming the missing secret, instead of serving with the development key
    assert out.returncode != 0
    assert "ImproperlyConfigured" in out.stderr
    assert "DJANGO_SECRET_KEY" in out.stderr
    assert "DJANGO_SETTINGS_MODULE=config.settings.local" in out.stderr


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_database_url_in_production_is_a_clear_message_not_a_key_error(tmp_path, value):
    out = run(["manage.py", "check"], production_env(tmp_path, DATABASE_URL=value))
    assert out.returncode != 0
    assert "ImproperlyConfigured: Set the DATABASE_URL environment variable" in out.stderr
    assert "KeyError" not in out.stderr


def test_a_database_url_without_a_known_engine_is_refused_without_echoing_its_password(tmp_path):
    out = run(["manage.py", "check"], production_env(tmp_path, DATABASE_URL="postgress://labelloop:s3cr3t-pw@db/app"))
    assert out.returncode != 0
    assert "ImproperlyConfigured: DATABASE_URL does not name a database Django knows (scheme: postgress)" in out.stderr
    assert "KeyError" not in out.stderr
    assert "s3cr3t-pw" not in out.stdout + out.stderr


def test_make_demo_starts_everything_with_the_development_settings(tmp_path):
    """`make demo` runs migrate, demo_setup and honcho (Procfile.dev) under config.settings.local, since the entry
    points themselves now default to production. A stand-in venv records what each command was given."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for tool in ("python", "honcho"):
        script = venv / "bin" / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $1 $2 settings=$DJANGO_SETTINGS_MODULE"\n')
        script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "MAKEFLAGS", "MFLAGS")}
    out = subprocess.run(
        ["make", "-s", "-o", "venv", "-o", "redis", "demo", f"VENV={venv}"], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    ran = [line for line in out.stdout.splitlines() if "settings=" in line]
    assert ran == [
        "python manage.py migrate settings=config.settings.local",
        "python manage.py demo_setup settings=config.settings.local",
        "honcho -f Procfile.dev settings=config.settings.local",
    ]
