"""Production settings: secrets and service URLs come from the environment, with no defaults.

Fails at import (so web, workers and beat refuse to start) when DJANGO_SECRET_KEY, DATABASE_URL,
REDIS_URL or DJANGO_ALLOWED_HOSTS is missing, or the secret key is a placeholder.
Media and model artifacts go to S3/MinIO when LABELLOOP_S3_BUCKET is set (docs/configuration.md).
"""

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import database_from_url, env


def _required(name: str) -> str:
    value = env.str(name, default="").strip()
    if not value:
        raise ImproperlyConfigured(
            f"Set the {name} environment variable (see docs/configuration.md). These are the production settings, "
            "the default of manage.py, gunicorn (config.wsgi) and celery (config.celery_app); for development run "
            "`make demo` or set DJANGO_SETTINGS_MODULE=config.settings.local."
        )
    return value


DEBUG = False
SECRET_KEY = _required("DJANGO_SECRET_KEY")
if "change-me" in SECRET_KEY or len(SECRET_KEY) < 40:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is a placeholder or shorter than 40 characters; generate one with "
        "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
DATABASES = {"default": database_from_url(_required("DATABASE_URL"))}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A single-machine deployment may keep SQLite; it needs the same pragmas as development.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
        }
    )
REDIS_URL = _required("REDIS_URL")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=REDIS_URL)
# Loopback names let in-container health checks (compose, kubelet) reach /livez and /healthz.
ALLOWED_HOSTS = [*env.list("DJANGO_ALLOWED_HOSTS", default=[]), "localhost", "127.0.0.1"]
if not env.list("DJANGO_ALLOWED_HOSTS", default=[]):
    raise ImproperlyConfigured("Set DJANGO_ALLOWED_HOSTS to the host names the site is served under.")

# TLS is terminated by a proxy in front (nginx, a load balancer); its X-Forwarded-Proto is trusted only with
# LABELLOOP_BEHIND_PROXY=true (base.py), since without a proxy any client could send the header.
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# Health checks come over plain http from inside the host: never redirect them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^livez$"]
# Secure cookies are only sent over https; a plain-http trial on localhost needs DJANGO_SECURE_COOKIES=false.
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

if env("LABELLOOP_S3_BUCKET", default=""):
    # Media (originals, thumbnails) in `default`, dataset/model exports in `exports` (under exports/);
    # static files stay with whitenoise/nginx. Objects are private: the app streams them after its
    # permission check (labeling.views.media), and any URL the storage makes is signed and short-lived.
    _s3_prefix = env("LABELLOOP_S3_PREFIX", default="").strip("/")
    _s3_options = {
        "bucket_name": env("LABELLOOP_S3_BUCKET"),
        "endpoint_url": env("LABELLOOP_S3_ENDPOINT_URL", default=None) or None,
        "access_key": env("AWS_ACCESS_KEY_ID", default=None) or None,
        "secret_key": env("AWS_SECRET_ACCESS_KEY", default=None) or None,
        "region_name": env("AWS_S3_REGION_NAME", default=None) or None,
        "addressing_style": env("LABELLOOP_S3_ADDRESSING_STYLE", default=None) or None,
        "signature_version": "s3v4",
        "default_acl": None,
        "querystring_auth": True,
        "querystring_expire": env.int("LABELLOOP_S3_URL_EXPIRE_SECONDS", default=300),
        "file_overwrite": False,
    }
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {**_s3_options, "location": _s3_prefix},
    }
    STORAGES["exports"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {**_s3_options, "location": f"{_s3_prefix}/exports".lstrip("/")},
    }
