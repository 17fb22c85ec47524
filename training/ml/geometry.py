"""Distances for the active-learning strategies, and the view of the embeddings they measure them in: pure
numpy functions on arrays."""

from __future__ import annotations

import numpy as np

# The strategies measure distances on this many whitened principal components of the embeddings (reduce_dim),
# fitted on at most this many items; components with less than this share of the top one's variance are noise.
VIEW_DIM = 128
WHITEN_MAX_ROWS = 20000
MIN_COMPONENT_VARIANCE = 1e-6


def _as_np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances [len(a), len(b)], clipped at 0 against rounding."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


# Pool x centers distances one chunk of centers holds at a time (float32, and about three temporaries of that size):
# 4,096 centers a chunk took 4.7 GB and 26 s against a 100,000-item pool and 5,000 labels (k-center); 0.18 GB and
# 3.0 s in these chunks. Typicality's rows of neighbours go by the same cap.
CHUNK_CELLS = 16_000_000


def block_rows(width: int, *, cells: int = CHUNK_CELLS, most: int = 2048) -> int:
    """Rows of a block against `width` columns that holds at most `cells` values (16 rows at least, `most` at most)."""
    return max(16, min(most, cells // max(width, 1)))


def _min_sq_dist(x: np.ndarray, centers: np.ndarray, chunk: int | None = None) -> np.ndarray:
    chunk = chunk or block_rows(len(x), most=4096)
    out = np.full(len(x), np.inf, dtype=np.float32)
    for start in range(0, len(centers), chunk):
        out = np.minimum(out, _sq_dists(x, centers[start : start + chunk]).min(axis=1))
    return out


def kcenter_greedy(embeddings, labeled_embeddings, k: int, *, normalize: bool = True) -> np.ndarray:
    """Greedy k-center (core-set): repeatedly take the point farthest from every labeled or chosen point.

    Returns k pool indices in selection order. With nothing labeled, the first pick is the point nearest the
    pool mean (a typical point, not an outlier)."""
    x = _as_np(embeddings).astype(np.float32)
    n = len(x)
    k = min(int(k), n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    lab = _as_np(labeled_embeddings).astype(np.float32) if labeled_embeddings is not None else np.zeros((0, 0))
    if normalize:
        x = _normalize(x)
        lab = _normalize(lab) if len(lab) else lab
    chosen: list[int] = []
    if len(lab):
        dist = _min_sq_dist(x, lab)
    else:
        first = int(np.argmin(_sq_dists(x, x.mean(axis=0, keepdims=True))[:, 0]))
        chosen.append(first)
        dist = _sq_dists(x, x[first : first + 1])[:, 0]
    while len(chosen) < k:
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, _sq_dists(x, x[nxt : nxt + 1])[:, 0])
        dist[nxt] = -1.0
    return np.asarray(chosen, dtype=np.int64)


def kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 15, weights: np.ndarray | None = None):
    """Small Lloyd's k-means with k-means++ seeding: (centers [k, d], assignment [n]). Deterministic per seed."""
    x = np.asarray(x, dtype=np.float32)
    n = len(x)
    k = max(1, min(int(k), n))
    rng = np.random.default_rng(seed)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    centers = np.empty((k, x.shape[1]), dtype=np.float32)
    first = rng.choice(n, p=w / w.sum())
    centers[0] = x[first]
    d2 = _sq_dists(x, centers[:1])[:, 0].astype(np.float64)
    for j in range(1, k):
        p = d2 * w
        total = p.sum()
        idx = rng.choice(n, p=p / total) if total > 0 else int(rng.integers(n))
        centers[j] = x[idx]
        d2 = np.minimum(d2, _sq_dists(x, centers[j : j + 1])[:, 0])
    assign = np.zeros(n, dtype=np.int64)
    for it in range(iters):
        new = np.argmin(_sq_dists(x, centers), axis=1)
        if it and np.array_equal(new, assign):
            break
        assign = new
        for j in range(k):
            members = assign == j
            if members.any():
                centers[j] = np.average(x[members], axis=0, weights=w[members])
    return centers, assign


def typicality(x: np.ndarray, knn: int = 20) -> np.ndarray:
    """TypiClust typicality: 1 / mean distance to the `knn` nearest neighbours (within `x`)."""
    n = len(x)
    if n <= 1:
        return np.ones(n)
    kk = min(knn, n - 1)
    out = np.empty(n)
    rows = block_rows(n)
    for start in range(0, n, rows):
        d = np.sqrt(_sq_dists(x[start : start + rows], x))
        part = np.partition(d, kk, axis=1)[:, : kk + 1]  # includes the point itself at distance 0
        out[start : start + rows] = 1.0 / (part.sum(axis=1) / kk + 1e-8)
    return out


def reduce_dim(pool: np.ndarray, labeled: np.ndarray | None, dim: int = VIEW_DIM, seed: int = 0):
    """The view the strategies measure distances in: the project's embeddings (pool and labeled together) on their
    top `dim` principal components, each scaled to unit variance (PCA whitening), then normalized. Embeddings of
    `dim` dimensions or fewer are only normalized.

    Why whitened: a few directions of a pretrained embedding carry most of its variance (on photos, light and
    background as much as content), and the k-means, typicality and near-duplicate guard all measured their
    distances there. Whitening gives each of the top components an equal say. On CIFAR-10 (10k pool, 10 seeds)
    it lifted the area under the curve from 20 to 1,000 labels from +1.62 to +2.02 points over random and cut the
    labels to 95 % of the ceiling from 0.55x to 0.46x random's (bench/active_learning.py, stop-32 note). The fit
    is on at most WHITEN_MAX_ROWS items, a covariance and an eigendecomposition: about a second at 1,280
    dimensions; components with no variance (fewer items than dimensions) are dropped, not blown up."""
    x = _as_np(pool)
    lab = None if labeled is None or len(labeled) == 0 else _as_np(labeled)
    if x.shape[1] <= dim:
        return _normalize(x), None if lab is None else _normalize(lab)
    n = len(x)
    total = n + (0 if lab is None else len(lab))
    rows = np.arange(total)
    if total > WHITEN_MAX_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(total, size=WHITEN_MAX_ROWS, replace=False))
    fit = np.asarray(x[rows[rows < n]], dtype=np.float32)
    if lab is not None:
        fit = np.concatenate([fit, np.asarray(lab[rows[rows >= n] - n], dtype=np.float32)])
    mean = fit.mean(axis=0, dtype=np.float64).astype(np.float32)
    centred = fit - mean
    values, vectors = np.linalg.eigh((centred.T @ centred).astype(np.float64) / len(fit))
    top = np.argsort(values)[::-1][:dim]
    keep = values[top] > max(float(values[top[0]]), 0.0) * MIN_COMPONENT_VARIANCE
    keep[0] = True  # every item alike: one component without variance, a view all the same
    top = top[keep]
    basis = (vectors[:, top] / np.sqrt(np.maximum(values[top], 1e-12))).astype(np.float32)

    def view(v: np.ndarray) -> np.ndarray:
        # In chunks: a million float16 embeddings never get a float32 copy of their own (nor 100,000 a 340 MB
        # centred one, as chunks of 65,536 rows made).
        out = np.empty((len(v), len(top)), dtype=np.float32)
        for start in range(0, len(v), 8192):
            out[start : start + 8192] = (np.asarray(v[start : start + 8192], dtype=np.float32) - mean) @ basis
        return _normalize(out)

    return view(x), None if lab is None else view(lab)
