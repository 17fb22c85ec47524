"""Shared helpers for the ML benchmarks: CIFAR-style ImageFolder listing with stable ids, machine facts."""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

import numpy as np

TEST_ID_OFFSET = 10_000_000


def folder_namespace(root: Path) -> int:
    """The high bits of every id listed from `root`: a hash of its resolved path. The benchmarks share one
    embedding cache (var/bench-cache), keyed by id; without this, the 300th image of the first class of any two
    data sets had the same id, and a second data set silently read the first one's embeddings. 24 bits of hash
    above 38 bits of offset + class + file keep ids within int64 and clear of small ids (the digits')."""
    digest = hashlib.sha256(str(Path(root).resolve()).encode()).digest()
    return (int.from_bytes(digest[:3], "big") + 1) << 38


# The image formats the product imports, by file name here (an ImageFolder has no other index).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
PER_CLASS = 100_000  # ids leave room for this many images per class


def class_images(folder: Path) -> list[Path]:
    """Image files under `folder`, sub-folders included (as torchvision's ImageFolder finds them), in path order;
    hidden files and folders (".DS_Store", macOS's "._name.jpg" copies) left out."""
    found = []
    for f in folder.rglob("*"):
        hidden = any(part.startswith(".") for part in f.relative_to(folder).parts)
        if not hidden and f.suffix.lower() in IMAGE_SUFFIXES and f.is_file():
            found.append(f)
    return sorted(found)


def list_image_folder(root: Path, *, id_offset: int = 0) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """(paths, ids, labels, class_names) of the images under `root/<class>/` (class_images); ids are stable across
    runs and distinct between folders (folder_namespace)."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    namespace = folder_namespace(root)
    paths, ids, labels = [], [], []
    for ci, name in enumerate(classes):
        files = class_images(root / name)
        if len(files) >= PER_CLASS:
            raise SystemExit(f"{root / name} has {len(files)} images; the benchmarks take fewer than {PER_CLASS}")
        for fi, f in enumerate(files):
            paths.append(str(f))
            ids.append(namespace + id_offset + ci * PER_CLASS + fi)
            labels.append(ci)
    return paths, np.asarray(ids, dtype=np.int64), np.asarray(labels, dtype=np.int64), classes


def subset(n: int, total: int, seed: int) -> np.ndarray:
    """A fixed random subset of indices (sorted), the same for every run with this seed."""
    if n >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))


def machine() -> dict:
    import torch

    return {
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def flip_averaged_embeddings(backbone, tensors: list, batch: int = 64) -> np.ndarray:
    """The product's cached-embedding view (image and mirror averaged) of transformed images, in batches."""
    import torch

    from training.ml.models import flip_averaged

    with torch.inference_mode():
        parts = [
            flip_averaged(backbone, torch.stack(tensors[i : i + batch])).numpy() for i in range(0, len(tensors), batch)
        ]
    return np.concatenate(parts)
