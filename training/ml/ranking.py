"""The queue's ranking of a scored pool: each item's uncertainty, its priority, and which items of the top batch
are random draws rather than the strategy's picks.

Rule: after the cold start, the default strategy (diverse_margin) fills `strategies.RANDOM_SHARE` of each batch
with `strategies.random_picks`, uniform draws from the pool; the "random" strategy orders the whole pool at random,
so every item it ranks is a random draw (its cold start too); every other strategy, and every other cold start,
draws none. `random_pick_indices` names those draws for the product (Item.picked_at_random), with the same share
`rank_pool` is given, so the two cannot disagree. Numpy only: the sharded finalize step ranks with it too.
"""

from __future__ import annotations

import numpy as np

from training.ml import strategies
from training.ml.config import RoundConfig

DEFAULT_SELECTION_BATCH = 20


def random_share(strategy: str) -> float:
    """The share of each batch (after the cold start) drawn uniformly at random: the default strategy only."""
    return strategies.RANDOM_SHARE if strategy == "diverse_margin" else 0.0


def draws_every_pick(strategy: str) -> bool:
    """Whether every item the strategy ranks is a random draw: "random" orders the whole pool (its cold start too)
    uniformly at random."""
    return strategy == "random"


def random_pick_indices(strategy: str, n: int, batch_size: int, seed: int) -> np.ndarray:
    """Pool indices (into the ranked arrays) of the batch's random draws; empty when the strategy draws none. Under
    the "random" strategy every pool index: the queue serves the pool in a uniformly random order."""
    if draws_every_pick(strategy):
        return np.arange(max(int(n), 0), dtype=np.int64)
    share = random_share(strategy)
    if share <= 0 or n <= 0:
        return np.zeros(0, dtype=np.int64)
    return strategies.random_picks(n, batch_size, share, seed)


def uncertainty_and_priority(
    cfg: RoundConfig,
    probs: np.ndarray,
    pool_emb: np.ndarray,
    labeled_emb: np.ndarray | None,
    mc_probs: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(uncertainty, priority, random pick indices) of a pool scored by a model (not the cold start)."""
    batch = cfg.selection_batch or DEFAULT_SELECTION_BATCH
    uncertainty = strategies.base_scores(
        cfg.strategy if cfg.strategy != "random" else "margin", probs, mc_probs=mc_probs, multi_label=cfg.multi_label
    )
    priority = strategies.rank_pool(
        cfg.strategy,
        probs,
        pool_emb,
        labeled_emb,
        batch,
        cfg.seed,
        mc_probs=mc_probs,
        multi_label=cfg.multi_label,
        random_share=random_share(cfg.strategy),
    )
    picks = random_pick_indices(cfg.strategy, len(priority), batch, cfg.seed)
    return uncertainty.astype(np.float32), priority.astype(np.float32), picks
