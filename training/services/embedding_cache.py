"""Embedding folders of older image rules, swept once a project has moved on from them.

A project's feature store (`projects/<id>/cache/`) holds one folder per feature space. When the way a file becomes
the model's input changes (imaging/pixels.py's PIXELS_VERSION, imaging/shape.py's squash rule), the next round
writes a new folder: it copies over the embeddings the change left alone and computes the others. The old folder
is then read by nothing but a re-score with a version trained before the change, which computes again whatever it
misses. `embedding_folders_sweep` (`manage.py reclaim_disk`) removes such folders for every project whose current
folder exists, i.e. once a round has run under the current rules. Projects with a round in flight are left alone.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from labeling.models import Project
from labeling.storage_utils import disk_usage
from training.constants import data_root
from training.models import IN_FLIGHT, RunMode, TrainingRun
from training.services.rounds import round_config
from training.services.snapshot import class_order


def superseded_folders(project: Project) -> list[Path]:
    """The project's embedding folders made under older image rules for its current feature space (backbone,
    weights, size, mirror averaging), once the current one exists; [] while it does not (they are still the
    cache the next round copies from)."""
    from training.ml.embeddings import EmbeddingStore  # torch: a command's or a worker's import, never the web's

    # Not project_cache_dir: that one creates the folder (or replaces another row's), and a sweep only reads.
    cache = data_root() / "projects" / str(project.pk) / "cache"
    if not cache.is_dir():
        return []
    cfg = round_config(project=project, classes=class_order(project=project), mode=RunMode.HEAD)
    store = EmbeddingStore(cache)
    current = store.folder(cfg)
    if not current.is_dir():
        return []
    older = {store.folder(cfg, pixels=1, squash=False), store.folder(cfg, squash=False)} - {current}
    return sorted(folder for folder in older if folder.is_dir())


def embedding_folders_sweep(
    *, dry_run: bool = False, progress: Callable[[int, int], None] | None = None
) -> dict[str, int]:
    """Remove (or with dry_run only count) every project's superseded embedding folders; returns
    {"projects", "folders", "bytes", "skipped_in_flight"}."""
    busy = set(TrainingRun.objects.filter(status__in=IN_FLIGHT).values_list("project_id", flat=True))
    projects = list(Project.objects.order_by("pk"))
    folders = freed = skipped = 0
    for n, project in enumerate(projects, 1):
        if project.pk in busy:
            skipped += 1
        else:
            for folder in superseded_folders(project):
                folders += 1
                freed += disk_usage(folder)
                if not dry_run:
                    shutil.rmtree(folder, ignore_errors=True)
        if progress:
            progress(n, len(projects))
    return {"projects": len(projects), "folders": folders, "bytes": freed, "skipped_in_flight": skipped}
