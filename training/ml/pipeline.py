"""One active-learning round end to end: embed -> train -> evaluate -> score -> rank, plus cold start and
re-scoring with an existing checkpoint. Inputs are manifests (id, path|key, [class indices]); outputs are a
metrics dict, a checkpoint folder and per-pool-item probabilities, uncertainty and queue priority.

`progress(done, total, stage)` (labeling.constants.Progress): stage in "embed" | "train" | "evaluate" | "score";
done / total is the OVERALL progress of the call, non-decreasing, so it can drive one progress bar."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from training.ml import strategies
from training.ml.checkpoint import head_model_state, load_checkpoint, mirror_averaged, read_config, save_checkpoint
from training.ml.config import RoundConfig
from training.ml.data import ImageManifestDataset, Opener, make_loader, round_transform
from training.ml.embeddings import EmbeddingStore
from training.ml.evaluate import evaluate
from training.ml.heads import LinearHead, activation, feature_stats, fit_head, predict_head, predict_mc
from training.ml.models import create_backbone, data_config
from training.ml.ranking import DEFAULT_SELECTION_BATCH, uncertainty_and_priority
from training.ml.train import finetune, predict_loader

if TYPE_CHECKING:  # the type only: training/ml never imports labeling at run time
    from labeling.constants import Progress  # noqa: TID251

PROGRESS_TOTAL = 10_000  # the overall fraction in parts of this: finer than the 4 decimals a run stores
# trainer(cfg, paths, labels, opener=..., progress=...) -> (model in eval mode, info): train.finetune or DDP (launch)
Trainer = Callable[..., tuple[torch.nn.Module, dict[str, Any]]]
Labeled = Sequence[tuple[int, Any, Sequence[int]]]
Pool = Sequence[tuple[int, Any]]

# Share of the overall progress bar each stage takes, per mode.
WEIGHTS = {
    "head": {"embed": 0.80, "train": 0.08, "evaluate": 0.02, "score": 0.10},
    "finetune": {"embed": 0.05, "train": 0.75, "evaluate": 0.05, "score": 0.15},
}


@dataclass
class RoundResult:
    metrics: dict[str, Any]
    checkpoint_dir: Path
    device: str
    pool_ids: np.ndarray  # int64 [n]
    pool_probs: np.ndarray  # float32 [n, C]
    pool_uncertainty: np.ndarray  # float32 [n], the strategy's base score (higher = less sure)
    pool_priority: np.ndarray  # float32 [n], higher = serve first
    embedding_dim: int
    timings: dict[str, float] = field(default_factory=dict)
    pool_random_ids: np.ndarray | None = None  # int64, the top batch's random draws (ranking.py); None: not recorded


@dataclass
class ScoreResult:
    pool_ids: np.ndarray
    pool_probs: np.ndarray
    pool_uncertainty: np.ndarray
    pool_priority: np.ndarray
    device: str
    pool_random_ids: np.ndarray | None = None  # int64, the top batch's random draws (ranking.py)


class _Tracker:
    """Turns per-stage fractions into one overall, non-decreasing fraction."""

    def __init__(self, progress: Progress | None, weights: dict[str, float]) -> None:
        self.progress, self.weights, self.done, self.last = progress, weights, 0.0, 0.0

    def stage(self, name: str) -> Callable[[float], None]:
        base, width = self.done, self.weights.get(name, 0.0)
        self.done += width

        def report(fraction: float) -> None:
            value = min(1.0, base + width * min(max(fraction, 0.0), 1.0))
            if self.progress and value >= self.last:
                self.last = value
                self.progress(round(value * PROGRESS_TOTAL), PROGRESS_TOTAL, name)

        report(0.0)
        return report


def _validate_manifest(cfg: RoundConfig, labeled: Labeled, holdout: Labeled) -> None:
    c = cfg.num_classes
    if c < 1:
        raise ValueError("cfg.class_names is empty")
    if not cfg.multi_label and c < 2:
        raise ValueError("single-label training needs at least 2 classes")
    if not labeled:
        raise ValueError("no labeled items to train on")
    for name, rows in (("labeled", labeled), ("holdout", holdout)):
        for item_id, _, classes in rows:
            if not cfg.multi_label and len(classes) != 1:
                raise ValueError(f"{name} item {item_id}: single-label needs exactly one class, got {list(classes)}")
            bad = [k for k in classes if not 0 <= int(k) < c]
            if bad:
                raise ValueError(f"{name} item {item_id}: class index {bad[0]} outside 0..{c - 1}")


def _embed(store: EmbeddingStore, cfg: RoundConfig, rows: Sequence[tuple], opener, report) -> None:
    ids = [int(r[0]) for r in rows]
    paths = [r[1] for r in rows]
    store.compute(ids, paths, cfg, (lambda d, t, message="": report(d / t if t else 1.0)), opener=opener)
    report(1.0)


def run_round(
    cfg: RoundConfig,
    labeled: Labeled,
    holdout: Labeled,
    pool: Pool,
    cache_dir: Path,
    out_dir: Path,
    progress: Progress | None = None,
    opener: Opener | None = None,
    trainer: Trainer | None = None,
) -> RoundResult:
    """Train on `labeled`, measure on `holdout` (never chosen by active learning), score and rank `pool`.

    `trainer` replaces `train.finetune` in finetune mode (the DDP trainer under torchrun)."""
    _validate_manifest(cfg, labeled, holdout)
    t_start = time.monotonic()
    timings: dict[str, float] = {}
    torch.manual_seed(cfg.seed)
    device = cfg.resolved_device()
    tracker = _Tracker(progress, WEIGHTS[cfg.mode])
    store = EmbeddingStore(cache_dir)
    labels = [list(map(int, r[2])) for r in labeled]
    pool_ids = np.asarray([int(r[0]) for r in pool], dtype=np.int64)
    c = cfg.num_classes
    info: dict[str, Any] = {}

    report = tracker.stage("embed")
    t = time.monotonic()
    if cfg.mode == "head":
        _embed(store, cfg, [*labeled, *holdout, *pool], opener, report)
    report(1.0)
    timings["embed"] = time.monotonic() - t

    report = tracker.stage("train")
    t = time.monotonic()
    if cfg.mode == "head":
        lab_emb = store.get([r[0] for r in labeled], cfg)
        pool_emb = store.get(pool_ids.tolist(), cfg)
        stats = feature_stats(lab_emb, pool_emb)
        fit = fit_head(
            lab_emb,
            labels,
            c,
            multi_label=cfg.multi_label,
            l2=cfg.head_l2,
            stats=stats,
            seed=cfg.seed,
            unlabeled=pool_emb if cfg.self_training else None,
        )
        head = fit.head
        info = {"train_size": len(labeled), "val_size": 0, "head_l2": fit.l2, "pseudo_labeled": fit.pseudo_labeled}
        backbone = create_backbone(cfg.backbone, cfg.weights)
        state = head_model_state(backbone, head, cfg.backbone)
        dcfg = data_config(backbone)
        model = None
    else:
        model, info = (trainer or finetune)(cfg, [r[1] for r in labeled], labels, opener=opener, progress=report)
        state = model.state_dict()
        dcfg = data_config(model)
        head = None
    report(1.0)
    timings["train"] = time.monotonic() - t

    report = tracker.stage("evaluate")
    t = time.monotonic()
    if holdout:
        hold_probs, _ = _predict(cfg, head, model, store, holdout, opener, device, dcfg)
        targets = [list(map(int, r[2])) for r in holdout]
        metrics = evaluate(hold_probs, targets, cfg.class_names, cfg.multi_label, cfg.hierarchy)
    else:
        metrics = evaluate(np.zeros((0, c)), [], cfg.class_names, cfg.multi_label, cfg.hierarchy)
    report(1.0)
    timings["evaluate"] = time.monotonic() - t

    report = tracker.stage("score")
    t = time.monotonic()
    if len(pool):
        probs, pool_feats = _predict(cfg, head, model, store, pool, opener, device, dcfg, report=report,
                                     feats=pool_emb if head is not None else None)  # fmt: skip
        mc = _mc_samples(cfg, head, model, store, pool, opener, device, dcfg, pool_feats)
        if cfg.mode == "head":
            lab_feats = lab_emb
        else:
            _, lab_feats = _predict(cfg, None, model, store, labeled, opener, device, dcfg)
        uncertainty, priority, picks = uncertainty_and_priority(cfg, probs, pool_feats, lab_feats, mc)
    else:
        probs = np.zeros((0, c), dtype=np.float32)
        uncertainty = priority = np.zeros(0, dtype=np.float32)
        picks = np.zeros(0, dtype=np.int64)
    report(1.0)
    timings["score"] = time.monotonic() - t

    mean, std = dcfg["mean"], dcfg["std"]
    timings["total"] = time.monotonic() - t_start
    metrics.update(info)
    metrics.update(holdout_size=len(holdout), pool_size=len(pool), timings=timings, device=device, mode=cfg.mode)
    ckpt_config = {
        "architecture": cfg.backbone,
        "class_names": list(cfg.class_names),
        "num_classes": c,
        "multi_label": cfg.multi_label,
        "activation": "sigmoid" if cfg.multi_label else "softmax",
        "mode": cfg.mode,
        "backbone_weights": cfg.weights,
        "preprocessing": {
            "image_size": cfg.image_size,
            "mean": list(mean),
            "std": list(std),
            "interpolation": dcfg.get("interpolation", "bicubic"),
            "crop_pct": cfg.crop_pct,
            "squash_aspect": cfg.squash_aspect,
            "resize": "shorter side to image_size / crop_pct, then center crop; images more elongated than"
            " squash_aspect (longer / shorter side) are first resized to a square of that size",
            # A head on flip-averaged embeddings predicts the mean over the image and its mirror.
            "flip_average": bool(cfg.flip_average and cfg.mode == "head"),
        },
        "head": {"type": "linear", "in_features": int(next(iter(_classifier_shape(state, c)))), "out_features": c},
        "metrics": {k: v for k, v in metrics.items() if k not in ("reliability",)},
        "round_config": cfg.to_dict(),
    }
    ckpt = save_checkpoint(out_dir, state, ckpt_config)
    emb_dim = int(pool_feats.shape[1]) if len(pool) else int(ckpt_config["head"]["in_features"])
    return RoundResult(
        metrics=metrics,
        checkpoint_dir=ckpt,
        device=device,
        pool_ids=pool_ids,
        pool_probs=np.asarray(probs, dtype=np.float32),
        pool_uncertainty=uncertainty,
        pool_priority=priority,
        embedding_dim=emb_dim,
        timings=timings,
        pool_random_ids=pool_ids[picks],
    )


def _classifier_shape(state: dict[str, torch.Tensor], c: int):
    """in_features of the classifier: the last 2-d weight whose first dimension is C."""
    for key in reversed(list(state)):
        v = state[key]
        if v.ndim == 2 and v.shape[0] == c:
            return (v.shape[1],)
    return (0,)


def _predict(
    cfg: RoundConfig,
    head: LinearHead | None,
    model: torch.nn.Module | None,
    store: EmbeddingStore,
    rows: Sequence[tuple],
    opener,
    device: str,
    dcfg: dict,
    report: Callable[[float], None] | None = None,
    feats: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(probs, features) for rows: from cached embeddings with a head (`feats` when the caller has them already: a
    second copy of a 100,000-item pool's is 500 MB), by a forward pass with a model."""
    if head is not None:
        if feats is None:
            feats = store.get([int(r[0]) for r in rows], cfg)
        return predict_head(head, feats, cfg.multi_label), feats
    ds = ImageManifestDataset(
        [r[1] for r in rows],
        None,
        round_transform(dcfg, cfg, is_training=False),
        opener=opener,
        draft_size=cfg.image_size,
    )
    loader = make_loader(ds, batch_size=cfg.score_batch_size, num_workers=cfg.resolved_num_workers(), device=device)
    model = model.to(device)
    use_amp = cfg.amp and device.startswith("cuda")
    probs, feats = predict_loader(model, loader, device, cfg.multi_label, use_amp, features=True)
    if report:
        report(1.0)
    return probs, feats


