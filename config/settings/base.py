"""Settings shared by every environment; environment files override a few."""

import os
from pathlib import Path

import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from config.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.exists():
    environ.Env.read_env(str(env_file))

SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-insecure-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_htmx",
    "template_partials",
    "labeling",
    "training",
    "serving",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "config.middleware.NoStoreSignedInPagesMiddleware",
    "config.middleware.HtmxSignInRedirectMiddleware",
]

# Content-Security-Policy (django-csp), enforced in every settings module so that the browser suites run under it.
# Scripts only from our own files: templates carry no inline <script> or on*= handlers (static/js/ wires them),
# and htmx's indicator <style> is switched off in base.html (meta htmx-config). Style *attributes* stay allowed
# (style-src-attr): templates set per-row class colours and bar widths with them; they cannot run script or load
# from another origin, while <style> elements (selector tricks) are held to 'self'. docs/security.md has the why.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

# X-Forwarded-Proto is trusted only when a proxy in front says so (LABELLOOP_BEHIND_PROXY=true, and only the proxy
# can reach the app): otherwise any client could claim https. docker/entrypoint.sh makes gunicorn follow the same rule.
LABELLOOP_BEHIND_PROXY = env.bool("LABELLOOP_BEHIND_PROXY", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if LABELLOOP_BEHIND_PROXY else None

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "serving.selectors.alerts.alerts_context",  # drift / low-confidence banners on project pages
            ],
        },
    },
]

FORM_RENDERER = "config.forms.FormRenderer"  # as_p with each field's errors under the field, not above its label

WSGI_APPLICATION = "config.wsgi.application"

# SQLite is the embedded default: WAL and IMMEDIATE transactions so that claims
# serialize instead of failing with "database is locked".
(BASE_DIR / "var").mkdir(exist_ok=True)


def database_from_url(url: str) -> dict:
    """Django's DATABASES entry for a DATABASE_URL; a value that names no database engine is refused by name."""
    config = env.db_url_config(url)
    if not config.get("ENGINE") or "." not in config["ENGINE"]:
        scheme = url.split("://", 1)[0] if "://" in url else "none"  # never the rest: it may hold a password
        raise ImproperlyConfigured(
            f"DATABASE_URL does not name a database Django knows (scheme: {scheme}); expected e.g. "
            "postgres://user:password@host:5432/name or sqlite:////absolute/path.sqlite3 (see docs/configuration.md)."
        )
    return config


# An empty DATABASE_URL means "not set" here (the development default); production refuses it.
DATABASES = {
    "default": database_from_url(
        env.str("DATABASE_URL", default="").strip() or f"sqlite:///{BASE_DIR / 'var' / 'labelloop.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
        }
    )
# Persistent connections for both: on SQLite a new connection per request costs the pragmas above and,
# on close, a WAL checkpoint (about a third of a labeling step's CPU in bench/labeling_latency.py).
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Media never lives under a public URL: every file goes through labeling.views.media,
# which checks membership and then streams it (or hands it to nginx via X-Accel-Redirect).
MEDIA_ROOT = Path(env("LABELLOOP_MEDIA_ROOT", default=str(BASE_DIR / "var" / "media")))
MEDIA_URL = "/media-not-public/"
LABELLOOP_MEDIA_ACCEL_PREFIX = env("LABELLOOP_MEDIA_ACCEL_PREFIX", default="")
# Feature store (cached embeddings, checkpoints) for workers.
LABELLOOP_DATA_ROOT = Path(env("LABELLOOP_DATA_ROOT", default=str(BASE_DIR / "var" / "data")))

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

CSRF_FAILURE_VIEW = "labeling.views.auth.csrf_failure"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "labeling:project_list"
LOGOUT_REDIRECT_URL = "login"

