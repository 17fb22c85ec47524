"""The classes of each labeled example's nearest labeled neighbours (the label-error search's backing rule,
training.ml.confident.backs), computed only for the rows the search asks about.

A full table compares every label with every other: its cost grows with the square of the labels (on 2 cores, 11 s
at 20,000 labels and 43 s at 40,000, against 3 s and 5 s for the search's cross-validation). The search only asks
about labels the model disagrees with, and NeighbourSupport computes a row the first time it is asked for: with 15 %
of 40,000 labels in disagreement, the search's judging took 12.8 s instead of 51.8 s (7,028 rows computed).
At 100,000 labels (synthetic 1,280-d clusters, 5 % wrong, 2 cores) the judging takes 8.4 s over 4,984 rows and the
cross-validation before it 50 s with 10 classes, 86 s with 100; the judging's memory on top of the features is
about 0.3 GB (BLOCK_CELLS; it was 3.3 GB), the cross-validation's 1.4 GB.
"""

from __future__ import annotations

import numpy as np

from training.ml.geometry import block_rows

# How many nearest labeled neighbours vote (training.ml.confident explains the rule and its figures).
NEIGHBOURS = 10
# Above this many dimensions the neighbour search runs on a fixed random projection (cosine is kept closely).
NEIGHBOUR_DIM = 256
# Rows x labels of one block's similarities: the block holds them (float32) and their top-k search an int64 index of
# the same shape. Blocks of 2,048 rows took 3.3 GB on top of the features at 100,000 labels (one search on a worker);
# this caps a block near 100 MB, at the same speed.
BLOCK_CELLS = 8_000_000
MAX_BLOCK = 2048


class NeighbourSupport:
    """support[rows] -> [len(rows), n_classes]: for each example asked for, the share of its k nearest other
    examples (cosine similarity of the features centred on their mean; a fixed random projection to NEIGHBOUR_DIM
    dimensions above that) labeled with each class. Rows are computed in blocks when first asked for, and kept.
    `labels` is (n,) class indices, or an (n, n_classes) 0/1 matrix in a multi-label project (a neighbour then
    counts for every class it carries)."""

    def __init__(
        self, features: np.ndarray, labels: np.ndarray, n_classes: int, k: int = NEIGHBOURS, block: int | None = None
    ):
        self.labels = np.asarray(labels, dtype=np.int64 if np.ndim(labels) == 1 else np.float32)
        n = len(self.labels)
        self.k = min(k, n - 1)
        self.block = block or block_rows(n, cells=BLOCK_CELLS, most=MAX_BLOCK)
        self.table = np.zeros((n, n_classes), dtype=np.float32)
        self.done = np.zeros(n, dtype=bool)
        x = np.asarray(features, dtype=np.float32)
        mean = x.mean(axis=0, keepdims=True) if n else 0.0
        if n and x.ndim == 2 and x.shape[1] > NEIGHBOUR_DIM:
            proj = np.random.default_rng(0).standard_normal((x.shape[1], NEIGHBOUR_DIM)).astype(np.float32)
            x = x @ proj - mean @ proj  # centred after the projection: no centred copy of the full features
        elif n:
            x = x - mean
        self.x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9) if n else x

    @property
    def computed(self) -> int:
        """How many rows have been computed so far."""
        return int(self.done.sum())

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, rows) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        missing = np.unique(rows[~self.done[rows]])
        if self.k > 0:
            for start in range(0, len(missing), self.block):
                self._compute(missing[start : start + self.block])
        self.done[missing] = True
        return self.table[rows]

    def _compute(self, rows: np.ndarray) -> None:
        sim = self.x[rows] @ self.x.T
        np.negative(sim, out=sim)  # in place: the smallest are the nearest
        sim[np.arange(len(rows)), rows] = np.inf  # not its own neighbour
        nearest = np.argpartition(sim, self.k - 1, axis=1)[:, : self.k]
        if self.labels.ndim == 2:
            self.table[rows] = self.labels[nearest].mean(axis=1)
        else:
            np.add.at(self.table, (np.repeat(rows, self.k), self.labels[nearest].ravel()), 1.0 / self.k)


def neighbour_support(
    features: np.ndarray, labels: np.ndarray, n_classes: int, k: int = NEIGHBOURS, block: int | None = None
) -> np.ndarray:
    """The whole table [n, n_classes] (NeighbourSupport for every row)."""
    return NeighbourSupport(features, labels, n_classes, k=k, block=block)[np.arange(len(labels))]
