"""Image manifests as datasets: Pillow decoding (EXIF-aware), timm transforms, DataLoaders sized to the machine."""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import torch
from PIL import Image
from timm.data import create_transform
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision import transforms

from imaging.pixels import decoded_rgb
from imaging.shape import RESAMPLE, SquashWide
from training.ml.config import RoundConfig, auto_num_workers

Opener = Callable[[Any], IO[bytes]]


def build_transform(
    data_cfg: dict[str, Any],
    image_size: int,
    *,
    is_training: bool,
    crop_pct: float = 1.0,
    squash_aspect: float | None = None,
):
    """timm's train/eval transform for a model's data config, at `image_size` instead of the model default.
    With `squash_aspect`, images more elongated than that are first squashed to a square (imaging.shape)."""
    cfg = {k: v for k, v in data_cfg.items() if k in ("interpolation", "mean", "std", "crop_mode")}
    cfg["input_size"] = (3, image_size, image_size)
    if is_training:
        # Small sources (thumbnails, 32 px CIFAR) lose their object under aggressive crops: keep most of it.
        transform = create_transform(
            **cfg, is_training=True, scale=(0.35, 1.0), hflip=0.5, color_jitter=0.2, auto_augment=None
        )
    else:
        transform = create_transform(**cfg, is_training=False, crop_pct=crop_pct)
    if not squash_aspect:
        return transform
    resample = RESAMPLE.get(str(cfg.get("interpolation") or "bicubic"), Image.Resampling.BICUBIC)
    side = math.floor(image_size / (crop_pct or 1.0))  # what the eval transform resizes the shorter side to
    return transforms.Compose([SquashWide(squash_aspect, side, resample), *transform.transforms])


def round_transform(data_cfg: dict[str, Any], cfg: RoundConfig, *, is_training: bool):
    """build_transform with a round's image size, centre crop and squash rule."""
    return build_transform(
        data_cfg, cfg.image_size, is_training=is_training, crop_pct=cfg.crop_pct, squash_aspect=cfg.squash_aspect
    )


def load_image(source: Any, opener: Opener | None = None, draft_size: int | None = None) -> Image.Image:
    """Decode one image to RGB with its EXIF orientation applied, as imaging.pixels says (transparency laid on a
    background that keeps it visible, 16-bit stretched). `source` is a path or, with `opener`, a key."""
    if opener is not None:
        with opener(source) as fh:
            img = Image.open(fh)
            img = decoded_rgb(img, draft_size)
    else:
        with Image.open(source) as img:
            img = decoded_rgb(img, draft_size)
    return img


class ImageManifestDataset(Dataset):
    """(path or storage key, target) pairs. `targets` None: yields (image, index) for scoring."""

    def __init__(
        self,
        paths: Sequence[Any],
        targets: Sequence[Any] | None,
        transform: Callable | None,
        *,
        opener: Opener | None = None,
        draft_size: int | None = None,
    ) -> None:
        if targets is not None and len(targets) != len(paths):
            raise ValueError(f"{len(paths)} paths but {len(targets)} targets")
        self.paths = list(paths)
        self.targets = None if targets is None else list(targets)
        self.transform = transform
        self.opener = opener
        self.draft_size = draft_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        source = self.paths[index]
        try:
            img = load_image(source if self.opener else Path(source), self.opener, self.draft_size)
        except Exception as exc:  # name the file: "cannot identify image" alone helps nobody
            raise RuntimeError(f"cannot read image {source!r}: {exc}") from exc
        x = self.transform(img) if self.transform is not None else img
        target = index if self.targets is None else self.targets[index]
        if isinstance(target, (list, tuple)) or hasattr(target, "shape"):
            target = torch.as_tensor(target)
        return x, target


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    shuffle: bool = False,
    num_workers: int | None = None,
    device: str = "cpu",
    sampler: Sampler | None = None,
    drop_last: bool = False,
    seed: int = 0,
) -> DataLoader:
    """A DataLoader with workers sized to the machine, persistent workers and pinned memory on CUDA."""
    workers = auto_num_workers() if num_workers is None else max(0, num_workers)
    if multiprocessing.current_process().daemon:
        workers = 0  # a Celery prefork child is daemonic and may not start worker processes
    workers = min(workers, max(1, len(dataset) // max(batch_size, 1))) if workers else 0  # tiny sets: no idle forks
    generator = torch.Generator().manual_seed(seed)
    kwargs: dict[str, Any] = {}
    if workers > 0:
        kwargs.update(persistent_workers=True, prefetch_factor=4)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=workers,
        pin_memory=str(device).startswith("cuda"),
        drop_last=drop_last,
        generator=generator,
        **kwargs,
    )
