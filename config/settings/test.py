"""Test settings: fast hashing, isolated media, Celery eager unless a test runs a real worker."""

import tempfile
from pathlib import Path

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = Path(env("LABELLOOP_MEDIA_ROOT", default=tempfile.mkdtemp(prefix="labelloop-media-")))
LABELLOOP_DATA_ROOT = Path(env("LABELLOOP_DATA_ROOT", default=tempfile.mkdtemp(prefix="labelloop-data-")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
CELERY_TASK_EAGER_PROPAGATES = True

# A file, not :memory:, so that worker processes started by integration tests see the test database.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {
        "NAME": env(
            "LABELLOOP_TEST_SQLITE", default=str(Path(tempfile.mkdtemp(prefix="labelloop-db-")) / "test.sqlite3")
        )
    }

WHITENOISE_AUTOREFRESH = True
# The tests' webhook receivers run on 127.0.0.1; tests of the public-only rule turn it off.
LABELLOOP_WEBHOOK_PRIVATE_ADDRESSES = env.bool("LABELLOOP_WEBHOOK_PRIVATE_ADDRESSES", default=True)
