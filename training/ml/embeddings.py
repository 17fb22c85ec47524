"""Feature store: pretrained-backbone embeddings cached per (backbone, weights, image size) as float16 shards."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from imaging.pixels import PIXELS_VERSION
from imaging.shape import squashed
from training.ml.config import RoundConfig
from training.ml.data import ImageManifestDataset, Opener, make_loader, round_transform
from training.ml.models import create_backbone, data_config, flip_averaged, to_channels_last

if TYPE_CHECKING:  # the type only: training/ml never imports labeling at run time
    from labeling.constants import Progress  # noqa: TID251


def weights_tag(weights: str) -> str:
    """A folder-safe name for a weights choice; local paths are named by a hash of their resolved path."""
    if weights in ("bundled", "hub", "none"):
        return weights
    path = Path(weights).resolve()
    stamp = path.stat().st_mtime_ns if path.exists() else 0
    return "local-" + hashlib.sha256(f"{path}:{stamp}".encode()).hexdigest()[:16]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _elongated(source: Any, opener: Opener | None, max_aspect: float) -> bool:
    """Whether the image is more elongated than `max_aspect`, from its header alone (no pixels decoded). An
    unreadable file counts as elongated: it is not adopted, and computing it reports the error."""
    try:
        if opener is not None:
            with opener(source) as fh, Image.open(fh) as img:
                return squashed(*img.size, max_aspect)
        with Image.open(source) as img:
            return squashed(*img.size, max_aspect)
    except Exception:
        return True


class EmbeddingStore:
    """Append-only shards `<uuid>.f16.npy` + `<uuid>.ids.npy` under one folder per feature space.

    A shard is visible once its ids file exists; both are written to temp names then os.replace'd, so a
    crashed writer leaves nothing half-read and two writers never clobber each other (unique shard names).
    """

    def __init__(self, cache_dir: str | os.PathLike) -> None:
        self.cache_dir = Path(cache_dir)
        self._lock = threading.Lock()
        self._loaded: dict[Path, tuple[set[str], dict[int, tuple[int, int]], list[np.ndarray]]] = {}
        self.forward_batches = 0  # how many model forwards this store ran (tests count them)

    def folder(self, cfg: RoundConfig, pixels: int = PIXELS_VERSION, *, squash: bool = True) -> Path:
        name = f"{cfg.backbone}__{weights_tag(cfg.weights)}__{cfg.image_size}"
        if cfg.flip_average:
            name += "__flipavg"  # another feature space: never mixed with plain embeddings
        if pixels > 1:
            name += f"__px{pixels}"  # how files became pixels (imaging.pixels) changed: other inputs
        if squash and cfg.squash_aspect:
            name += f"__sq{float(cfg.squash_aspect):g}"  # elongated images squashed, not cropped (imaging.shape)
        return self.cache_dir / _safe(name)

    def _adopt(self, folder: Path, cfg: RoundConfig, todo: dict[int, Any], opener: Opener | None) -> int:
        """Copy over embeddings that an older cache folder holds and that are still right, instead of computing
        them again; returns how many. Folders of older rules, newest first:
        - the same space before the squash rule (imaging.shape): right for every image no more elongated than
          squash_aspect, which the rule leaves alone (its header is read to know);
        - before the current pixel rule (imaging.pixels): right for JPEG files (no alpha, 8-bit channels, all the
          rule changed), within the same squash limit. PNG, WebP, GIF, TIFF and BMP are computed again."""
        sources = [(self.folder(cfg, pixels=1, squash=False), True)]
        if cfg.squash_aspect:
            sources.insert(0, (self.folder(cfg, squash=False), False))
        adopted = 0
        for old, jpeg_only in sources:
            if not todo or not old.is_dir():
                continue
            index, _ = self._index(old)
            ids = [
                i
                for i, path in todo.items()
                if i in index
                and (not jpeg_only or str(path).lower().endswith((".jpg", ".jpeg")))
                and not (cfg.squash_aspect and _elongated(path, opener, cfg.squash_aspect))
            ]
            if not ids:
                continue
            self._append(folder, np.asarray(ids, dtype=np.int64), self.get(ids, folder=old))
            for item_id in ids:
                del todo[item_id]
            adopted += len(ids)
        return adopted

    # ---- reading -------------------------------------------------------------------------------------------
    def _index(self, folder: Path) -> tuple[dict[int, tuple[int, int]], list[np.ndarray]]:
        """id -> (shard number, row) over every complete shard; newly appeared shards are picked up."""
        with self._lock:
            seen, index, shards = self._loaded.setdefault(folder, (set(), {}, []))
            names = sorted(p.name for p in folder.glob("*.ids.npy")) if folder.is_dir() else []
            for name in names:
                if name in seen:
                    continue
                stem = name.removesuffix(".ids.npy")
                ids = np.load(folder / name)
                feats = np.load(folder / f"{stem}.f16.npy", mmap_mode="r")
                shard_no = len(shards)
                shards.append(feats)
                for row, item_id in enumerate(ids.tolist()):
                    index[int(item_id)] = (shard_no, row)
                seen.add(name)
            return index, shards

    def missing(self, ids: Sequence[int], cfg: RoundConfig) -> list[int]:
        index, _ = self._index(self.folder(cfg))
        return [int(i) for i in ids if int(i) not in index]

    def get(self, ids: Sequence[int], cfg: RoundConfig | None = None, *, folder: Path | None = None) -> np.ndarray:
        """float32 [n, d] in the order of `ids`; raises KeyError naming ids that were never computed."""
        folder = folder or self.folder(cfg)
        index, shards = self._index(folder)
        lacking = [i for i in ids if int(i) not in index]
        if lacking:
            raise KeyError(f"{len(lacking)} ids have no embedding in {folder.name}, e.g. {lacking[:5]}")
        if not ids:
            dim = shards[0].shape[1] if shards else 0
            return np.zeros((0, dim), dtype=np.float32)
        dim = shards[0].shape[1]
        out = np.empty((len(ids), dim), dtype=np.float32)
        # Group by shard so each memory-mapped shard is read with one fancy-index.
        locs = np.array([index[int(i)] for i in ids], dtype=np.int64)
        for shard_no in np.unique(locs[:, 0]):
            sel = np.nonzero(locs[:, 0] == shard_no)[0]
            out[sel] = shards[shard_no][locs[sel, 1]]
        return out

    # ---- writing -------------------------------------------------------------------------------------------
    def _append(self, folder: Path, ids: np.ndarray, feats: np.ndarray) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        for suffix, array in ((".f16.npy", feats.astype(np.float16)), (".ids.npy", ids.astype(np.int64))):
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npy")
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, array)
            os.replace(tmp, folder / f"{stem}{suffix}")

    def compute(
        self,
        ids: Sequence[int],
        paths: Sequence[Any],
        cfg: RoundConfig,
        progress: Progress | None = None,
        *,
        opener: Opener | None = None,
        model: torch.nn.Module | None = None,
        shard_size: int = 4096,
    ) -> int:
        """Embed the ids not cached yet (and only those); returns how many were computed."""
        if len(ids) != len(paths):
            raise ValueError(f"{len(ids)} ids but {len(paths)} paths")
        folder = self.folder(cfg)
        index, _ = self._index(folder)
        todo: dict[int, Any] = {}
        for item_id, path in zip(ids, paths, strict=True):
            if int(item_id) not in index:
                todo.setdefault(int(item_id), path)
        if todo:
            self._adopt(folder, cfg, todo, opener)
        total = len(todo)
        if progress:
            progress(0, total)
        if not total:
            return 0
        device = cfg.resolved_device()
        backbone = model if model is not None else create_backbone(cfg.backbone, cfg.weights)
        backbone = to_channels_last(backbone.eval().to(device))
        transform = round_transform(data_config(backbone), cfg, is_training=False)
        todo_ids = np.fromiter(todo.keys(), dtype=np.int64, count=total)
        dataset = ImageManifestDataset(list(todo.values()), None, transform, opener=opener, draft_size=cfg.image_size)
        loader = make_loader(
            dataset, batch_size=cfg.score_batch_size, num_workers=cfg.resolved_num_workers(), device=device
        )
        use_amp = cfg.amp and device.startswith("cuda")
        buf_ids: list[np.ndarray] = []
        buf_feats: list[np.ndarray] = []
        buffered = done = 0
        with torch.inference_mode():
            for x, idx in loader:
                x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
                    feats = flip_averaged(backbone, x) if cfg.flip_average else backbone(x)
                self.forward_batches += 1
                buf_feats.append(feats.float().cpu().numpy())
                buf_ids.append(todo_ids[idx.numpy()])
                buffered += len(idx)
                done += len(idx)
                if buffered >= shard_size:
                    self._append(folder, np.concatenate(buf_ids), np.concatenate(buf_feats))
                    buf_ids, buf_feats, buffered = [], [], 0
                if progress:
                    progress(done, total)
        if buffered:
            self._append(folder, np.concatenate(buf_ids), np.concatenate(buf_feats))
        return total
