"""Per-column mean and standard deviation of large float32 embedding matrices, without full-size temporaries.

numpy's x.std(axis=0) makes a centred copy of x, scikit-learn's StandardScaler a float64 one, and standardizing
the labeled and pool embeddings together used to concatenate them first: at a 100,000-item pool of 1,280-d
embeddings each copy is 500 MB (800 MB in float64). Here the sums run over blocks of rows, accumulated in float64,
and the parts are never joined (bench/round_scale.py, bench/label_errors_scale.py)."""

from __future__ import annotations

import numpy as np


def column_stats(*parts: np.ndarray, rows: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(mean, population std) of every column over the rows of all `parts` taken together, in float64."""
    parts = tuple(p for p in parts if len(p))
    if not parts:
        raise ValueError("no rows to compute column statistics of")
    n = sum(len(p) for p in parts)
    total = np.zeros(parts[0].shape[1])
    for p in parts:
        for s in range(0, len(p), rows):
            total += p[s : s + rows].sum(axis=0, dtype=np.float64)
    mean = total / n
    centre = mean.astype(parts[0].dtype)
    squares = np.zeros_like(total)
    for p in parts:
        for s in range(0, len(p), rows):
            block = p[s : s + rows] - centre
            squares += np.square(block, out=block).sum(axis=0, dtype=np.float64)
    return mean, np.sqrt(squares / n)
