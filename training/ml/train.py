"""Fine-tuning the whole network in one process, and the pieces the data-parallel trainer (ddp.py) shares with it.

A zero-initialised classifier, BatchNorm kept on the pretrained running statistics (a pretrained backbone), timm
augmentation, class-balanced sampling, AdamW with warmup + cosine schedule, label smoothing, AMP on CUDA, early
stopping on a validation split of the labeled set (best weights kept). The round CLI is launch.py."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import WeightedRandomSampler

from training.ml.config import RoundConfig
from training.ml.data import ImageManifestDataset, Opener, make_loader, round_transform
from training.ml.heads import activation
from training.ml.models import create_model, data_config, to_channels_last


def split_train_val(labels: Sequence[Sequence[int]], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (by first label) train/val indices; no validation when it would hold under 1 item per 2 classes."""
    n = len(labels)
    n_val = round(n * fraction)
    if fraction <= 0 or n_val < 2 or n - n_val < 2:
        return np.arange(n), np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    first = np.array([ls[0] if len(ls) else -1 for ls in labels])
    val = []
    for c in np.unique(first):
        idx = np.nonzero(first == c)[0]
        rng.shuffle(idx)
        take = round(len(idx) * fraction)
        if len(idx) >= 3:
            take = max(take, 1)
        val.extend(idx[:take].tolist())
    val_arr = np.sort(np.asarray(val, dtype=np.int64))
    train = np.setdiff1d(np.arange(n), val_arr)
    return train, val_arr


def _target_tensor(labels: Sequence[Sequence[int]], num_classes: int, multi_label: bool) -> list:
    if multi_label:
        out = []
        for ls in labels:
            v = np.zeros(num_classes, dtype=np.float32)
            v[list(ls)] = 1.0
            out.append(v)
        return out
    return [int(ls[0]) for ls in labels]


def balanced_weights(labels: Sequence[Sequence[int]]) -> torch.Tensor:
    """Sampling weight of each item: 1 / the number of items sharing its first label (class-balanced)."""
    first = np.array([ls[0] if len(ls) else -1 for ls in labels])
    _, inverse, counts = np.unique(first, return_inverse=True, return_counts=True)
    return torch.as_tensor(1.0 / counts[inverse], dtype=torch.double)


def _balanced_sampler(labels: Sequence[Sequence[int]], seed: int) -> WeightedRandomSampler:
    return WeightedRandomSampler(
        balanced_weights(labels),
        num_samples=len(labels),
        replacement=True,
        generator=torch.Generator().manual_seed(seed),
    )


