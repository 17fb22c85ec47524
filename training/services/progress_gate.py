"""When a progress callback writes its row: the one rule shared by a run's progress (run_progress.RunProgress) and
a label-error search's job (label_errors._SearchProgress), so the two cannot drift apart.

A report is written when its stage label differs from the last one written, when it ends its stage (done >= total),
or when at least `min_interval` seconds of `clock` have passed since the last write; the first report is always
written. Everything else in between is skipped: the pages poll once a second, so more writes only load the database.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Within one stage a row is written at most this often (seconds).
WRITE_INTERVAL = 0.5


class ProgressGate:
    """`gate.due(label, done, total)` says whether this report should be written, and counts it as written if so."""

    def __init__(self, *, min_interval: float = WRITE_INTERVAL, clock: Callable[[], float] = time.monotonic):
        self.min_interval, self.clock = min_interval, clock
        self.label: str | None = None  # the label last written; None before the first write
        self.written_at: float | None = None

    def due(self, label: str, done: float, total: float) -> bool:
        now = self.clock()
        if (
            self.written_at is None
            or label != self.label
            or done >= total
            or now - self.written_at >= self.min_interval
        ):
            self.label, self.written_at = label, now
            return True
        return False
