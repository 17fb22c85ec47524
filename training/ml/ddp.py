"""Data-parallel fine-tuning on several GPUs (or CPU processes) with DistributedDataParallel.

The entry point is the round CLI: `torchrun --nproc_per_node=4 -m training.ml.launch --config round.json` trains
a fine-tune round with `ddp_finetune` on every rank, then rank 0 alone evaluates, scores the pool and writes
(see launch.main).

Every rank sees 1/world of each global batch of `cfg.batch_size` images; DDP averages the gradients, so N ranks
take the same optimizer steps as one process with the whole batch (tests/deploy/test_ddp.py checks this against
a single process). BatchNorm: a pretrained backbone keeps its running statistics (frozen), as `train.finetune`
does; a random one uses SyncBatchNorm on CUDA, frozen running statistics on CPU (gloo has no SyncBatchNorm), so
batch statistics never depend on how a batch was split. The classifier starts at zero, as in `train.finetune`.

The recipe of `train.finetune`: the same stratified validation split (`split_train_val`), class-balanced sampling
of the training part (single-label; multi-label shuffles uniformly), AdamW, warmup + cosine, label smoothing, AMP
on CUDA, and early stopping on the validation score with the best weights restored. Sampling: every rank draws
the same global index sequence each epoch (`DistributedWeightedSampler`) and takes its positions of it, so the
ranks' k-th batches together are the k-th global batch of one process. Validation: each rank scores its slice of
the validation set and the sums are all-reduced, so every rank computes the same score and stops at the same
epoch (a rank leaving the loop alone would deadlock the others' collectives).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Sampler
from torch.utils.data.distributed import DistributedSampler

from training.ml.config import RoundConfig
from training.ml.data import ImageManifestDataset, Opener, make_loader, round_transform
from training.ml.models import create_model, data_config, to_channels_last
from training.ml.train import (
    StepCounter,
    balanced_weights,
    bn_frozen,
    freeze_bn,
    optimizer_setup,
    split_train_val,
    train_epoch,
    validation_record,
    validation_sums,
)

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


def _resolve_bn(bn: str, world: int, device: str, *, pretrained: bool = False) -> str:
    """ "auto": frozen running statistics for a pretrained backbone, as train.finetune keeps them (train.bn_frozen);
    a random one trains on batch statistics, synced across GPUs (frozen on CPU, where gloo has no SyncBatchNorm)."""
    if bn not in BN_MODES:
        raise ValueError(f"bn must be one of {BN_MODES}, not {bn!r}")
    if bn == "auto":
        if pretrained:
            return "frozen"
        return "batch" if world == 1 else ("sync" if device.startswith("cuda") else "frozen")
    if bn == "sync" and not device.startswith("cuda"):
        raise ValueError("SyncBatchNorm needs CUDA; use bn='frozen' on CPU")
    return bn


class DistributedWeightedSampler(Sampler[int]):
    """Weighted sampling with replacement, split over ranks like DistributedSampler.

    Each epoch every rank draws the same global sequence of len(weights) indices (a generator seeded with
    seed + epoch), cuts it to a multiple of the world size (drop_last: every rank gets as many) and takes positions
    rank, rank + world, ... With a per-rank batch of global_batch / world, the ranks' k-th batches together are
    positions [k * global_batch, (k + 1) * global_batch) of the global sequence: the k-th batch of one process.
    Call set_epoch before each epoch.
    """

    def __init__(self, weights: torch.Tensor, *, num_replicas: int, rank: int, seed: int = 0) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside a world of {num_replicas}")
        self.weights = torch.as_tensor(weights, dtype=torch.double)
        self.num_replicas, self.rank, self.seed, self.epoch = num_replicas, rank, seed, 0
        self.total = len(self.weights) - len(self.weights) % num_replicas

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_indices(self) -> torch.Tensor:
        """This epoch's sequence before the split over ranks (the same on every rank)."""
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        idx = torch.multinomial(self.weights, num_samples=len(self.weights), replacement=True, generator=g)
        return idx[: self.total]

    def __iter__(self) -> Iterator[int]:
        return iter(self.global_indices()[self.rank :: self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.total // self.num_replicas


def _all_reduce_sum(t: torch.Tensor, d: Dist) -> torch.Tensor:
    if d.world == 1:
        return t
    t = t.to(d.device)
    dist.all_reduce(t)
    return t.cpu()


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

    Returns (the unwrapped model in eval mode, with the best validation epoch's weights, info) on every rank.
    `cfg.batch_size` is the global batch; it is capped at the training part of the labeled set and rounded down to
    a multiple of the world size (info["global_batch"]).
    """
    d = dist_info or init_distributed(cfg.device)
    if len(paths) != len(labels):
        raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
    tr_idx, val_idx = split_train_val(labels, cfg.val_fraction, cfg.seed)  # the same on every rank
    # The global batch: at most the training set (a first round may have fewer images than cfg.batch_size),
    # rounded down to a multiple of the world size so every rank takes the same share.
    batch = min(cfg.batch_size, len(tr_idx))
    batch -= batch % d.world
    if batch < d.world:
        raise ValueError(f"{len(tr_idx)} training images cannot fill one batch across {d.world} processes")
    bn = _resolve_bn(bn, d.world, d.device, pretrained=bn_frozen(cfg))
    torch.manual_seed(cfg.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
    c = cfg.num_classes
    model = create_model(cfg.backbone, c, cfg.weights, drop_rate=cfg.drop_rate)  # its classifier starts at zero
    dcfg = data_config(model)
    if bn == "sync":
        from timm.layers import convert_sync_batchnorm

        model = convert_sync_batchnorm(model)
    model = to_channels_last(model.to(d.device))
    targets = [([1.0 if k in set(ls) else 0.0 for k in range(c)] if cfg.multi_label else int(ls[0])) for ls in labels]
    dataset = ImageManifestDataset(
        [paths[i] for i in tr_idx], [targets[i] for i in tr_idx],
        round_transform(dcfg, cfg, is_training=augment), opener=opener,
    )  # fmt: skip
    # Same global sequence on every rank (seed + epoch): class-balanced draws with replacement (single-label) or a
    # uniform permutation (multi-label); rank r takes positions r, r + world, ... so the ranks' k-th batches
    # together are exactly the k-th global batch of one process.
    sampler: DistributedWeightedSampler | DistributedSampler
    if cfg.multi_label:
        sampler = DistributedSampler(
            dataset, num_replicas=d.world, rank=d.rank, shuffle=True, seed=cfg.seed, drop_last=True
        )  # fmt: skip
    else:
        sampler = DistributedWeightedSampler(
            balanced_weights([labels[i] for i in tr_idx]), num_replicas=d.world, rank=d.rank, seed=cfg.seed
        )  # fmt: skip
    workers = cfg.resolved_num_workers()
    loader = make_loader(
        dataset, batch_size=batch // d.world, sampler=sampler, num_workers=workers, device=d.device, drop_last=True,
        seed=cfg.seed,
    )  # fmt: skip
    # Each rank validates its slice; the sums are all-reduced, so the score and the stop are the same everywhere.
    mine = val_idx[d.rank :: d.world]
    val_loader = None
    if len(val_idx):
        val_ds = ImageManifestDataset(
            [paths[i] for i in mine], [targets[i] for i in mine],
            round_transform(dcfg, cfg, is_training=False), opener=opener,
        )  # fmt: skip
        val_loader = make_loader(val_ds, batch_size=cfg.score_batch_size, num_workers=workers, device=d.device)
    ddp = (
        DistributedDataParallel(model, device_ids=[d.local_rank] if d.device.startswith("cuda") else None)
        if d.world > 1
        else model
    )
    opt, sched, scaler, use_amp = optimizer_setup(model, cfg, steps_per_epoch=len(loader), device=d.device)
    total = max(1, cfg.epochs * max(1, len(loader)))  # optimizer steps, for progress
    best_state, best_score, bad_epochs = None, -float("inf"), 0
    history, started = [], time.monotonic()
    steps = StepCounter(total, progress if d.rank == 0 else None)
    for epoch in range(cfg.epochs):
        sampler.set_epoch(epoch)
        ddp.train()
        if bn == "frozen":
            freeze_bn(model)
        t0 = time.monotonic()
        loss_sum, seen = train_epoch(
            ddp, loader, opt=opt, sched=sched, scaler=scaler, use_amp=use_amp, cfg=cfg, device=d.device,
            on_step=steps,
        )  # DDP all-reduces (averages) the gradients in backward  # fmt: skip
        epoch_loss = _all_reduce_sum(torch.tensor([loss_sum, float(seen)], dtype=torch.float64), d)
        record = {
            "epoch": epoch,
            "train_loss": float(epoch_loss[0] / max(float(epoch_loss[1]), 1.0)),
            "seconds": time.monotonic() - t0,
        }
        if val_loader is not None:
            # The unwrapped model: DDP's forward would broadcast buffers, a collective per batch, and the ranks'
            # slices may hold different numbers of batches.
            sums = validation_sums(model, val_loader, d.device, cfg.multi_label, use_amp)
            record.update(validation_record(_all_reduce_sum(sums, d)))
            score = record["val_score"]
            if score > best_score + 1e-4:
                best_score, bad_epochs = score, 0
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            else:
                bad_epochs += 1
        history.append(record)
        if val_loader is not None and bad_epochs >= cfg.patience:
            break  # on every rank at once: the score is the same everywhere
    if best_state is not None:
        model.load_state_dict(best_state)
    info = {
        "train_size": len(tr_idx),
        "val_size": len(val_idx),
        "world_size": d.world,
        "global_batch": batch,
        "bn": bn,
        "epochs_run": len(history),
        "history": history,
        "seconds": time.monotonic() - started,
        "device": d.device,
    }
    if history and val_loader is not None:
        info["best_val_score"] = best_score
    return model.eval(), info