def optimizer_setup(model: nn.Module, cfg: RoundConfig, *, steps_per_epoch: int, device: str):
    """AdamW (no weight decay on norms and biases), linear warm-up then cosine, and an AMP scaler on CUDA.

    Shared by the single-process fine-tune and the DDP launcher so both train the same way.
    """
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr or 5e-4,
    )
    steps_per_epoch = max(1, steps_per_epoch)
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = min(steps_per_epoch, total // 10 + 1)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    use_amp = cfg.amp and device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    return opt, sched, scaler, use_amp


def bn_frozen(cfg: RoundConfig) -> bool:
    """Whether fine-tuning keeps BatchNorm on its pretrained running statistics: yes for every pretrained backbone;
    a random one ("none") needs batch statistics to train at all."""
    return cfg.weights != "none"


def freeze_bn(model: nn.Module) -> None:
    """BatchNorm layers to eval mode (running statistics used, not updated; their scale and shift still learn).

    Batch statistics make a pretrained network another network: on the demo digits (dark strokes on white) the
    probe fitted on Lite0's features scores 1.00 on its own training images with the running statistics and 0.14
    with batch statistics, the same weights; and what is trained on batch statistics is then evaluated on running
    statistics that lag behind them (momentum 0.1, 3 steps an epoch)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def finetune(
    cfg: RoundConfig,
    paths: Sequence[Any],
    labels: Sequence[Sequence[int]],
    *,
    opener: Opener | None = None,
    progress: Callable[[float], None] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Fine-tune `cfg.backbone` on (paths, labels). Returns (best model in eval mode, info dict)."""
    torch.manual_seed(cfg.seed)
    device = cfg.resolved_device()
    c = cfg.num_classes
    model = create_model(cfg.backbone, c, cfg.weights, drop_rate=cfg.drop_rate)  # its classifier starts at zero
    dcfg = data_config(model)
    model = to_channels_last(model.to(device))
    tr_idx, val_idx = split_train_val(labels, cfg.val_fraction, cfg.seed)
    targets = _target_tensor(labels, c, cfg.multi_label)
    train_ds = ImageManifestDataset(
        [paths[i] for i in tr_idx],
        [targets[i] for i in tr_idx],
        round_transform(dcfg, cfg, is_training=True),
        opener=opener,
    )
    sampler = None if cfg.multi_label else _balanced_sampler([labels[i] for i in tr_idx], cfg.seed)
    workers = cfg.resolved_num_workers()
    bs = max(1, min(cfg.batch_size, len(train_ds)))
    train_loader = make_loader(
        train_ds, batch_size=bs, shuffle=True, sampler=sampler, num_workers=workers, device=device,
        drop_last=len(train_ds) > bs, seed=cfg.seed,
    )  # fmt: skip
    val_loader = None
    if len(val_idx):
        val_ds = ImageManifestDataset(
            [paths[i] for i in val_idx],
            [targets[i] for i in val_idx],
            round_transform(dcfg, cfg, is_training=False),
            opener=opener,
        )
        val_loader = make_loader(val_ds, batch_size=cfg.score_batch_size, num_workers=workers, device=device)
    opt, sched, scaler, use_amp = optimizer_setup(model, cfg, steps_per_epoch=len(train_loader), device=device)
    total = max(1, cfg.epochs * max(1, len(train_loader)))  # optimizer steps, for progress
    best_state, best_score, bad_epochs, history = None, -float("inf"), 0, []
    steps = StepCounter(total, progress)
    for epoch in range(cfg.epochs):
        model.train()
        if bn_frozen(cfg):
            freeze_bn(model)
        t0 = time.monotonic()
        loss_sum, seen = train_epoch(
            model, train_loader, opt=opt, sched=sched, scaler=scaler, use_amp=use_amp, cfg=cfg, device=device,
            on_step=steps,
        )  # fmt: skip
        record = {"epoch": epoch, "train_loss": loss_sum / max(seen, 1), "seconds": time.monotonic() - t0}
        if val_loader is not None:
            record.update(_validate(model, val_loader, device, cfg.multi_label, use_amp))
            score = record["val_score"]
            if score > best_score + 1e-4:
                best_score, bad_epochs = score, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad_epochs += 1
        history.append(record)
        if val_loader is not None and bad_epochs >= cfg.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    if progress:
        progress(1.0)
    info = {"train_size": len(tr_idx), "val_size": len(val_idx), "epochs_run": len(history), "history": history}
    if history and val_loader is not None:
        info["best_val_score"] = best_score
    return model.eval(), info


class StepCounter:
    """Counts optimizer steps and reports the fraction done to `progress` (when there is one)."""

    def __init__(self, total: int, progress: Callable[[float], None] | None) -> None:
        self.total, self.progress, self.step = max(1, total), progress, 0

    def __call__(self) -> None:
        self.step += 1
        if self.progress:
            self.progress(self.step / self.total)


def train_epoch(
    forward: nn.Module,
    loader,
    *,
    opt,
    sched,
    scaler,
    use_amp: bool,
    cfg: RoundConfig,
    device: str,
    on_step: Callable[[], None] | None = None,
) -> tuple[float, int]:
    """One pass over `loader`, the one epoch loop of single-process and DDP fine-tuning: forward (the model, or its
    DistributedDataParallel wrapper, which all-reduces the gradients during backward), loss, optimizer, AMP scaler
    and scheduler steps. Returns (loss summed over items, items seen); `on_step` runs after every step."""  # fmt: skip
    seen, loss_sum = 0, 0.0
    for x, y in loader:
        x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        y = y.to(device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
            logits = forward(x)
            if cfg.multi_label:
                loss = F.binary_cross_entropy_with_logits(logits.float(), y.float())
            else:
                loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
        seen += len(x)
        loss_sum += float(loss.detach()) * len(x)
        if on_step is not None:
            on_step()
    return loss_sum, seen


@torch.inference_mode()
def validation_sums(model: nn.Module, loader, device: str, multi_label: bool, use_amp: bool) -> torch.Tensor:
    """[correct, loss sum, count] over `loader`, float64 (DDP ranks all-reduce these before validation_record)."""
    model.eval()
    correct, loss_sum, total = 0, 0.0, 0
    for x, y in loader:
        x = x.to(device).contiguous(memory_format=torch.channels_last)
        y = y.to(device)
        with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
            logits = model(x).float()
        if multi_label:
            loss_sum += float(F.binary_cross_entropy_with_logits(logits, y.float(), reduction="sum"))
            correct += int(((logits > 0) == (y > 0.5)).all(1).sum())
        else:
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
        total += len(x)
    return torch.tensor([float(correct), loss_sum, float(total)], dtype=torch.float64)


def validation_record(sums: torch.Tensor) -> dict[str, float]:
    correct, loss_sum, total = (float(v) for v in sums)
    acc, loss = correct / max(total, 1.0), loss_sum / max(total, 1.0)
    # Accuracy decides; loss breaks ties (tiny validation sets tie often).
    return {"val_acc": acc, "val_loss": loss, "val_score": acc - 1e-3 * loss}


def _validate(model: nn.Module, loader, device: str, multi_label: bool, use_amp: bool) -> dict[str, float]:
    return validation_record(validation_sums(model, loader, device, multi_label, use_amp))


@torch.inference_mode()
def predict_loader(
    model: nn.Module, loader, device: str, multi_label: bool, use_amp: bool = False, *, features: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """(probs [n, C], pooled features [n, d] or None) over a loader that yields (x, index), in index order."""
    model.eval()
    probs, feats, order = [], [], []
    for x, idx in loader:
        x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
            pooled = model.forward_head(model.forward_features(x), pre_logits=True)
            logits = model.get_classifier()(pooled)
        probs.append(activation(logits.float(), multi_label).cpu().numpy())
        if features:
            feats.append(pooled.float().cpu().numpy())
        order.append(idx.numpy())
    if not probs:
        return np.zeros((0, 0), dtype=np.float32), None
    inv = np.argsort(np.concatenate(order))
    p = np.concatenate(probs)[inv]
    f = np.concatenate(feats)[inv] if features else None
    return p, f
