"""Active-learning strategies: pure functions on arrays. Scores are "higher = ask a human sooner".

Single-label `probs` are [n, C] softmax rows; multi-label `probs` are [n, L] independent sigmoids.
"""

from __future__ import annotations

import numpy as np

from training.ml.geometry import (
    _as_np,
    _normalize,
    _sq_dists,
    kcenter_greedy,
    kmeans,
    reduce_dim,
    typicality,
)

EPS = 1e-12
BASE_SCORES = ("least_confidence", "margin", "entropy")
# The default strategy picks by typicality (TypiClust) until there are this many labels per class, then by
# margin with a near-duplicate guard (margin_distinct): with a handful of labels per class the model's
# uncertainty is mostly noise, while covering the dense regions of the embedding space is not. 3 per class (10
# until December 2026) lifts the area under the curve from 20 to 1,000 labels on the held-out line-art set
# (`--data symbols`, 5 seeds) by 2.4 points (0.799 to 0.823; random 0.711) and is within noise of 10 on CIFAR-10,
# its long-tailed pool and the digits (bench/active_learning.py).
TYPICAL_LABELS_PER_CLASS = 3
# ... or until this many labels, whichever comes first. At 100 classes the per-class rule alone kept the phase
# going for 300 labels, long after its gain: on a 100-class line-art set (glyphs, long-tailed 150 -> 10 per
# class, 10 paired seeds) ending it at 60 lifts the same area by 0.95 points (95 % interval 0.26 to 1.64), from
# 0.38 below random to 0.57 above. Sets of up to 20 classes (CIFAR-10, the digits, the symbols) never reach it.
TYPICAL_MAX_LABELS = 60
# k-means above this many clusters costs more than the low-budget phase is worth; the phase is skipped.
TYPICAL_MAX_CLUSTERS = 1000
# After that phase the default takes the most uncertain items by margin, skipping any item this similar (cosine,
# on the embeddings) to one already in the batch. With the self-trained head, spreading the batch by clustering
# the 3x or 20x most uncertain items cost 0.5-1 point of accuracy at 400-1,000 labels against plain margin on
# CIFAR-10 (bench/active_learning.py, 3 and 5 seeds); the similarity guard keeps what that clustering was for:
# a pile of near-identical uncertain images costs one label, not twenty.
NEAR_DUPLICATE_SIMILARITY = 0.95
# The guard measures similarity on embeddings centred on the pool's mean, and looks no further than this many
# batches' worth of the most uncertain items. Uncentred, on images that all look alike (line art or icons on
# white: every pair above 0.95 cosine), the guard skipped every uncertain item like the first and filled the batch
# with the pool's outliers; that was why the default lost to random by 19 points on such a set while plain margin
# won. Centring removes what all images share (the white page); the window bounds what the guard can cost: picks
# are always among the 3 x batch most uncertain items.
DISTINCT_WINDOW = 3
# The default draws this share of every batch (after the cold start) uniformly from the pool: an unbiased view of
# the pool for the model page, and a bound on the loss when the strategy is wrong about a data set.
RANDOM_SHARE = 0.1


