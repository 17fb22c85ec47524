"""The one formula for a proportion's 95 % interval (Wilson score), read by the model pages' metrics
(training/ml), the exports, the promotion check, monitoring's live accuracy and the quality page's annotator
accuracy. labeling may not import training, and training/ml imports nothing of ours but imaging/ and stats/, so the
formula lives here, on its own."""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # the normal quantile of a two-sided 95 % interval


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of the proportion successes / n; None without items.

    Unlike the normal approximation it stays inside [0, 1] and is not zero-width at 0 or n successes: 24 right
    of 24 gives (0.86, 1.0), not (1.0, 1.0)."""
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)
