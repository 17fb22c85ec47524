"""The prediction log's buffer: requests hand it records and return; a background thread writes them in batches
(every LABELLOOP_SERVING_LOG_BATCH records or LABELLOOP_SERVING_LOG_FLUSH_SECONDS, whichever comes first), and
what is left is written when the process exits."""

from __future__ import annotations

import atexit
import logging
import os
import threading

from django.conf import settings
from django.db import close_old_connections

from serving.services.prediction_log import LogRecord, prediction_logs_write

logger = logging.getLogger(__name__)
MAX_PENDING = 100_000  # past this (the database is down for long), the oldest records are dropped, not the process


class LogBuffer:
    def __init__(self, *, batch: int | None = None, flush_seconds: float | None = None):
        self.batch = batch or settings.LABELLOOP_SERVING_LOG_BATCH
        self.flush_seconds = settings.LABELLOOP_SERVING_LOG_FLUSH_SECONDS if flush_seconds is None else flush_seconds
        self._pending: list[LogRecord] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._write_lock = threading.Lock()

    def add(self, records: list[LogRecord]) -> None:
        with self._lock:
            self._pending.extend(records)
            if len(self._pending) > MAX_PENDING:
                dropped = len(self._pending) - MAX_PENDING
                del self._pending[:dropped]
                logger.error("prediction log: %s records dropped (the database is not keeping up)", dropped)
            full = len(self._pending) >= self.batch
        self._ensure_thread()
        if full:
            self._wake.set()

    def flush(self) -> int:
        """Write everything pending now (the thread's work; also at exit and in tests)."""
        with self._write_lock:
            with self._lock:
                records, self._pending = self._pending, []
            if not records:
                return 0
            try:
                close_old_connections()
                return prediction_logs_write(records=records)
            except Exception:
                logger.exception("prediction log: writing %s records failed; retrying later", len(records))
                with self._lock:
                    self._pending[:0] = records
                return 0

    def _ensure_thread(self) -> None:
        # A forked server worker inherits the object but not the thread: start one per process.
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
            self._thread.start()
            atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()
