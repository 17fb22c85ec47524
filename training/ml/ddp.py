"""Data-parallel fine-tuning on several GPUs (or CPU processes) with DistributedDataParallel.

The entry point is the round CLI: `torchrun --nproc_per_node=4 -m training.ml.train --config round.json` trains
a fine-tune round with `ddp_finetune` on every rank, then rank 0 alone evaluates, scores the pool and writes
(see train.main). `torchrun -m training.ml.ddp ...` is kept as an alias of `training.ml.train --ddp`.

Every rank sees 1/world of each global batch of `cfg.batch_size` images; DDP averages the gradients, so N ranks
take the same optimizer steps as one process with the whole batch (tests/deploy/test_ddp.py checks this against
a single process). BatchNorm: SyncBatchNorm on CUDA, frozen running statistics on CPU (gloo has no
SyncBatchNorm), so batch statistics never depend on how a batch was split. No class-balanced sampling and no
validation split here (a DistributedSampler shuffles uniformly; every labeled image trains, for cfg.epochs);
otherwise the recipe of `train.finetune`: AdamW, warmup + cosine, label smoothing, AMP on CUDA.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

from training.ml.config import RoundConfig
from training.ml.data import ImageManifestDataset, Opener, build_transform, make_loader
from training.ml.models import create_model, data_config, to_channels_last
from training.ml.train import optimizer_setup

BN_MODES = ("auto", "sync", "frozen", "batch")


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    local_rank: int
    device: str


def init_distributed(device: str | None = None) -> Dist:
    """Join the torchrun process group (NCCL on CUDA, gloo on CPU); a plain process is rank 0 of 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and not (device or "").startswith("cpu")
    if cuda:
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    else:
        device = "cpu"
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    return Dist(rank=rank, world=world, local_rank=local_rank, device=device)


def _resolve_bn(bn: str, world: int, device: str) -> str:
    if bn not in BN_MODES:
        raise ValueError(f"bn must be one of {BN_MODES}, not {bn!r}")
    if bn == "auto":
        return "batch" if world == 1 else ("sync" if device.startswith("cuda") else "frozen")
    if bn == "sync" and not device.startswith("cuda"):
        raise ValueError("SyncBatchNorm needs CUDA; use bn='frozen' on CPU")
    return bn


def _freeze_bn(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def ddp_finetune(
    cfg: RoundConfig,
    paths: Sequence[Any],
    labels: Sequence[Sequence[int]],
    *,
    dist_info: Dist | None = None,
    opener: Opener | None = None,
    augment: bool = True,
    bn: str = "auto",
    progress: Callable[[float], None] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Fine-tune `cfg.backbone` on (paths, labels) across the process group.

    Returns (the unwrapped model in eval mode, info) on every rank. `cfg.batch_size` is the global batch; it is
    capped at the labeled set and rounded down to a multiple of the world size (info["global_batch"]).
    """
    d = dist_info or init_distributed(cfg.device)
    if len(paths) != len(labels):
        raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
    # The global batch: at most the labeled set (a first round may have fewer images than cfg.batch_size),
    # rounded down to a multiple of the world size so every rank takes the same share.
    batch = min(cfg.batch_size, len(paths))
    batch -= batch % d.world
    if batch < d.world:
        raise ValueError(f"{len(paths)} labeled images cannot fill one batch across {d.world} processes")
    bn = _resolve_bn(bn, d.world, d.device)
    torch.manual_seed(cfg.seed)  # same initial classifier on every rank (DDP also broadcasts rank 0's)
    c = cfg.num_classes
    model = create_model(cfg.backbone, c, cfg.weights, drop_rate=cfg.drop_rate)
    dcfg = data_config(model)
    if bn == "sync":
        from timm.layers import convert_sync_batchnorm

        model = convert_sync_batchnorm(model)
    model = to_channels_last(model.to(d.device))
    targets = [([1.0 if k in set(ls) else 0.0 for k in range(c)] if cfg.multi_label else int(ls[0])) for ls in labels]
    dataset = ImageManifestDataset(
        list(paths), targets, build_transform(dcfg, cfg.image_size, is_training=augment, crop_pct=cfg.crop_pct),
        opener=opener,
    )  # fmt: skip
    # Same permutation on every rank (seed + epoch); rank r takes positions r, r + world, ... so the ranks'
    # k-th batches together are exactly the k-th global batch of one process.
    sampler = DistributedSampler(
        dataset, num_replicas=d.world, rank=d.rank, shuffle=True, seed=cfg.seed, drop_last=True
    )  # fmt: skip
    loader = make_loader(
        dataset, batch_size=batch // d.world, sampler=sampler, num_workers=cfg.resolved_num_workers(),
        device=d.device, drop_last=True, seed=cfg.seed,
    )  # fmt: skip
    ddp = (
        DistributedDataParallel(model, device_ids=[d.local_rank] if d.device.startswith("cuda") else None)
        if d.world > 1
        else model
    )
    opt, sched, scaler, use_amp = optimizer_setup(model, cfg, steps_per_epoch=len(loader), device=d.device)
    total = max(1, cfg.epochs * max(1, len(loader)))  # optimizer steps, for progress
    history, step, started = [], 0, time.monotonic()
    for epoch in range(cfg.epochs):
        sampler.set_epoch(epoch)
        ddp.train()
        if bn == "frozen":
            _freeze_bn(model)
        t0, seen, loss_sum = time.monotonic(), 0, 0.0
        for x, y in loader:
            x = x.to(d.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            y = y.to(d.device, non_blocking=True)
            with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
                logits = ddp(x)
                if cfg.multi_label:
                    loss = F.binary_cross_entropy_with_logits(logits.float(), y.float())
                else:
                    loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()  # DDP all-reduces (averages) the gradients here
            scaler.step(opt)
            scaler.update()
            sched.step()
            step += 1
            seen += len(x)
            loss_sum += float(loss.detach()) * len(x)
            if progress and d.rank == 0:
                progress(step / total)
        epoch_loss = torch.tensor([loss_sum, float(seen)], dtype=torch.float64)
        if d.world > 1:
            epoch_loss = epoch_loss.to(d.device)
            dist.all_reduce(epoch_loss)
        history.append(
            {
                "epoch": epoch,
                "train_loss": float(epoch_loss[0] / max(float(epoch_loss[1]), 1.0)),
                "seconds": time.monotonic() - t0,
            }
        )
    info = {
        "train_size": len(paths),
        "world_size": d.world,
        "global_batch": batch,
        "bn": bn,
        "epochs_run": len(history),
        "history": history,
        "seconds": time.monotonic() - started,
        "device": d.device,
    }
    return model.eval(), info


def main(argv: Sequence[str] | None = None) -> int:
    """`torchrun -m training.ml.ddp ARGS` is `torchrun -m training.ml.train --ddp ARGS` (the old entry point)."""
    from training.ml.train import main as train_main

    return train_main([*(sys.argv[1:] if argv is None else argv), "--ddp"])


if __name__ == "__main__":
    sys.exit(main())
