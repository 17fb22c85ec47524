"""Files through Django's storage API, so STORAGES["default"] can be local disk or S3/MinIO unchanged.

Web code opens files with `field.storage.open(name)`. Workers that need a real path (PIL over many
files, torch DataLoader workers, safetensors) call `storage_local_path`: the file itself on local disk,
else a copy cached under LABELLOOP_DATA_ROOT/storage-cache (storage keys are content-addressed or
versioned, so a cached copy never goes stale). Model artifact folders go up and down with
`storage_dir_upload` / `storage_dir_download`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Collection
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, default_storage

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024
CACHE_GRACE_SECONDS = 3600.0  # a cache entry used (or made) within this long is never swept


def storage_cache_root() -> Path:
    """Where this machine keeps its copies of remote storage keys (empty while the storage is local disk)."""
    return Path(settings.LABELLOOP_DATA_ROOT) / "storage-cache"


def _safe_key(name: str) -> str:
    """A storage key as a relative POSIX path; rejects absolute paths and `..` (a key is never a path escape)."""
    key = PurePosixPath(name.replace("\\", "/"))
    if not name or key.is_absolute() or ".." in key.parts:
        raise ValueError(f"not a storage key: {name!r}")
    return str(key)


def _local_path_of(storage: Storage, name: str) -> Path | None:
    try:
        return Path(storage.path(name))
    except NotImplementedError:
        return None


def storage_local_path(*, name: str, storage: Storage | None = None) -> Path:
    """A local file with the content of storage key `name` (downloaded once per machine when remote).

    Raises FileNotFoundError when the key does not exist.
    """
    storage = storage or default_storage
    key = _safe_key(name)
    local = _local_path_of(storage, key)
    if local is not None:
        if not local.is_file():
            raise FileNotFoundError(key)
        return local
    target = storage_cache_root() / key
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Download to a temp file beside the target, then rename: a concurrent reader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out, storage.open(key, "rb") as src:
            shutil.copyfileobj(src, out, CHUNK)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def storage_dir_upload(*, local_dir: Path, prefix: str, storage: Storage | None = None) -> list[str]:
    """Copy every file under `local_dir` to `prefix/<relative path>`; returns the keys written.

    Existing keys are replaced, so the keys are exactly these names (storages rename on conflict).
    """
    storage = storage or default_storage
    prefix = _safe_key(prefix).rstrip("/")
    keys = []
    for path in sorted(p for p in Path(local_dir).rglob("*") if p.is_file()):
        key = f"{prefix}/{path.relative_to(local_dir).as_posix()}"
        if storage.exists(key):
            storage.delete(key)
        with path.open("rb") as fh:
            saved = storage.save(key, File(fh, name=path.name))
        if saved != key:
            raise RuntimeError(f"storage saved {key!r} as {saved!r}")
        keys.append(key)
    return keys


def _walk(storage: Storage, prefix: str) -> list[str]:
    dirs, files = storage.listdir(prefix)
    keys = [f"{prefix}/{f}" for f in files]
    for d in dirs:
        keys += _walk(storage, f"{prefix}/{d}")
    return keys


def storage_dir_delete(*, prefix: str, storage: Storage | None = None) -> int:
    """Delete every file stored under `prefix`; returns how many."""
    storage = storage or default_storage
    prefix = _safe_key(prefix).rstrip("/")
    try:
        keys = _walk(storage, prefix)
    except FileNotFoundError:  # local disk: no such folder
        return 0
    for key in keys:
        storage.delete(key)
    local = _local_path_of(storage, prefix)
    if local is not None:  # local disk keeps the emptied folders
        for folder in [*sorted(local.rglob("*"), reverse=True), local]:
            with contextlib.suppress(OSError):  # empty folders only
                folder.rmdir()
    return len(keys)


def storage_dir_download(*, prefix: str, storage: Storage | None = None) -> Path:
    """A local folder with every file stored under `prefix` (the folder itself on local disk).

    Raises FileNotFoundError when nothing is stored under the prefix.
    """
    storage = storage or default_storage
    prefix = _safe_key(prefix).rstrip("/")
    local = _local_path_of(storage, prefix)
    if local is not None:
        if not local.is_dir():
            raise FileNotFoundError(prefix)
        return local
    keys = _walk(storage, prefix)
    if not keys:
        raise FileNotFoundError(prefix)
    for key in keys:
        storage_local_path(name=key, storage=storage)
    return storage_cache_root() / prefix


def cache_entry_touch(path: Path) -> None:
    """Mark a cache entry (a file or folder) as used now, so a sweep leaves it for another CACHE_GRACE_SECONDS."""
    with contextlib.suppress(OSError):  # gone meanwhile, or a read-only mount: the entry is simply not marked
        os.utime(path)


def cache_entries_sweep(
    folder: Path, *, keep: Collection[str], grace_seconds: float = CACHE_GRACE_SECONDS, dry_run: bool = False
) -> list[str]:
    """Remove the entries directly under `folder` (files or folders) that `keep` does not name and that nobody
    used within `grace_seconds`; returns the names removed.

    A file is named by its name without the suffix (`<name>.npz`). Leftovers of writes that never finished
    (names starting with a dot) go by age alone. The grace keeps what a process on this machine is reading or
    just wrote: readers call `cache_entry_touch` on what they use, and nothing here is needed for longer than a
    load takes (an open onnxruntime session or safetensors file no longer needs its file). `dry_run` only names
    them."""
    try:
        entries = list(Path(folder).iterdir())
    except FileNotFoundError:
        return []
    cutoff = time.time() - grace_seconds
    keep = set(keep)
    removed = []
    for entry in entries:
        name = entry.name
        if not name.startswith(".") and (name in keep or entry.stem in keep):
            continue
        try:
            if entry.lstat().st_mtime > cutoff:
                continue
            if dry_run:
                pass
            elif entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:  # another process swept it first
            continue
        except OSError:  # not ours to remove (permissions): leave it, say so, sweep the rest
            logger.warning("could not remove the cache entry %s", entry, exc_info=True)
            continue
        removed.append(name)
    return removed


def disk_usage(path: Path) -> int:
    """Bytes under `path` (a file or a folder); 0 when it is gone."""
    try:
        if not path.is_dir():
            return path.stat().st_size
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    except FileNotFoundError:
        return 0
