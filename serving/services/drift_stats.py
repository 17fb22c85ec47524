"""The two-sample test behind drift monitoring, in plain numpy (no Django): MMD with an RBF kernel and a
permutation p-value.

MMD² (the biased V-statistic) between samples X (production) and Y (reference) with k(a, b) = exp(-|a-b|² / h),
h the median of the pooled sample's pairwise squared distances (the median heuristic, taken once on the pooled
sample so that every permutation sees the same kernel). The p-value is (1 + #{permuted MMD² >= observed}) /
(1 + permutations) over seeded random relabellings of the pooled sample: under "same distribution" the labels
are exchangeable, so a threshold alpha raises a false alarm in at most a share alpha of windows. With 200
permutations the smallest p-value is 1/201 ≈ 0.005, below the default threshold of 0.01.

The cost is one N x N kernel (N = n_x + n_y after subsampling to `max_samples` each) and one N x N by N x P
product for P permutations: about 0.3 s for 500 + 1000 points of 1280 dimensions on one core.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

DEFAULT_PERMUTATIONS = 200
DEFAULT_MAX_SAMPLES = 1000
PERMUTATION_CHUNK = 25  # permutations per matrix product (memory: N x chunk)


@dataclass(frozen=True)
class MMDResult:
    statistic: float  # MMD² (biased) of the observed split
    p_value: float
    permutations: int
    bandwidth: float  # h in exp(-d² / h)
    n_x: int
    n_y: int


def _checked(name: str, a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (samples x dimensions), got shape {a.shape}")
    if len(a) < 2:
        raise ValueError(f"{name} needs at least 2 samples, got {len(a)}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return a


def subsample(a: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """At most n rows of `a`, chosen without replacement (all rows, in order, when there are no more than n)."""
    if len(a) <= n:
        return a
    return a[np.sort(rng.choice(len(a), size=n, replace=False))]


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq_a = np.einsum("ij,ij->i", a, a)
    sq_b = np.einsum("ij,ij->i", b, b)
    d2 = sq_a[:, None] + sq_b[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d2, 0.0)


def median_bandwidth(d2: np.ndarray) -> float:
    """The median of the off-diagonal pairwise squared distances (1.0 when every point is the same)."""
    upper = d2[np.triu_indices(len(d2), k=1)]
    positive = upper[upper > 0]
    return float(np.median(positive)) if len(positive) else 1.0


def mmd_permutation_test(
    x: np.ndarray,
    y: np.ndarray,
    *,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    progress: Callable[[int, int], None] | None = None,
) -> MMDResult:
    """Test whether the rows of x and y come from one distribution. Deterministic for a given seed.

    Raises ValueError for arrays that are not 2-D, hold fewer than 2 rows, differ in width or are not finite.
    `progress(done, total)` is called as permutations finish.
    """
    x, y = _checked("x", x), _checked("y", y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x has {x.shape[1]} dimensions but y has {y.shape[1]}")
    if permutations < 1:
        raise ValueError("permutations must be at least 1")
    rng = np.random.default_rng(seed)
    x, y = subsample(x, max_samples, rng), subsample(y, max_samples, rng)
    n_x, n_y = len(x), len(y)
    z = np.concatenate([x, y])
    d2 = squared_distances(z, z)
    bandwidth = median_bandwidth(d2)
    kernel = np.exp(-d2 / bandwidth)
    del d2

    # MMD²(split) = sᵀ K s with s = +1/n_x on X's rows and -1/n_y on Y's: one matrix product per chunk.
    weights = np.concatenate([np.full(n_x, 1.0 / n_x), np.full(n_y, -1.0 / n_y)])
    observed = float(weights @ kernel @ weights)
    # Ties (a permutation that reproduces the observed split) count as "as extreme", despite float rounding.
    tolerance = 1e-9 * abs(observed) + 1e-15
    exceed = done = 0
    while done < permutations:
        chunk = min(PERMUTATION_CHUNK, permutations - done)
        s = np.stack([rng.permutation(weights) for _ in range(chunk)], axis=1)
        stats = np.einsum("ij,ij->j", s, kernel @ s)
        exceed += int(np.count_nonzero(stats >= observed - tolerance))
        done += chunk
        if progress:
            progress(done, permutations)
    return MMDResult(
        statistic=max(observed, 0.0),
        p_value=(1 + exceed) / (1 + permutations),
        permutations=permutations,
        bandwidth=bandwidth,
        n_x=n_x,
        n_y=n_y,
    )


def low_confidence_share(confidences: np.ndarray, threshold: float) -> float:
    """Share of predictions whose top probability is below `threshold` (0.0 for no predictions)."""
    confidences = np.asarray(confidences, dtype=np.float64)
    return float(np.mean(confidences < threshold)) if len(confidences) else 0.0
