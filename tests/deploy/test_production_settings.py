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
