"""Structured logs: one JSON object per line (LOG_FORMAT=json), for log shippers such as Loki or CloudWatch.

Each line has time (UTC, ISO 8601), level, logger and message; exceptions add `exc_info`; values passed
with `extra={...}` are kept; inside a Celery task the task's id and name are added.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        task = _current_task()
        if task is not None:
            entry["task_id"] = task.request.id
            entry["task_name"] = task.name
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in entry and not key.startswith("_"):
                entry[key] = value
        return json.dumps(entry, default=str, ensure_ascii=False)


def _current_task():
    try:
        from celery import current_task
    except ImportError:  # pragma: no cover - celery is a runtime dependency
        return None
    task = current_task
    return task if task and getattr(task.request, "id", None) else None


class ClientErrorsWithoutTraceback(logging.Filter):
    """Django's request logger logs a refused request (403 PermissionDenied, 404 Http404, 400 SuspiciousOperation)
    with the exception's traceback: 20 lines that look like a crash to anyone scanning the log for tracebacks,
    for what is the app working as meant. A 4xx record keeps its one line (method, path, status); a 5xx record
    keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True


def logging_config(*, fmt: str, level: str) -> dict:
    """Django LOGGING dict: `fmt` is "json" or "plain". With json, Python warnings become log records too."""
    if fmt not in ("json", "plain"):
        raise ValueError(f"LOG_FORMAT must be 'json' or 'plain', not {fmt!r}")
    if fmt == "json":
        # Otherwise warnings.warn() writes plain text lines into a JSON log stream.
        logging.captureWarnings(True)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
            "json": {"()": "config.logging.JsonFormatter"},
        },
        "filters": {"client_errors": {"()": "config.logging.ClientErrorsWithoutTraceback"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": fmt}},
        # Django's own logger config (propagate, level) is kept; only the 4xx tracebacks go.
        "loggers": {"django.request": {"filters": ["client_errors"]}},
        "root": {"handlers": ["console"], "level": level},
    }
