"""bench/active_learning.py whitens the pool once where the product whitens every round: the picks must agree, or
the benchmark measures something the product does not do."""

from __future__ import annotations

import numpy as np
import pytest

from training.ml import strategies as st
from training.ml.geometry import VIEW_DIM


def _pool(seed: int = 0, n: int = 600, dims: int = 320, classes: int = 5):
    rng = np.random.default_rng(seed)
    owner = rng.integers(classes, size=n)
    centres = rng.normal(size=(classes, dims))
    x = centres[owner] + rng.normal(scale=2.0, size=(n, dims)) + rng.normal(scale=8.0, size=(n, 1))  # + lighting
    logits = rng.normal(size=(n, classes)) + 2.0 * np.eye(classes)[owner]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return x.astype(np.float32), probs


@pytest.mark.parametrize("labeled", [0, 8, 200], ids=["cold-start", "typicality-phase", "margin-phase"])
def test_the_benchmarks_view_picks_what_the_product_picks(labeled):
    import torch

    from bench.active_learning import _STATE, _init

    x, probs = _pool()
    threads = torch.get_num_threads()
    try:
        _init(x, np.zeros(len(x), int), x[:1], np.zeros(1, int), None, 1, 5)
    finally:
        _STATE["limits"].restore_original_limits()
        torch.set_num_threads(threads)
    xr = _STATE["xr"]
    lab = np.arange(labeled)
    pool = np.arange(labeled, len(x))
    p = None if labeled == 0 else probs[pool]
    product = st.rank_pool("diverse_margin", p, x[pool], x[lab], 20, seed=3)
    bench = st.rank_pool("diverse_margin", p, xr[pool], xr[lab], 20, seed=3)
    assert xr.shape == (len(x), VIEW_DIM)
    assert np.argsort(-product)[:20].tolist() == np.argsort(-bench)[:20].tolist()
