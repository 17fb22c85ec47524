"""Reference embeddings for drift checks: a seeded random sample of the project's images (labeled or not, any split;
not the production images sent to its queue) embedded by the served ONNX model.

Why not the labeled train images, as before December 2026? Most of them are the queue's picks: images the model was
unsure of, near the class borders, not a sample of what the project holds. bench/drift.py measured a reference of
such picks raising a false drift alarm in 7 of 10 in-distribution windows of CIFAR-10 (median p 0.005), against
none with a random reference. A random sample of the project's images is what production is compared with.

Why not the feature store (training/ml/embeddings.py)? The store keeps the *pretrained* backbone's features, under
timm's torch transform. The ONNX export's `embedding` output (training/ml/export_onnx.py, LogitsAndEmbedding) is
the *trained* model's pooled features (a fine-tuned backbone moves them), mirror-averaged when the checkpoint says
so, under the prediction service's numpy preprocessing. Production embeddings come from that graph, so the
reference does too: the same ONNX file, the same decode (the import's validation) and the same `to_input`
(serving/runtime/preprocess.py) as a request. The two spaces agree only for head-mode models with matching
mirror averaging; this way they agree always.

A version's reference embeddings are cached as LABELLOOP_DATA_ROOT/drift-reference/<version id>-<its creation
time>.npz (item ids and float16 rows, as production logs them); a later check embeds only the items labeled
since. The hourly drift checks sweep the files of versions that no longer exist, and those of inactive versions
nobody used for longer than the prediction log keeps rows (`drift_reference_sweep`). Worker-only code:
onnxruntime is loaded inside `reference_embeddings`, never by the web process.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from django.conf import settings

from imaging.pixels import PIXELS_VERSION
from labeling.constants import Progress
from labeling.models import Item
from labeling.storage_utils import cache_entries_sweep, cache_entry_touch
from serving.models import PredictionLog
from serving.runtime.registry import file_precision, served_precision
from serving.selectors.models import version_cache_name, version_cache_names
from training.ml.export_files import ONNX_FILES

REFERENCE_MAX = 1000  # the project's images compared with a window (a seeded sample of them)
EMBED_BATCH = 32


class ReferenceUnavailable(Exception):
    """No reference embeddings can be made: the message says why and what to do."""


def reference_item_ids(*, project_id: int, limit: int = REFERENCE_MAX, seed: int = 0) -> list[int]:
    """The project's images, a seeded sample of `limit` of them, without the production images sent to its queue
    (they are what is compared, not what the project held).

    The sample is drawn by rank of a seeded hash of each id, so an item once sampled stays sampled while the
    project grows (until it is pushed out by the limit) and the cache keeps serving it."""
    sent = PredictionLog.objects.filter(project_id=project_id, queued_at__isnull=False).exclude(image_sha256="")
    ids = np.fromiter(
        Item.objects.filter(project_id=project_id)
        .exclude(sha256__in=sent.values("image_sha256"))
        .values_list("pk", flat=True),
        dtype=np.int64,
    )
    if len(ids) <= limit:
        return sorted(int(i) for i in ids)
    keys = (ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed)) >> np.uint64(11)
    return sorted(int(i) for i in ids[np.argsort(keys, kind="stable")[:limit]])


def drift_reference_root() -> Path:
    return Path(settings.LABELLOOP_DATA_ROOT) / "drift-reference"


def _cache_path(version_pk: int) -> Path | None:
    """The version's reference embeddings on this machine (named by version_cache_name: item ids, like version
    pks, start again from 1 in a new database); None when the version no longer exists."""
    name = version_cache_name(version_pk=version_pk)
    return None if name is None else drift_reference_root() / f"{name}.npz"


def drift_reference_sweep(*, dry_run: bool = False) -> list[str]:
    """Remove reference files nothing can use any more; returns their names. A file of a deleted version (or of
    another database's) goes after an hour unused. An inactive version's file is what "most drifted" compares its
    logged predictions with, so it goes only once the prediction log has pruned them (a day after
    LABELLOOP_PREDICTION_LOG_KEEP_DAYS without use; never while the log keeps rows forever)."""
    removed = cache_entries_sweep(drift_reference_root(), keep=version_cache_names(), dry_run=dry_run)
    days = settings.LABELLOOP_PREDICTION_LOG_KEEP_DAYS
    if days > 0:
        active = version_cache_names(active_only=True) | {Path(r).stem for r in removed}  # each named once
        grace = (days + 1) * 86400.0
        removed += cache_entries_sweep(drift_reference_root(), keep=active, grace_seconds=grace, dry_run=dry_run)
    return removed


def _cache_read(path: Path | None) -> tuple[dict[int, np.ndarray], str, str | None] | None:
    """(rows by item id, precision, ONNX file) of a reference file, or None: missing, damaged (rebuilt, never
    trusted) or made under another pixel rule. Files from before the file was recorded: FP32's model.onnx."""
    if path is None or not path.is_file():
        return None
    cache_entry_touch(path)
    try:
        with np.load(path) as data:
            if "pixels" not in data.files or int(data["pixels"]) != PIXELS_VERSION:
                return None  # made under another pixel rule (imaging.pixels): requests are decoded differently now
            precision = str(data["precision"]) if "precision" in data.files else "fp32"
            legacy = ONNX_FILES["fp32"] if precision == "fp32" else None
            file = str(data["onnx_file"]) if "onnx_file" in data.files else legacy
            return dict(zip(data["ids"].tolist(), data["embeddings"], strict=True)), precision, file
    except (OSError, ValueError, KeyError):
        return None


def _cache_load(path: Path | None, model_file: str | None = None) -> dict[int, np.ndarray]:
    """The cached rows when they were embedded by `model_file` (by the precision this process serves when None);
    else {}."""
    read = _cache_read(path)
    if read is None:
        return {}
    rows, precision, file = read
    asked = file == model_file if model_file is not None else precision == served_precision()
    return rows if asked else {}  # else embedded by another ONNX file than the one asked for


def _cache_save(path: Path | None, cached: dict[int, np.ndarray], model_file: str = ONNX_FILES["fp32"]) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = np.fromiter(cached.keys(), dtype=np.int64, count=len(cached))
    rows = np.stack(list(cached.values())).astype(np.float16) if cached else np.zeros((0, 0), np.float16)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
    with os.fdopen(fd, "wb") as fh:
        precision = file_precision(model_file)  # the file's, not this process's setting
        np.savez(fh, ids=ids, embeddings=rows, pixels=np.int64(PIXELS_VERSION), precision=np.str_(precision),
                 onnx_file=np.str_(model_file))  # fmt: skip
    os.replace(tmp, path)


def _embed(model, items: list[Item], progress: Progress | None) -> tuple[dict[int, np.ndarray], int]:
    """Embed items as the prediction service would; returns ({item id: float16 row}, files it rejected)."""
    from labeling.services.imports.validation import ImportRejected
    from serving.runtime.preprocess import image_decode, serving_limits, to_input
    from training.services.snapshot import item_local_path

    size = int(model.preprocessing["image_size"])
    limits = serving_limits()
    out: dict[int, np.ndarray] = {}
    rejected = 0
    for start in range(0, len(items), EMBED_BATCH):
        chunk = items[start : start + EMBED_BATCH]
        batch = np.empty((len(chunk), 3, size, size), dtype=np.float32)
        kept = []
        for item in chunk:
            try:
                data = Path(item_local_path(item)).read_bytes()
                decoded = image_decode(data, limits=limits)
            except (OSError, ImportRejected):
                rejected += 1
                continue
            to_input(decoded.image, model.preprocessing, out=batch[len(kept)])
            kept.append(item.pk)
        if kept:
            _probs, embeddings = model.run(batch[: len(kept)])
            for item_id, row in zip(kept, embeddings, strict=True):
                out[item_id] = np.asarray(row, dtype=np.float16)  # as production logs it
        if progress:
            progress(min(start + EMBED_BATCH, len(items)), len(items), "embedding the project's images")
    return out, rejected


def reference_cached(*, version_pk: int) -> tuple[np.ndarray, str | None] | None:
    """(float32 [n, d] reference embeddings, the ONNX file that made them) of the version's last drift check (numpy
    only: the web process reads them, whatever precision its own settings name), or None when no check has run."""
    read = _cache_read(_cache_path(version_pk))
    if read is None or len(read[0]) < 2:
        return None
    return np.stack(list(read[0].values())).astype(np.float32), read[2]


def reference_embeddings(
    *,
    project_id: int,
    version_pk: int,
    version_number: int,
    model_file: str | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """float32 [n, d] embeddings of the sampled project images under the version's ONNX model: the export's
    `model_file` (the file that answered the predictions compared), or the one this process would serve.

    Raises ReferenceUnavailable when the version has no export, its graph has no `embedding` output, or fewer
    than 2 of the project's images could be embedded."""
    ids = reference_item_ids(project_id=project_id)
    if len(ids) < 2:
        raise ReferenceUnavailable(f"the project has {len(ids)} images; drift needs at least 2")
    path = _cache_path(version_pk)
    cached = _cache_load(path, model_file)
    todo = [i for i in ids if i not in cached]
    if todo:
        from serving.runtime.registry import load_model, served_model_file

        onnx_file = served_model_file(project_id=project_id, version_pk=version_pk, model_file=model_file)
        if onnx_file is None:
            missing = "ONNX export" if model_file is None else f"export with {model_file} (the file that answered)"
            raise ReferenceUnavailable(
                f"version {version_number} has no {missing}; export it on the model exports page"
            )
        model = load_model(onnx_file=onnx_file, version_pk=version_pk, number=version_number)
        if model.embedding_name is None:
            raise ReferenceUnavailable(
                f"the ONNX export of version {version_number} has no embedding output; export it again"
            )
        items = list(Item.objects.filter(pk__in=todo).only("id", "file", "sha256", "project_id").order_by("pk"))
        fresh, _rejected = _embed(model, items, progress)
        cached.update(fresh)
        _cache_save(path, cached, onnx_file.name)
    rows = [cached[i] for i in ids if i in cached]
    if len(rows) < 2:
        raise ReferenceUnavailable("fewer than 2 of the project's images could be read for the drift reference")
    return np.stack(rows).astype(np.float32)