# Import limits (see labeling/services/imports.py).
LABELLOOP_MAX_UPLOAD_BYTES = env.int("LABELLOOP_MAX_UPLOAD_BYTES", default=50 * 1024 * 1024)
LABELLOOP_MAX_IMAGE_PIXELS = env.int("LABELLOOP_MAX_IMAGE_PIXELS", default=40_000_000)
LABELLOOP_MAX_ZIP_BYTES = env.int("LABELLOOP_MAX_ZIP_BYTES", default=2 * 1024 * 1024 * 1024)
# A whole zip, checked before anything in it is inflated: declared uncompressed total and entry count.
LABELLOOP_MAX_ARCHIVE_BYTES = env.int("LABELLOOP_MAX_ARCHIVE_BYTES", default=4 * 1024 * 1024 * 1024)
LABELLOOP_MAX_ARCHIVE_ENTRIES = env.int("LABELLOOP_MAX_ARCHIVE_ENTRIES", default=100_000)
LABELLOOP_THUMBNAIL_SIZE = env.int("LABELLOOP_THUMBNAIL_SIZE", default=256)
# Server folders that import and batch inference may read: staff use all of them; other users only the folders
# staff grant to their project in the admin (empty: server folders are off).
LABELLOOP_IMPORT_ROOTS = env.list("LABELLOOP_IMPORT_ROOTS", default=[])
# Extra weight files a project may pick as its backbone weights (besides bundled / hub / none); nothing else.
LABELLOOP_BACKBONE_WEIGHTS = env.list("LABELLOOP_BACKBONE_WEIGHTS", default=[])
# Whether the training workers can download backbone weights from the model hub (weights "hub"). Off by default: the
# product runs offline, and the web process cannot tell whether a worker has internet, so the administrator says
# so. Off, the settings page, POST /api/projects/ and manage.py project_create refuse "hub" (a project already on it
# keeps it, with a warning). A misspelt value stops the process rather than quietly meaning off.
LABELLOOP_MODEL_HUB = env.str("LABELLOOP_MODEL_HUB", default="off").strip().lower()
if LABELLOOP_MODEL_HUB not in ("on", "off", "true", "false", "yes", "no", "1", "0"):
    raise ImproperlyConfigured(f"LABELLOOP_MODEL_HUB is on or off, not {env.str('LABELLOOP_MODEL_HUB')!r}")
LABELLOOP_MODEL_HUB = LABELLOOP_MODEL_HUB in ("on", "true", "yes", "1")
# Decoder threads per import (Pillow releases the GIL while decoding; threads work inside Celery workers).
LABELLOOP_IMPORT_THREADS = env.int("LABELLOOP_IMPORT_THREADS", default=min(4, os.cpu_count() or 1))
LABELLOOP_LEASE_SECONDS = env.int("LABELLOOP_LEASE_SECONDS", default=600)
LABELLOOP_UNDO_GRACE_SECONDS = env.int("LABELLOOP_UNDO_GRACE_SECONDS", default=300)
DATA_UPLOAD_MAX_NUMBER_FILES = env.int("DJANGO_DATA_UPLOAD_MAX_NUMBER_FILES", default=5000)
# A request body other than multipart files (JSON, form fields): Django's default, 2.5 MiB. Past it the API answers
# 413 in JSON naming the limit (labeling/api/errors.py), the pages Django's 400.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # DRF's token check, plus: a token ends when its user's password changes (labeling/api/tokens.py).
        "labeling.api.tokens.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "labeling.api.base.NestedNameAutoSchema",
    # DRF's, plus JSON answers for JSON nested too deep (400) and bodies over the upload limits (413 / 400).
    "EXCEPTION_HANDLER": "labeling.api.errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    # Making tokens (POST /api/auth/token/ per client address, POST /api/me/token/ per user): DRF's "n/second",
    # "n/minute", "n/hour" or "n/day". Counted in Django's cache: per process unless CACHES is shared (Redis).
    "DEFAULT_THROTTLE_RATES": {"token": env("LABELLOOP_TOKEN_RATE", default="10/minute")},
    # The client address for throttles: X-Forwarded-For only from a proxy we were told is there, never from anyone.
    "NUM_PROXIES": 1 if LABELLOOP_BEHIND_PROXY else 0,
}
# Sign-in page: after this many failed attempts for one username from one address within the window, further
# attempts are refused (HTTP 429) until the window has passed since the first failure (labeling/views/auth.py).
LABELLOOP_LOGIN_FAILURES = env.int("LABELLOOP_LOGIN_FAILURES", default=5)
LABELLOOP_LOGIN_WINDOW_SECONDS = env.int("LABELLOOP_LOGIN_WINDOW_SECONDS", default=900)
SPECTACULAR_SETTINGS = {
    "TITLE": "Labelloop API",
    "DESCRIPTION": "Image labeling with the model in the loop.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Name the strategy enum after what it is, not after the model field ("AlStrategyEnum"); a job's status appears
    # in two components (a job, a job just started), which would otherwise get a hashed name.
    "ENUM_NAME_OVERRIDES": {
        "StrategyEnum": "labeling.constants.STRATEGY_CHOICES",
        "JobStatusEnum": "labeling.models.JobStatus",
    },
}