def _mc_samples(cfg, head, model, store, rows, opener, device, dcfg, feats) -> np.ndarray | None:
    if cfg.strategy != "bald":
        return None
    if head is not None:
        return predict_mc(head, feats, cfg.mc_samples, multi_label=cfg.multi_label, dropout=cfg.drop_rate)
    # Fine-tuned timm models drop out right before the classifier: sample on the pooled features.
    classifier = model.get_classifier()
    x = torch.as_tensor(feats, device=device)
    torch.manual_seed(cfg.seed)
    with torch.inference_mode():
        samples = [
            activation(classifier(torch.nn.functional.dropout(x, p=cfg.drop_rate, training=True)), cfg.multi_label)
            for _ in range(cfg.mc_samples)
        ]
    return torch.stack(samples).float().cpu().numpy()


def cold_start_priorities(
    pool: Pool,
    cache_dir: Path,
    cfg: RoundConfig,
    progress: Progress | None = None,
    opener: Opener | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, priority) for a project with no model yet: typical, diverse images first (class-agnostic,
    pretrained embeddings). strategy "random" gives a seeded shuffle instead."""
    tracker = _Tracker(progress, {"embed": 0.9, "score": 0.1})
    ids = np.asarray([int(r[0]) for r in pool], dtype=np.int64)
    store = EmbeddingStore(cache_dir)
    report = tracker.stage("embed")
    _embed(store, cfg, pool, opener, report)
    report = tracker.stage("score")
    emb = store.get(ids.tolist(), cfg) if len(ids) else np.zeros((0, 1), dtype=np.float32)
    priority = strategies.rank_pool(
        cfg.strategy, None, emb, None, cfg.selection_batch or DEFAULT_SELECTION_BATCH, cfg.seed
    )
    report(1.0)
    return ids, priority.astype(np.float32)


def score_pool(
    checkpoint_dir: Path,
    pool: Pool,
    cache_dir: Path,
    cfg: RoundConfig,
    progress: Progress | None = None,
    opener: Opener | None = None,
    labeled: Pool | None = None,
) -> ScoreResult:
    """Re-score `pool` with an existing checkpoint (e.g. after an import). The checkpoint decides the model and
    preprocessing; `cfg` the strategy, device and batch sizes. `labeled` (id, path) lets diversity strategies
    keep away from what is already labeled."""
    ck = read_config(checkpoint_dir)
    cfg = RoundConfig.from_dict(
        {
            **cfg.to_dict(),
            "backbone": ck["architecture"],
            "weights": ck.get("backbone_weights", cfg.weights),
            "image_size": ck["preprocessing"]["image_size"],
            "crop_pct": ck["preprocessing"].get("crop_pct", cfg.crop_pct),
            "squash_aspect": ck["preprocessing"].get("squash_aspect"),  # older checkpoints: centre crop only
            "flip_average": mirror_averaged(ck),
            "class_names": ck["class_names"],
            "multi_label": ck.get("multi_label", False),
            "mode": ck.get("mode", "head"),
        }
    )
    device = cfg.resolved_device()
    tracker = _Tracker(progress, WEIGHTS["head"] if cfg.mode == "head" else {"embed": 0.0, "score": 1.0})
    store = EmbeddingStore(cache_dir)
    ids = np.asarray([int(r[0]) for r in pool], dtype=np.int64)
    model, _ = load_checkpoint(checkpoint_dir, drop_rate=0.0)
    report = tracker.stage("embed")
    labeled = list(labeled or [])
    if cfg.mode == "head":
        _embed(store, cfg, [*pool, *labeled], opener, report)
        classifier = model.get_classifier()
        feats = store.get(ids.tolist(), cfg)
        head = LinearHead(torch.zeros(feats.shape[1]), torch.ones(feats.shape[1]), cfg.num_classes)
        with torch.no_grad():
            head.linear.weight.copy_(classifier.weight)
            head.linear.bias.copy_(classifier.bias)
        model_for_predict = None
    else:
        head, model_for_predict = None, model
    report = tracker.stage("score")
    dcfg = {"mean": ck["preprocessing"]["mean"], "std": ck["preprocessing"]["std"]}
    dcfg["interpolation"] = ck["preprocessing"].get("interpolation", "bicubic")
    if len(pool):
        probs, pool_feats = _predict(cfg, head, model_for_predict, store, pool, opener, device, dcfg)
        lab_feats = None
        if labeled:
            _, lab_feats = _predict(cfg, head, model_for_predict, store, [(i, p, [0]) for i, p in labeled], opener,
                                    device, dcfg)  # fmt: skip
        mc = _mc_samples(cfg, head, model_for_predict, store, pool, opener, device, dcfg, pool_feats)
        uncertainty, priority, picks = uncertainty_and_priority(cfg, probs, pool_feats, lab_feats, mc)
    else:
        probs = np.zeros((0, cfg.num_classes), dtype=np.float32)
        uncertainty = priority = np.zeros(0, dtype=np.float32)
        picks = np.zeros(0, dtype=np.int64)
    report(1.0)
    return ScoreResult(ids, np.asarray(probs, np.float32), uncertainty, priority, device, ids[picks])
