"""Heads on cached embeddings: a standardized, L2-regularized, class-balanced linear classifier (full-batch
L-BFGS), optionally self-trained on the unlabeled pool, plus MC-dropout sampling for BALD. Foldable into the
backbone's own classifier layer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.ml.columns import column_stats
from training.ml.config import PSEUDO_ROUNDS, PSEUDO_THRESHOLD

# Mean-loss L2 strength on standardized features. Measured on CIFAR-10 / Lite0 128 px embeddings (2,000 test
# images): 0.1-0.3 is best or within noise of best from 20 to 10,000 labels (1e-4 loses 2-7 points at >= 1k).
DEFAULT_L2 = 0.2
# Tried by cross-validation when fit_head(cv=True) (coarse on purpose: each point is one L-BFGS fit per fold).
L2_GRID = (0.05, 0.1, 0.2, 0.5, 1.0)
# A head fit of at most this much work per step (rows learned from x dimensions x classes) runs on one thread. Its
# L-BFGS step is thousands of small operations (a dot product of the 12,810 weights of 10 classes on 1,280-d
# features ~30 times per step): a second thread adds a wait at each, and a long one whenever another process holds
# the other core (the web server and the other workers of `make demo`, a browser). bench/head_threads.py on 2 cores,
# 1,800 rows (the digits demo): idle, 0.29 s either way; beside one busy process, 0.65 s with torch's 2 threads and
# 0.33 s with one; at a load of 8, 9.8 s and 0.9 s. Bigger fits keep torch's threads: idle, 2 threads fitted 4,000
# rows in 0.29 s against one thread's 0.36 s, and 12,000 in 0.83 s against 0.93 s.
SMALL_FIT_WORK = 50_000_000


class LinearHead(nn.Module):
    """logits = W ((x - mean) / std) + b."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, num_outputs: int) -> None:
        super().__init__()
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("std", std.float().clone())
        self.linear = nn.Linear(mean.numel(), num_outputs)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor, dropout: float = 0.0) -> torch.Tensor:
        z = (x - self.mean) / self.std
        if dropout > 0:
            z = F.dropout(z, p=dropout, training=True)
        return self.linear(z)

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight, bias) of the equivalent linear layer on raw features: standardization folded in."""
        w = self.linear.weight / self.std
        b = self.linear.bias - (w * self.mean).sum(dim=1)
        return w.detach().clone(), b.detach().clone()


@dataclass
class HeadFit:
    head: LinearHead
    l2: float
    cv_scores: dict[float, float]  # l2 -> mean held-out accuracy (empty when not cross-validated)
    multi_label: bool
    pseudo_labeled: int = 0  # unlabeled items the final fit also learned from (self-training)


def feature_stats(*parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std (floored) to standardize with, over the rows of all `parts` (pass the labeled and
    the pool features, for stability). Several parts are never joined: their statistics are summed in blocks
    (training.ml.columns), where joining a 100,000-item pool to the labels and centring it took 1 GB."""
    parts = tuple(np.asarray(p, dtype=np.float32) for p in parts if len(p)) or parts[:1]
    if len(parts) == 1:
        return parts[0].mean(axis=0), np.maximum(parts[0].std(axis=0), 1e-3)
    mean, std = column_stats(*parts)
    return mean.astype(np.float32), np.maximum(std, 1e-3).astype(np.float32)


def _targets(labels: list[list[int]], num_classes: int, multi_label: bool) -> torch.Tensor:
    if multi_label:
        y = torch.zeros(len(labels), num_classes)
        for i, ls in enumerate(labels):
            y[i, list(ls)] = 1.0
        return y
    return torch.tensor([ls[0] for ls in labels], dtype=torch.long)