# Celery: three queues (DESIGN.md), each with its own workers, so that short work never waits behind long work.
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=REDIS_URL)
# Each app keeps every task in its tasks.py, which autodiscover_tasks() finds (config/celery_app.py); tasks are
# sent by name (labeling/services/dispatch.py). Only modules that are not an app's tasks.py are listed here.
CELERY_IMPORTS = ("config.worker",)  # worker heartbeats for /healthz, one GPU per pool process
# - housekeeping: the scheduler tick (which also reaps runs whose worker died and re-sends lost ones): seconds
#   each, every few seconds; never behind an import or a training run.
# - default: imports, exports, batch inference and the quality jobs (label-error search, holdout predictions,
#   review-feed refresh, the follow-ups of a new model version).
# - gpu: training runs and scoring (one process, or shards and their finalize step).
# Every task is routed here by name (tests/labeling/test_queues.py checks that none is left to the default
# queue by accident); Procfile.dev (`make demo`) and docker/compose.yml run a worker for each queue, and
# labeling/selectors/jobs.py maps each kind of Job to the same queues for "Queued behind ..." on job pages.
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = (Queue("housekeeping"), Queue("default"), Queue("gpu"))
CELERY_TASK_ROUTES = {
    "training.tasks.training_scheduler_tick_task": {"queue": "housekeeping"},
    "labeling.tasks.import_run_task": {"queue": "default"},
    "labeling.tasks.dataset_export_task": {"queue": "default"},
    "training.tasks.model_export_task": {"queue": "default"},
    "training.tasks.inference_task": {"queue": "default"},
    "labeling.tasks.export_files_expire_task": {"queue": "housekeeping"},
    "labeling.tasks.staging_dirs_sweep_task": {"queue": "housekeeping"},
    "training.tasks.model_version_activated_task": {"queue": "default"},
    "training.tasks.label_errors_find_task": {"queue": "default"},
    "training.tasks.holdout_predictions_task": {"queue": "default"},
    "training.tasks.training_run_execute_task": {"queue": "gpu"},
    "training.tasks.training_score_task": {"queue": "gpu"},
    "training.tasks.score_shard_task": {"queue": "gpu"},
    "training.tasks.score_finalize_task": {"queue": "gpu"},
    "training.tasks.explanation_compute_task": {"queue": "gpu"},
    "serving.tasks.prediction_log_prune_task": {"queue": "housekeeping"},
    "serving.tasks.predictions_auto_queue_task": {"queue": "housekeeping"},
    "serving.tasks.drift_check_task": {"queue": "default"},
    "serving.tasks.alert_webhook_send_task": {"queue": "default"},
}
CELERY_TASK_ACKS_LATE = True
# Progress and outcomes live in the database (Job, TrainingRun); only chord headers need the result store.
# Storing results by default would make every send touch Redis's result store, which blocks when Redis is down.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=6 * 3600)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=6 * 3600 + 300)
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Labeling must never wait on the broker: fail fast when Redis is down.
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
LABELLOOP_SCHEDULER_INTERVAL = env.float("LABELLOOP_SCHEDULER_INTERVAL", default=5.0)
# Exports, model exports and batch inference (labeling/services/job_limits.py, labeling/services/exports/):
# jobs queued or running at once per user and per project (0 = no limit; identical requests share one job),
# and how long their files are kept (0 = forever); the clean-up runs every LABELLOOP_EXPORT_EXPIRE_INTERVAL s.
LABELLOOP_MAX_QUEUED_JOBS_PER_USER = env.int("LABELLOOP_MAX_QUEUED_JOBS_PER_USER", default=5)
LABELLOOP_MAX_QUEUED_JOBS_PER_PROJECT = env.int("LABELLOOP_MAX_QUEUED_JOBS_PER_PROJECT", default=10)
LABELLOOP_EXPORT_TTL_HOURS = env.float("LABELLOOP_EXPORT_TTL_HOURS", default=72.0)
LABELLOOP_EXPORT_EXPIRE_INTERVAL = env.float("LABELLOOP_EXPORT_EXPIRE_INTERVAL", default=600.0)
# Browser uploads started and never submitted are deleted after this many hours (hourly sweep; 0 = never).
LABELLOOP_STAGING_TTL_HOURS = env.float("LABELLOOP_STAGING_TTL_HOURS", default=24.0)
# Test hook only: seconds a dataset export sleeps after it starts (keeps other exports queued behind it).
LABELLOOP_DEBUG_EXPORT_SLEEP = env.float("LABELLOOP_DEBUG_EXPORT_SLEEP", default=0.0)
CELERY_BEAT_SCHEDULE = {
    "training-scheduler-tick": {
        "task": "training.tasks.training_scheduler_tick_task",
        "schedule": LABELLOOP_SCHEDULER_INTERVAL,
        # A tick nobody ran in time is dropped rather than piled up behind a busy worker.
        "options": {"queue": "housekeeping", "expires": max(2 * LABELLOOP_SCHEDULER_INTERVAL, 10.0)},
    },
    "export-files-expire": {
        "task": "labeling.tasks.export_files_expire_task",
        "schedule": LABELLOOP_EXPORT_EXPIRE_INTERVAL,
        "options": {"queue": "housekeeping", "expires": LABELLOOP_EXPORT_EXPIRE_INTERVAL},
    },
    "staging-dirs-sweep": {
        "task": "labeling.tasks.staging_dirs_sweep_task",
        "schedule": 3600.0,
        "options": {"queue": "housekeeping", "expires": 3600.0},
    },
    "prediction-log-prune": {
        "task": "serving.tasks.prediction_log_prune_task",
        "schedule": 3600.0,
        "options": {"queue": "housekeeping", "expires": 3600.0},
    },
    # The N least-confident production images of the day into the labeling queue, where a project asks for it
    # (ServingSettings.auto_queue_per_day); hourly, but the task sends at most once per UTC day per project.
    "predictions-auto-queue": {
        "task": "serving.tasks.predictions_auto_queue_task",
        "schedule": 3600.0,
        "options": {"queue": "housekeeping", "expires": 3600.0},
    },
    # Drift of production inputs per project (serving/services/drift.py): CPU work, so the default queue.
    "drift-check": {
        "task": "serving.tasks.drift_check_task",
        "schedule": 3600.0,
        "options": {"queue": "default", "expires": 3600.0},
    },
}
# The prediction service (serving/, `manage.py serve_predictions`): its own process, onnxruntime, no torch.
# Seconds between checks for a newly active model version; the largest request body (bytes) and images per
# request; prediction-log rows buffered before a write (a background thread also flushes every FLUSH_SECONDS);
# onnxruntime threads per process (0 = its default).
# The prediction service's address as clients reach it: the keys page gives it, and the web app's JSON 404 for
# /v1/... names it. Empty: the page's host on port 8001, where `make demo` runs the service.
LABELLOOP_PREDICTION_URL = env.str("LABELLOOP_PREDICTION_URL", default="")
# Alert webhooks go to public addresses only (a manager sets the URL; a worker POSTs to it): a host that resolves to a
# private, loopback, link-local or reserved address is refused when saved and when sent, and redirects are not
# followed. `on` where receivers sit on the internal network (make demo and the tests turn it on).
LABELLOOP_WEBHOOK_PRIVATE_ADDRESSES = env.bool("LABELLOOP_WEBHOOK_PRIVATE_ADDRESSES", default=False)
LABELLOOP_SERVING_RELOAD_SECONDS = env.float("LABELLOOP_SERVING_RELOAD_SECONDS", default=10.0)
LABELLOOP_SERVING_MAX_BODY_BYTES = env.int("LABELLOOP_SERVING_MAX_BODY_BYTES", default=20 * 1024 * 1024)
LABELLOOP_SERVING_MAX_BATCH = env.int("LABELLOOP_SERVING_MAX_BATCH", default=64)
LABELLOOP_SERVING_LOG_BATCH = env.int("LABELLOOP_SERVING_LOG_BATCH", default=50)
LABELLOOP_SERVING_LOG_FLUSH_SECONDS = env.float("LABELLOOP_SERVING_LOG_FLUSH_SECONDS", default=1.0)
LABELLOOP_SERVING_ORT_THREADS = env.int("LABELLOOP_SERVING_ORT_THREADS", default=0)
# What the prediction service runs: "fp32" (model.onnx, the platform's probabilities) or "int8" (the export's INT8
# file that runs right on the serving CPU: model.int8.vnni.onnx on x86 with VNNI and ARM, else model.int8.onnx;
# about 2.4x FP32's speed, top-1 agreement 0.955 on CIFAR-10; bench/compression.py). Drift checks embed with it too.
LABELLOOP_SERVING_PRECISION = env.str("LABELLOOP_SERVING_PRECISION", default="fp32")
if LABELLOOP_SERVING_PRECISION not in ("fp32", "int8"):
    raise ImproperlyConfigured(f"LABELLOOP_SERVING_PRECISION is fp32 or int8, not {LABELLOOP_SERVING_PRECISION!r}")
