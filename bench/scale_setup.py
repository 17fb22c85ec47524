"""Shared setup of the at-scale benchmarks (bench/label_errors_scale.py, bench/round_scale.py): a throwaway database,
a project of many items written in bulk, synthetic embeddings in its feature store, and the process's memory.

Embedding 100,000 real images would take about 25 minutes on 2 cores and measure the backbone; these benchmarks
measure what comes after it, so the items' embeddings are class clusters (1,280-d, as Lite0's) written the way a
round writes them."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np


@contextmanager
def throwaway_django(prefix: str, **env: str):
    """Django set up on a throwaway SQLite database (or $DATABASE_URL), media and data folder, migrated; removed
    afterwards. `env`: more settings' environment variables."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{work / 'bench.sqlite3'}",
            "LABELLOOP_MEDIA_ROOT": str(work / "media"),
            "LABELLOOP_DATA_ROOT": str(work / "data"),
            "LOG_LEVEL": "WARNING",
            **env,
        }
    )
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def memory_mb(field: str) -> float | None:
    """A line of /proc/self/status in MB (VmRSS: resident now, VmHWM: its peak); None where unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def reset_peak() -> bool:
    """Restart VmHWM from the resident size now (Linux); False where that is unavailable."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def bulk_project(*, items: int, classes: int, given: np.ndarray, labeled: np.ndarray, seed: int, name: str):
    """(user, project, item ids in creation order): `items` items, those in `labeled` (a boolean mask) labeled
    `given` by import, a tenth of them in the holdout as the project's split draws it; rows in bulk."""
    from django.contrib.auth import get_user_model

    from labeling.models import Item, ItemState, LabelClass, LabelSource, ResolvedLabel, Split
    from labeling.services.projects import project_create

    user = get_user_model().objects.create_superuser(username="bench", password="bench", email="bench@example.org")
    project = project_create(name=name, created_by=user)
    names = [LabelClass.objects.create(project=project, name=f"class {i}", order=i) for i in range(classes)]
    holdout = np.random.default_rng(seed + 1).random(items) < project.holdout_fraction
    through = ResolvedLabel.classes.through
    for start in range(0, items, 5000):
        rows = range(start, min(items, start + 5000))
        made = Item.objects.bulk_create(
            [
                Item(
                    project=project, file=f"projects/{project.pk}/originals/{i:07d}.png",
                    thumbnail=f"projects/{project.pk}/originals/{i:07d}.png",
                    sha256=hashlib.sha256(f"{seed}-{i}".encode()).hexdigest(), width=32, height=32, format="PNG",
                    original_name=f"{i:07d}.png", split=Split.HOLDOUT if holdout[i] else Split.TRAIN,
                    state=ItemState.LABELED if labeled[i] else ItemState.UNLABELED,
                    annotation_count=int(labeled[i]),
                )
                for i in rows
            ]
        )  # fmt: skip
        marked = [(i, item) for i, item in zip(rows, made, strict=True) if labeled[i]]
        labels = ResolvedLabel.objects.bulk_create(
            [ResolvedLabel(item=item, project=project, source=LabelSource.IMPORT) for _, item in marked]
        )
        pairs = zip(marked, labels, strict=True)
        through.objects.bulk_create([through(resolvedlabel=r, labelclass=names[given[i]]) for (i, _), r in pairs])
    ids = np.asarray(Item.objects.filter(project=project).order_by("pk").values_list("pk", flat=True))
    return user, project, ids


def synthetic_embeddings(*, project, ids: np.ndarray, truth: np.ndarray, classes: int, seed: int, dim: int = 1280):
    """Class clusters in the feature space the project's head rounds use, written as a round writes them."""
    from training.constants import project_cache_dir
    from training.ml.embeddings import EmbeddingStore
    from training.models import RunMode
    from training.services.rounds import round_config
    from training.services.snapshot import label_snapshot

    cfg = round_config(project=project, classes=label_snapshot(project=project).classes, mode=RunMode.HEAD)
    store = EmbeddingStore(project_cache_dir(project))
    folder = store.folder(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 2)
    centers = rng.standard_normal((classes, dim)).astype(np.float32) * 0.35
    for start in range(0, len(ids), 10_000):
        part = slice(start, start + 10_000)
        noise = rng.standard_normal((len(ids[part]), dim), dtype=np.float32)
        store._append(folder, ids[part], (centers[truth[part]] + noise).astype(np.float16))