# ---- uncertainty scores ---------------------------------------------------------------------------------------
def random_scores(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(n)


def least_confidence(probs, multi_label: bool = False) -> np.ndarray:
    """1 - p(top class); multi-label: 1 - confidence of the least certain label."""
    p = _as_np(probs).astype(np.float64)
    if multi_label:
        return 1.0 - np.maximum(p, 1.0 - p).min(axis=1)
    return 1.0 - p.max(axis=1)


def margin(probs, multi_label: bool = False) -> np.ndarray:
    """1 - (p1 - p2) of the two most probable classes; multi-label: 1 - min |2p - 1| over labels."""
    p = _as_np(probs).astype(np.float64)
    if multi_label:
        return 1.0 - np.abs(2.0 * p - 1.0).min(axis=1)
    if p.shape[1] < 2:
        return np.zeros(len(p))
    top2 = np.partition(p, -2, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def _entropy(p: np.ndarray, multi_label: bool) -> np.ndarray:
    if multi_label:
        q = np.clip(p, EPS, 1 - EPS)
        return -(q * np.log(q) + (1 - q) * np.log(1 - q)).sum(axis=-1)
    return -(p * np.log(np.clip(p, EPS, 1.0))).sum(axis=-1)


def entropy(probs, multi_label: bool = False) -> np.ndarray:
    """Shannon entropy of the prediction (nats); multi-label: sum of per-label binary entropies."""
    return _entropy(_as_np(probs).astype(np.float64), multi_label)


def bald(mc_probs, multi_label: bool = False) -> np.ndarray:
    """Mutual information between prediction and weights from MC-dropout samples [T, n, C]:
    H(mean_t p_t) - mean_t H(p_t). High when the samples disagree, zero when they agree."""
    p = _as_np(mc_probs).astype(np.float64)
    if p.ndim != 3:
        raise ValueError(f"bald needs MC samples shaped [T, n, C], got {p.shape}")
    return np.maximum(_entropy(p.mean(axis=0), multi_label) - _entropy(p, multi_label).mean(axis=0), 0.0)


SCORERS = {"least_confidence": least_confidence, "margin": margin, "entropy": entropy}


# ---- batch selection ------------------------------------------------------------------------------------------
def margin_distinct(
    probs,
    embeddings,
    batch_size: int,
    *,
    max_similarity: float = NEAR_DUPLICATE_SIMILARITY,
    multi_label: bool = False,
) -> np.ndarray:
    """The most uncertain items by margin, in order, skipping any whose cosine similarity (on embeddings centred
    on the pool's mean) to an item already taken for this batch is >= `max_similarity` (near-duplicates), among
    the DISTINCT_WINDOW x `batch_size` most uncertain items. Skipped items stay in the pool for later batches.
    Returns `batch_size` pool indices in selection order (topped up from the window by score when the guard
    skipped too many)."""
    scores = margin(probs, multi_label=multi_label)
    n = len(scores)
    b = min(int(batch_size), n)
    if b <= 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    window = order[: DISTINCT_WINDOW * b]
    raw = _as_np(embeddings).astype(np.float32)
    x = np.zeros_like(raw)
    x[window] = _normalize(raw[window] - raw.mean(axis=0, keepdims=True))
    picks: list[int] = []
    for i in window:
        if picks and float((x[picks] @ x[i]).max()) >= max_similarity:
            continue
        picks.append(int(i))
        if len(picks) == b:
            return np.asarray(picks, dtype=np.int64)
    taken = set(picks)
    picks += [int(i) for i in order if int(i) not in taken][: b - len(picks)]
    return np.asarray(picks, dtype=np.int64)


def random_picks(n: int, batch_size: int, share: float, seed: int) -> np.ndarray:
    """The pool indices a batch of `batch_size` draws uniformly at random: round(share x batch) of them (2 of the
    default 20; none in a batch under 5 at 10 %). Deterministic per seed (the product records which they were)."""
    b = min(int(batch_size), n)
    k = min(b, round(share * b))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.random.default_rng(seed + 7919).choice(n, size=k, replace=False).astype(np.int64)


def with_random_share(batch: np.ndarray, n: int, batch_size: int, share: float, seed: int) -> np.ndarray:
    """`batch` with its last picks replaced by random_picks (those not already in it), in selection order; the
    random picks are spread through the batch so a labeler who stops early still meets some."""
    rand = [int(i) for i in random_picks(n, batch_size, share, seed) if int(i) not in set(batch.tolist())]
    if not rand:
        return batch
    kept = [int(i) for i in batch[: max(0, len(batch) - len(rand))]]
    step = max(1, (len(kept) + len(rand)) // len(rand))
    out: list[int] = []
    for i in kept:
        if rand and len(out) % step == step - 1:
            out.append(rand.pop(0))
        out.append(i)
    return np.asarray(out + rand, dtype=np.int64)


def cold_start(embeddings, batch_size: int, *, seed: int = 0, max_fit: int = 20000) -> np.ndarray:
    """Class-agnostic first picks on pretrained embeddings (TypiClust): k-means into `batch_size` clusters,
    then the most typical image of each cluster, biggest clusters first.

    Returns a full ordering of the pool: the first `batch_size` are the cluster representatives; after them,
    clusters take turns (round robin by typicality), so labeling past the first batch stays diverse."""
    x = _normalize(_as_np(embeddings))
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    b = max(1, min(int(batch_size), n))
    rng = np.random.default_rng(seed)
    fit = x if n <= max_fit else x[rng.choice(n, size=max_fit, replace=False)]
    centers, _ = kmeans(fit, b, seed=seed)
    assign = np.argmin(np.concatenate([_sq_dists(x[s : s + 4096], centers) for s in range(0, n, 4096)]), axis=1)
    sizes = np.bincount(assign, minlength=len(centers))
    rank_in_cluster = np.zeros(n, dtype=np.int64)
    typ = np.zeros(n)
    for j in range(len(centers)):
        members = np.nonzero(assign == j)[0]
        if not len(members):
            continue
        typ[members] = typicality(x[members])
        rank_in_cluster[members[np.argsort(-typ[members], kind="stable")]] = np.arange(len(members))
    # Sort by (round, bigger cluster first, more typical first).
    return np.lexsort((-typ, -sizes[assign], rank_in_cluster)).astype(np.int64)


def typiclust(embeddings, labeled_embeddings, batch_size: int, *, seed: int = 0) -> np.ndarray:
    """TypiClust for a project that has some labels: k-means over pool + labeled items into
    len(labeled) + batch_size clusters; from each cluster holding no labeled item, the pool's most typical
    member, biggest clusters first. Fills up with the most typical remaining items when fewer clusters are free.
    Returns `batch_size` pool indices in selection order."""
    x = _normalize(_as_np(embeddings))
    n = len(x)
    b = min(int(batch_size), n)
    if b <= 0:
        return np.zeros(0, dtype=np.int64)
    lab = (
        _normalize(_as_np(labeled_embeddings))
        if labeled_embeddings is not None and len(labeled_embeddings)
        else np.zeros((0, x.shape[1]), dtype=np.float32)
    )
    both = np.concatenate([x, lab]) if len(lab) else x
    k = min(len(lab) + b, len(both))
    _, assign = kmeans(both, k, seed=seed, iters=10)
    covered = set(assign[n:].tolist())
    pool_assign = assign[:n]
    sizes = np.bincount(assign, minlength=k)
    picks: list[int] = []
    typ = np.zeros(n)
    for j in np.argsort(-sizes, kind="stable"):
        members = np.nonzero(pool_assign == j)[0]
        if not len(members):
            continue
        typ[members] = typicality(x[members])
        if j not in covered and len(picks) < b:
            picks.append(int(members[np.argmax(typ[members])]))
    if len(picks) < b:
        taken = set(picks)
        picks += [int(i) for i in np.argsort(-typ, kind="stable") if int(i) not in taken][: b - len(picks)]
    return np.asarray(picks[:b], dtype=np.int64)


def typical_phase_labels(classes: int) -> int:
    """Labels below which the default picks by typicality: TYPICAL_LABELS_PER_CLASS per class, at most
    TYPICAL_MAX_LABELS."""
    return min(TYPICAL_LABELS_PER_CLASS * int(classes), TYPICAL_MAX_LABELS)


def base_scores(strategy: str, probs, *, mc_probs=None, seed: int = 0, multi_label: bool = False) -> np.ndarray:
    """The per-item uncertainty a strategy orders by (what the UI shows as "uncertainty")."""
    if strategy == "random":
        return random_scores(len(_as_np(probs)), seed)
    if strategy == "bald":
        if mc_probs is None:
            raise ValueError("bald needs MC-dropout samples (mc_probs [T, n, C])")
        return bald(mc_probs, multi_label=multi_label)
    if strategy in SCORERS:
        return SCORERS[strategy](probs, multi_label=multi_label)
    # kcenter and diverse_margin fall back to margin for the items outside the chosen batch.
    return margin(probs, multi_label=multi_label)


def rank_pool(
    strategy: str,
    probs,
    embeddings,
    labeled_embeddings,
    batch_size: int,
    seed: int = 0,
    *,
    mc_probs=None,
    multi_label: bool = False,
    random_share: float | None = None,
) -> np.ndarray:
    """A priority for EVERY pool item (higher = serve first).

    The batch a strategy selects gets priorities in (1, 2], in selection order; every other item gets a
    priority in [0, 1) ordered by the strategy's base score. `probs` None means no model yet: cold start.
    `random_share` (None: RANDOM_SHARE for the default, diverse_margin, else 0) of the batch is random_picks."""
    emb = None if embeddings is None else _as_np(embeddings)
    n = len(emb) if probs is None else len(_as_np(probs))
    priority = np.zeros(n, dtype=np.float32)
    if n == 0:
        return priority
    if probs is None:
        if strategy == "random":
            order = np.argsort(-random_scores(n, seed), kind="stable")
        else:
            order = cold_start(reduce_dim(emb, None)[0], batch_size, seed=seed)
        priority[order] = (n - np.arange(n)) / n + 1e-6  # full ordering; (0, 1]
        return priority
    scores = base_scores(strategy, probs, mc_probs=mc_probs, seed=seed, multi_label=multi_label)
    b = min(int(batch_size), n)
    if strategy in ("kcenter", "diverse_margin"):
        emb, lab = reduce_dim(emb, labeled_embeddings)
    if strategy == "kcenter":
        batch = kcenter_greedy(emb, lab, b, normalize=False)
    elif strategy == "diverse_margin":
        n_lab = 0 if lab is None else len(lab)
        classes = _as_np(probs).shape[1]
        if n_lab < typical_phase_labels(classes) and n_lab + b <= TYPICAL_MAX_CLUSTERS:
            batch = typiclust(emb, lab, b, seed=seed)  # low budget: typical and uncovered beats uncertain
        else:
            batch = margin_distinct(probs, emb, b, multi_label=multi_label)
    else:
        batch = np.argsort(-scores, kind="stable")[:b]
    share = (RANDOM_SHARE if strategy == "diverse_margin" else 0.0) if random_share is None else random_share
    if share > 0:
        batch = with_random_share(batch, n, b, share, seed)
    rest_order = np.argsort(-scores, kind="stable")
    # Rank-based values keep the order exact and the range fixed whatever the score scale.
    priority[rest_order] = (n - 1 - np.arange(n)) / n
    priority[batch] = 1.0 + (len(batch) - np.arange(len(batch))) / max(len(batch), 1)
    return priority