# A newly active version with no ONNX export: the service asks a worker to export it (and serves the version it has).
LABELLOOP_SERVING_AUTO_EXPORT = env.bool("LABELLOOP_SERVING_AUTO_EXPORT", default=True)
# Prediction-log rows older than this many days are deleted by the hourly prune (0 = keep forever); each project's
# images follow its own ServingSettings.keep_images_days (default 30, 0 = metadata only).
LABELLOOP_PREDICTION_LOG_KEEP_DAYS = env.int("LABELLOOP_PREDICTION_LOG_KEEP_DAYS", default=365)
# Training runs (see training/services/): lease, re-send and back-off, all in seconds.
LABELLOOP_RUN_HEARTBEAT_INTERVAL = env.float("LABELLOOP_RUN_HEARTBEAT_INTERVAL", default=5.0)
LABELLOOP_RUN_HEARTBEAT_TIMEOUT = env.float("LABELLOOP_RUN_HEARTBEAT_TIMEOUT", default=60.0)
LABELLOOP_RUN_RESEND_AFTER = env.float("LABELLOOP_RUN_RESEND_AFTER", default=120.0)
LABELLOOP_RUN_RETRY_AFTER = env.float("LABELLOOP_RUN_RETRY_AFTER", default=30.0)
LABELLOOP_RUN_SOFT_TIME_LIMIT = env.int("LABELLOOP_RUN_SOFT_TIME_LIMIT", default=6 * 3600)
LABELLOOP_TRAIN_DEVICE = env("LABELLOOP_TRAIN_DEVICE", default="")  # "" = cuda when available, else cpu
# JSON object of RoundConfig overrides (e.g. {"epochs": 3}); tests and benches use it for tiny rounds.
LABELLOOP_ROUND_OVERRIDES = env.json("LABELLOOP_ROUND_OVERRIDES", default={})
# Test hook only: seconds to sleep in every progress callback of a run (makes a run slow enough to kill).
LABELLOOP_DEBUG_PROGRESS_SLEEP = env.float("LABELLOOP_DEBUG_PROGRESS_SLEEP", default=0.0)
# Re-scoring spread over workers (training/services/sharding.py): items per shard task, 0 = never shard;
# a lost or failed shard is retried this many times.
LABELLOOP_SCORE_SHARD_SIZE = env.int("LABELLOOP_SCORE_SHARD_SIZE", default=2000)
LABELLOOP_SCORE_SHARD_RETRIES = env.int("LABELLOOP_SCORE_SHARD_RETRIES", default=3)
# Test hook only: shard indexes (comma-separated) whose first attempt raises, to exercise the retry.
LABELLOOP_DEBUG_SCORE_SHARD_FAIL = env.list("LABELLOOP_DEBUG_SCORE_SHARD_FAIL", default=[])

# LOG_FORMAT=json: one JSON object per line (config/logging.py), in web and workers alike.
LOG_FORMAT = env("LOG_FORMAT", default="plain")
LOGGING = logging_config(fmt=LOG_FORMAT, level=env("LOG_LEVEL", default="INFO"))
# Celery replaces the root logger's handlers unless told not to; keep ours when they are JSON.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT != "json"