def _fit(
    z: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    l2: float,
    multi_label: bool,
    max_iter: int = 100,
    pool: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted logistic regression on standardized features, full batch L-BFGS. Returns (W, b).

    `pool` (single-label only): (standardized pool rows, their classes) for self-training, learned from as labeled
    rows are (class-balanced over the union) without being joined to the labels' rows in a copy, which took 450 MB
    at a 100,000-item pool of 1,280-d embeddings."""
    n, d = z.shape
    w = torch.zeros(num_classes, d, requires_grad=True)
    b = torch.zeros(num_classes, requires_grad=True)
    if multi_label:
        pos = y.sum(0)
        pos_weight = ((n - pos) / pos.clamp(min=1)).clamp(1.0, 10.0)
        loss_fn = lambda: F.binary_cross_entropy_with_logits(z @ w.T + b, y, pos_weight=pos_weight)  # noqa: E731
    elif pool is None:
        cw = _class_weights(torch.bincount(y, minlength=num_classes).float(), n)
        loss_fn = lambda: F.cross_entropy(z @ w.T + b, y, weight=cw)  # noqa: E731
    else:
        rows, classes = pool
        cw = _class_weights(torch.bincount(torch.cat([y, classes]), minlength=num_classes).float(), n + len(rows))
        total = cw[y].sum() + cw[classes].sum()

        def loss_fn():  # cross_entropy's weighted mean over the labels and the pool rows: both sums over both weights
            own = F.cross_entropy(z @ w.T + b, y, weight=cw, reduction="sum")
            return (own + F.cross_entropy(rows @ w.T + b, classes, weight=cw, reduction="sum")) / total

    opt = torch.optim.LBFGS(
        [w, b], lr=1.0, max_iter=max_iter, history_size=20, tolerance_grad=1e-5, line_search_fn="strong_wolfe"
    )

    def closure():
        opt.zero_grad()
        loss = loss_fn() + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    learned_from = n + (len(pool[0]) if pool is not None else 0)
    with _threads(1 if learned_from * d * num_classes <= SMALL_FIT_WORK else None):
        opt.step(closure)
    return w.detach(), b.detach()


@contextmanager
def _threads(limit: int | None) -> Iterator[None]:
    """torch's intra-op threads at most `limit` inside (None: unchanged), as they were after."""
    before = torch.get_num_threads()
    if limit is None or limit >= before:
        yield
        return
    torch.set_num_threads(limit)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _class_weights(counts: torch.Tensor, n: int) -> torch.Tensor:
    """Class-balanced: every seen class weighs the same in total, whatever its count."""
    return torch.where(counts > 0, n / (counts.clamp(min=1) * (counts > 0).sum()), torch.zeros_like(counts))


def _kept_first(rows: torch.Tensor, classes: torch.Tensor, keep: torch.Tensor, block: int = 8192) -> int:
    """Move the kept rows (and their classes) to the front of `rows`, in place, by swapping each kept row from the
    back with a dropped one from the front, `block` pairs at a time; returns how many are kept. The order among
    the rows changes, which no caller relies on: the next self-training round predicts every row again."""
    k = int(keep.sum())
    dropped = (~keep[:k]).nonzero().squeeze(1)
    kept = keep[k:].nonzero().squeeze(1) + k
    for start in range(0, len(dropped), block):
        a, b = dropped[start : start + block], kept[start : start + block]
        front = rows[a]
        rows[a] = rows[b]
        rows[b] = front
    classes[dropped], classes[kept] = classes[kept], classes[dropped]
    return k


def _stratified_folds(labels: list[list[int]], k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    first = np.array([ls[0] if ls else -1 for ls in labels])
    fold = np.zeros(len(labels), dtype=np.int64)
    for c in np.unique(first):
        idx = np.nonzero(first == c)[0]
        rng.shuffle(idx)
        fold[idx] = np.arange(len(idx)) % k
    return fold


def fit_head(
    features: np.ndarray,
    labels: list[list[int]],
    num_classes: int,
    *,
    multi_label: bool = False,
    l2: float | None = None,
    stats: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int = 0,
    folds: int = 3,
    cv: bool = False,
    unlabeled: np.ndarray | None = None,
    pseudo_threshold: float = PSEUDO_THRESHOLD,
    pseudo_rounds: int = PSEUDO_ROUNDS,
) -> HeadFit:
    """Train the linear head. `l2` None: DEFAULT_L2, or with `cv` the best of L2_GRID by stratified k-fold CV
    (balanced accuracy) when there are enough labels (>= 2 per fold per class on average).

    `unlabeled` (single-label only): features of the unlabeled pool for self-training. The head fitted on the
    labels predicts the pool; items predicted with confidence >= `pseudo_threshold` are added with their
    predicted class and the head is fitted again on both (class-balanced over the union); `pseudo_rounds`
    times, each round relabeling the pool with the latest head. With few labels this is worth several points of
    accuracy on CIFAR-10, and it makes margin sampling's picks count for more (see bench/active_learning.py)."""
    torch.manual_seed(seed)
    x = torch.as_tensor(np.asarray(features, dtype=np.float32))
    if len(x) == 0:
        raise ValueError("no labeled features to train on")
    mean, std = stats if stats is not None else feature_stats(x.numpy())
    head = LinearHead(torch.as_tensor(mean), torch.as_tensor(std), num_classes)
    z = (x - head.mean) / head.std
    y = _targets(labels, num_classes, multi_label)
    cv_scores: dict[float, float] = {}
    if l2 is None:
        l2 = DEFAULT_L2
        if cv and len(labels) >= 2 * folds * max(2, num_classes) and not multi_label:
            fold = _stratified_folds(labels, folds, seed)
            for cand in L2_GRID:
                accs = []
                for f in range(folds):
                    tr, te = fold != f, fold == f
                    w, b = _fit(z[tr], y[tr], num_classes, cand, multi_label, max_iter=50)
                    pred = (z[te] @ w.T + b).argmax(1)
                    yt = y[te]
                    # balanced accuracy: mean recall over the classes present in this fold
                    recalls = [(pred[yt == c] == c).float().mean().item() for c in torch.unique(yt)]
                    accs.append(float(np.mean(recalls)))
                cv_scores[cand] = float(np.mean(accs))
            best = max(cv_scores.values())
            # Among near-ties prefer the stronger regularization (generalizes better to the next round's pool).
            l2 = max(c for c, s in cv_scores.items() if s >= best - 0.005)
    w, b = _fit(z, y, num_classes, float(l2), multi_label)
    pseudo = 0
    if unlabeled is not None and len(unlabeled) and not multi_label:
        # Standardized in one new array (the caller's stays as it was), and never copied again: each round moves the
        # rows it learns from to the front of it.
        zu = torch.as_tensor(np.asarray(unlabeled, dtype=np.float32)).sub(head.mean).div_(head.std)
        for _ in range(pseudo_rounds):
            with torch.no_grad():
                conf, guess = torch.softmax(zu @ w.T + b, dim=1).max(dim=1)
            keep = conf >= pseudo_threshold
            pseudo = _kept_first(zu, guess, keep)
            if not pseudo:
                break
            w, b = _fit(z, y, num_classes, float(l2), multi_label, pool=(zu[:pseudo], guess[:pseudo]))
    with torch.no_grad():
        head.linear.weight.copy_(w)
        head.linear.bias.copy_(b)
    return HeadFit(head=head, l2=float(l2), cv_scores=cv_scores, multi_label=multi_label, pseudo_labeled=pseudo)


@dataclass(frozen=True)
class CrossValHead:
    """cross_val_head's result: out-of-fold probabilities of the labeled items, and each fold head's confidence
    (top probability) on the unlabeled items [folds, m] (None without unlabeled items)."""

    probs: np.ndarray
    unlabeled_confidence: np.ndarray | None


def cross_val_head(
    features: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    *,
    folds: int = 5,
    seed: int = 0,
    l2: float | None = None,
    unlabeled: np.ndarray | None = None,
    stats: tuple[np.ndarray, np.ndarray] | None = None,
    multi_label: bool = False,
    on_fold: Callable[[int, int], None] | None = None,
) -> CrossValHead:
    """Out-of-fold probabilities [n, num_classes] of the head a version trains (fit_head: standardized,
    class-balanced, `l2`, self-trained on `unlabeled` when given), each labeled item predicted by a head fitted on
    the other folds. Folds are stratified; a class with fewer labels than folds is spread as far as it goes. The
    held-out fold is not among the unlabeled items, as a version's holdout is not in the pool it self-trains on.
    Each fold's head also scores the unlabeled items: its confidence (top probability) on them is returned too.
    `multi_label`: `labels` are lists of class indices (an empty one included) and the probabilities independent
    sigmoids; folds are stratified on each item's first class, and nothing self-trains (nor does a multi-label
    version's head). `on_fold(done, total)` after each fold's head, `done` counting from 1."""
    if multi_label:
        targets = [sorted(int(v) for v in t) for t in labels]
        unlabeled = None
    else:
        targets = [[int(v)] for v in np.asarray(labels, dtype=np.int64)]
    x = np.asarray(features, dtype=np.float32)
    if len(targets) < 2:
        raise ValueError("need at least two labeled examples")
    fold = _stratified_folds(targets, max(2, min(folds, len(labels))), seed)
    if stats is None:
        stats = feature_stats(x) if unlabeled is None else feature_stats(x, unlabeled)  # an empty part is skipped
    out = np.zeros((len(targets), num_classes), dtype=np.float32)
    pool_conf = []
    fold_ids = np.unique(fold)
    for done, f in enumerate(fold_ids, start=1):
        train, test = fold != f, fold == f
        fit = fit_head(
            x[train], [targets[i] for i in np.nonzero(train)[0]], num_classes, l2=l2, stats=stats, seed=seed,
            unlabeled=unlabeled, multi_label=multi_label,
        )  # fmt: skip
        out[test] = predict_head(fit.head, x[test], multi_label)
        if unlabeled is not None and len(unlabeled):
            pool_conf.append(predict_head(fit.head, unlabeled).max(axis=1))
        if on_fold is not None:
            on_fold(done, len(fold_ids))
    return CrossValHead(probs=out, unlabeled_confidence=np.stack(pool_conf) if pool_conf else None)


def activation(logits: torch.Tensor, multi_label: bool) -> torch.Tensor:
    return torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)


@torch.inference_mode()
def predict_head(head: LinearHead, features: np.ndarray, multi_label: bool = False, batch: int = 8192) -> np.ndarray:
    # Batches of 8,192 rows: each standardizes a 40 MB copy of its rows (65,536 made 340 MB at 1,280 dimensions).
    x = torch.as_tensor(np.asarray(features, dtype=np.float32))
    out = [activation(head(x[s : s + batch]), multi_label) for s in range(0, len(x), batch)]
    return torch.cat(out).numpy() if out else np.zeros((0, head.linear.out_features), dtype=np.float32)


@torch.inference_mode()
def predict_mc(model: nn.Module, x, T: int = 20, *, multi_label: bool = False, dropout: float = 0.2, seed: int = 0):
    """MC-dropout samples [T, n, C] (numpy) for BALD.

    A LinearHead gets dropout on its standardized inputs; any other module runs with its Dropout layers in
    train mode (BatchNorm stays in eval), e.g. a timm model created with drop_rate > 0."""
    torch.manual_seed(seed)
    if isinstance(model, LinearHead):
        xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
        return torch.stack([activation(model(xt, dropout=dropout), multi_label) for _ in range(T)]).numpy()
    was_training = model.training
    model.eval()
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    if not drops:
        raise ValueError("predict_mc needs a model with Dropout layers (create it with drop_rate > 0)")
    for m in drops:
        m.train()
    try:
        samples = torch.stack([activation(model(x), multi_label) for _ in range(T)])
    finally:
        model.train(was_training)
    return samples.float().cpu().numpy()
