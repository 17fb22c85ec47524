"""Model checkpoints through Django's storage API, so every worker machine can read every version.

After a round the checkpoint folder is uploaded to `models/<project id>/run-<run id>-<random token>` in the default
storage (local disk or S3/MinIO) and `ModelVersion.artifact_path` keeps that storage key. Readers ask
`version_checkpoint_dir` for a local folder: the folder itself on local disk, a cached download otherwise.
Versions saved before this keep working: an absolute path, or one relative to LABELLOOP_DATA_ROOT, that
exists on this machine is used as it is.

A worker machine's downloaded copies are swept whenever it reads a checkpoint: copies of versions that are no
project's active version, unused for an hour, are removed (a later read downloads them again). Without that, a
worker kept a copy of every version it ever scored or exported.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

from django.core.files.storage import default_storage

from labeling.storage_utils import (
    cache_entries_sweep,
    cache_entry_touch,
    storage_cache_root,
    storage_dir_delete,
    storage_dir_download,
    storage_dir_upload,
)
from training.constants import data_root
from training.models import ModelVersion

logger = logging.getLogger(__name__)


def checkpoint_prefix(*, project_id: int, run_id: int) -> str:
    """A key no other checkpoint ever had. Worker machines cache downloads by key and never look again, and a
    database created afresh (or flushed) numbers its projects and runs from 1 again: with `run-<run id>` alone, a
    worker that had cached the old database's run 1 kept scoring with those weights after the new run 1 replaced
    them in the bucket."""
    return f"models/{project_id}/run-{run_id}-{uuid.uuid4().hex[:12]}"


def checkpoint_store(*, project_id: int, run_id: int, local_dir: Path) -> str:
    """Upload a checkpoint folder; returns the storage key to keep in `ModelVersion.artifact_path`.

    Raises (and stores no key the caller would keep) when the storage refuses a file.
    """
    prefix = checkpoint_prefix(project_id=project_id, run_id=run_id)
    keys = storage_dir_upload(local_dir=Path(local_dir), prefix=prefix)
    if not keys:
        raise FileNotFoundError(f"no checkpoint files under {local_dir}")
    return prefix


def checkpoint_delete(*, artifact_path: str) -> None:
    """Remove a stored checkpoint that no version keeps (a round abandoned after its upload). A failure is
    logged, not raised: it leaves an orphan in the storage, never a broken version."""
    try:
        storage_dir_delete(prefix=artifact_path)
    except Exception:
        logger.exception("could not delete the checkpoint %s from storage", artifact_path)


def artifact_local_dir(artifact_path: str) -> Path:
    """A local folder for an artifact path. A path that resolves nowhere comes back as the (missing)
    LABELLOOP_DATA_ROOT-relative folder, so callers report "missing" with their own message."""
    path = Path(artifact_path)
    if path.is_absolute():
        return path
    legacy = data_root() / path
    if legacy.is_dir():
        return legacy
    try:
        folder = storage_dir_download(prefix=artifact_path)
    except (FileNotFoundError, ValueError):
        return legacy
    except Exception:  # an unreachable bucket: same as missing, but say why in the log
        logger.exception("could not download checkpoint %s from storage", artifact_path)
        return legacy
    root = storage_cache_root()
    if folder.is_relative_to(root):  # a downloaded copy, not the storage's own folder
        cache_entry_touch(folder)
        parts = folder.relative_to(root).parts
        if len(parts) == 3 and parts[0] == "models":
            downloaded_checkpoints_sweep(folder.parent)  # models/<project>/: checkpoints only, never images
    return folder


def checkpoint_file_read(*, version: ModelVersion, name: str) -> bytes:
    """One file of a version's checkpoint (its config.json), read where artifact_local_dir would find the folder,
    without downloading the rest: the web process asks it (Train now's same-model check), and a checkpoint's weights
    are tens of MB in a bucket. Raises OSError (FileNotFoundError where it is missing)."""
    path = Path(version.artifact_path)
    if path.is_absolute():
        return (path / name).read_bytes()
    legacy = data_root() / path
    if legacy.is_dir():
        return (legacy / name).read_bytes()
    with default_storage.open(f"{version.artifact_path.rstrip('/')}/{name}", "rb") as fh:
        return fh.read()


def downloaded_checkpoints_sweep(folder: Path, *, dry_run: bool = False) -> list[str]:
    """Remove the downloaded checkpoints under `folder` (one project's) that belong to no active version and
    were not read within the last hour; returns their names. A failure is logged, never raised: the caller has
    its checkpoint."""
    active = ModelVersion.objects.filter(active=True).values_list("artifact_path", flat=True)
    try:
        return cache_entries_sweep(folder, keep={Path(a).name for a in active.iterator()}, dry_run=dry_run)
    except Exception:
        logger.exception("could not sweep the downloaded checkpoints in %s", folder)
        return []


def version_checkpoint_dir(*, version: ModelVersion) -> Path:
    """The local checkpoint folder of a version (downloaded once per machine when the storage is remote)."""
    return artifact_local_dir(version.artifact_path)
