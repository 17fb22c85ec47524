"""Celery's soft time limit, taken at a safe point.

In a prefork child the pool sends SIGUSR1 when a task passes its soft limit, and billiard's handler raises
SoftTimeLimitExceeded wherever the task happens to be: inside a database query (the connection is then left
mid-protocol, and the next query, the one that would mark the job failed, can hang), or inside a lock. A
long task that can stop between steps turns the signal into a flag instead and raises the exception itself
where nothing is half done. The hard limit (CELERY_TASK_TIME_LIMIT) still kills a task stuck in one step.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from celery.exceptions import SoftTimeLimitExceeded

_SIGNAL = getattr(signal, "SIGUSR1", None)


class SoftLimit:
    """Whether the soft time limit has passed; `check()` raises SoftTimeLimitExceeded once it has."""

    def __init__(self) -> None:
        self._passed = threading.Event()

    def set(self, *_args: object) -> None:
        self._passed.set()

    @property
    def passed(self) -> bool:
        return self._passed.is_set()

    def check(self) -> None:
        if self.passed:
            raise SoftTimeLimitExceeded()


@contextlib.contextmanager
def soft_limit_deferred() -> Iterator[SoftLimit]:
    """Within the block, the soft-limit signal sets the returned flag instead of raising (main thread of a
    process whose SIGUSR1 has a Python handler, i.e. a prefork child; elsewhere the flag just never sets)."""
    limit = SoftLimit()
    if _SIGNAL is None or threading.current_thread() is not threading.main_thread():
        yield limit
        return
    previous = signal.getsignal(_SIGNAL)
    if not callable(previous):  # nobody sends the signal to this process: nothing to defer
        yield limit
        return
    signal.signal(_SIGNAL, limit.set)
    try:
        yield limit
    finally:
        signal.signal(_SIGNAL, previous)
