"""Health endpoints.

/livez: the web process answers and reaches the database (load balancers, compose's web health check).
/healthz: readiness of the whole deployment for monitoring: database, Redis, live Celery workers
(heartbeats in Redis) and a consumer for every queue in CELERY_TASK_QUEUES (housekeeping, default, gpu).
200 when all pass, 503 otherwise; JSON either way.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from labeling import heartbeat

logger = logging.getLogger(__name__)


def _error(what: str, exc: Exception) -> str:
    # The endpoint is unauthenticated: details (host names, ports) go to the log, not the response.
    logger.warning("health check: %s failed: %s", what, exc)
    return f"error: {exc.__class__.__name__}"


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return _error("database", exc)
    return "ok"


def _queue_names() -> list[str]:
    queues = getattr(settings, "CELERY_TASK_QUEUES", None) or ()
    names = [getattr(q, "name", q) for q in queues]
    return names or [getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")]


@require_GET
@never_cache
def livez(request: HttpRequest) -> JsonResponse:
    database = _check_database()
    healthy = database == "ok"
    return JsonResponse(
        {"status": "ok" if healthy else "error", "checks": {"database": database}}, status=200 if healthy else 503
    )


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database()}
    workers: list[dict] = []
    consumers = dict.fromkeys(_queue_names(), 0)
    try:
        heartbeat.redis_client().ping()
        checks["redis"] = "ok"
        workers = heartbeat.heartbeats_alive()
    except Exception as exc:
        checks["redis"] = _error("redis", exc)
    if checks["redis"] == "ok":
        for worker in workers:
            for queue in worker.get("queues", []):
                consumers[queue] = consumers.get(queue, 0) + 1
        idle = sorted(q for q, n in consumers.items() if n == 0)
        if not workers:
            checks["workers"] = "error: no worker heartbeat (no Celery worker running?)"
        elif idle:
            checks["workers"] = "error: no worker consumes queue " + ", ".join(idle)
        else:
            checks["workers"] = "ok"
    else:
        checks["workers"] = "unknown: redis unreachable"
    healthy = all(v == "ok" for v in checks.values())
    body = {
        "status": "ok" if healthy else "error",
        "checks": checks,
        "queues": consumers,
        "workers": [{k: w.get(k) for k in ("hostname", "queues", "concurrency")} for w in workers],
    }
    return JsonResponse(body, status=200 if healthy else 503)


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("livez", livez, name="livez"),
]
