"""Facts of the training app that runs, rounds, scoring and selectors share: run modes and where data lives.

Kept apart from the run state machine (services/runs.py) so that any module can import them without a cycle.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from pathlib import Path

from django.conf import settings

# A checkpoint folder's two files (training/ml/checkpoint.py writes them); named here so that code which only
# moves or removes checkpoints (disk trims, exports) needs no torch.
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def data_root() -> Path:
    return Path(settings.LABELLOOP_DATA_ROOT)


def project_cache_dir(project) -> Path:
    """The project's feature store (cached embeddings, keyed by item id); shared by every run and scoring job.

    Its `owner` file names the project row it belongs to (pk and creation time). A database created afresh over an
    old data folder (var/db.sqlite3 deleted, var/data kept) reuses project pks and item ids, and the new images
    would silently be given the old images' embeddings. A folder owned by another row is therefore removed and
    the project starts an empty one; a folder without the file (made before it existed) is adopted as it is."""
    folder = data_root() / "projects" / str(project.pk) / "cache"
    owner = f"project {project.pk} created {project.created_at.isoformat()}"
    try:
        found = (folder / "owner").read_text().strip()
    except FileNotFoundError:
        found = None
    if found is not None and found != owner:
        stale = folder.with_name(f"cache.stale-{time.time_ns()}")
        with contextlib.suppress(FileNotFoundError):  # another worker moved it first
            folder.rename(stale)
            shutil.rmtree(stale, ignore_errors=True)
        found = None
    if found is None:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".owner-{uuid.uuid4().hex}"
        tmp.write_text(owner + "\n")
        os.replace(tmp, folder / "owner")
    return folder
