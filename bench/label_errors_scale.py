"""The label-error search at a large team's size, through the product. Prints ONE JSON object.

    .venv/bin/python bench/label_errors_scale.py --labels 100000 --classes 10
    .venv/bin/python bench/label_errors_scale.py --labels 100000 --classes 100

A throwaway database (SQLite, or $DATABASE_URL), one project with `--labels` labeled items in `--classes` classes,
`--noise` of the labels wrong, and synthetic embeddings (class clusters, 1,280-d as Lite0's) written into the
project's feature store: embedding 100,000 images would take about 25 minutes on 2 cores and measure the backbone,
not the search. Then the search runs as the worker runs it (training.services.label_errors.label_errors_find:
database snapshot, feature store, cross-validation, judging, review tasks written), and a reviewer opens the pages.

Keys: `labels`, `classes`, `search_seconds`, `stage_seconds` (embeddings read, cross-validation and judging, review
tasks written), `rss_before_mb` and `peak_rss_mb` (the process's resident memory before the search and its peak
during it, from /proc/self/status after resetting the peak; null where that is unavailable), `review_tasks`,
`suspects_precision` and `suspects_recall` (against the labels made wrong), `page_seconds` (the label-error list,
the review queue and the model page, one request each), `machine`.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402


def _memory_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM restarts from the current resident size
        return True
    except OSError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=int, default=100_000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--dim", type=int, default=1280)
    ap.add_argument("--noise", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="labelloop-bench-label-errors-scale-"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{work / 'bench.sqlite3'}",
            "LABELLOOP_MEDIA_ROOT": str(work / "media"),
            "LABELLOOP_DATA_ROOT": str(work / "data"),
            "LOG_LEVEL": "WARNING",
        }
    )
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(json.dumps(run(args)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _project(args, rng: np.random.Generator):
    """(user, project, item ids, labels given, labels wrong): rows in bulk, as an import of labeled files ends."""
    from django.contrib.auth import get_user_model

    from labeling.models import Item, ItemState, LabelClass, LabelSource, ResolvedLabel, Split
    from labeling.services.projects import project_create

    user = get_user_model().objects.create_superuser(username="bench", password="bench", email="bench@example.org")
    project = project_create(name="Label errors at scale", created_by=user)
    classes = [LabelClass.objects.create(project=project, name=f"class {i}", order=i) for i in range(args.classes)]
    truth = rng.integers(0, args.classes, args.labels)
    given = truth.copy()
    wrong = rng.random(args.labels) < args.noise
    given[wrong] = (truth[wrong] + rng.integers(1, args.classes, int(wrong.sum()))) % args.classes
    holdout = rng.random(args.labels) < project.holdout_fraction
    for start in range(0, args.labels, 5000):
        rows = range(start, min(args.labels, start + 5000))
        items = Item.objects.bulk_create(
            [
                Item(
                    project=project, file=f"projects/{project.pk}/originals/{i:07d}.png",
                    thumbnail=f"projects/{project.pk}/originals/{i:07d}.png",
                    sha256=hashlib.sha256(f"{args.seed}-{i}".encode()).hexdigest(), width=32, height=32, format="PNG",
                    original_name=f"{i:07d}.png", split=Split.HOLDOUT if holdout[i] else Split.TRAIN,
                    state=ItemState.LABELED, annotation_count=1,
                )
                for i in rows
            ]
        )  # fmt: skip
        made = ResolvedLabel.objects.bulk_create(
            [ResolvedLabel(item_id=item.pk, project=project, source=LabelSource.IMPORT) for item in items]
        )
        through = ResolvedLabel.classes.through
        pairs = zip(rows, made, strict=True)
        through.objects.bulk_create([through(resolvedlabel=r, labelclass=classes[given[i]]) for i, r in pairs])
    ids = np.asarray(Item.objects.filter(project=project).order_by("pk").values_list("pk", flat=True))
    return user, project, ids, truth, wrong


def _embeddings(args, project, ids: np.ndarray, truth: np.ndarray, rng: np.random.Generator) -> None:
    """Class clusters in the feature space the project's rounds use, written as a round writes them."""
    from training.constants import project_cache_dir
    from training.ml.embeddings import EmbeddingStore
    from training.models import RunMode
    from training.services.rounds import round_config
    from training.services.snapshot import label_snapshot

    cfg = round_config(project=project, classes=label_snapshot(project=project).classes, mode=RunMode.HEAD)
    store = EmbeddingStore(project_cache_dir(project))
    folder = store.folder(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    centers = rng.standard_normal((args.classes, args.dim)).astype(np.float32) * 0.35
    for start in range(0, len(ids), 10_000):
        part = slice(start, start + 10_000)
        noise = rng.standard_normal((len(ids[part]), args.dim), dtype=np.float32)
        store._append(folder, ids[part], (centers[truth[part]] + noise).astype(np.float16))


def run(args) -> dict:
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse
    from tqdm import tqdm

    from labeling.models import ReviewTask
    from training.services.label_errors import label_errors_find

    rng = np.random.default_rng(args.seed)
    user, project, ids, truth, wrong = _project(args, rng)
    _embeddings(args, project, ids, truth, rng)
    gc.collect()
    stages: dict[str, float] = {}
    bar = tqdm(desc="search", disable=not sys.stderr.isatty())
    clock = {"stage": None, "at": time.perf_counter()}

    def progress(done: int, total: int, stage: str) -> None:
        now = time.perf_counter()
        if clock["stage"] is not None:
            stages[clock["stage"]] = stages.get(clock["stage"], 0.0) + now - clock["at"]
        clock.update(stage=stage, at=now)
        bar.set_postfix_str(stage)
        bar.update()

    before = _memory_mb("VmRSS")
    peak_known = _reset_peak()
    started = time.perf_counter()
    label_errors_find(project=project, on_progress=progress)
    seconds = time.perf_counter() - started
    stages[clock["stage"] or "search"] = stages.get(clock["stage"] or "search", 0.0) + time.perf_counter() - clock["at"]
    bar.close()
    peak = _memory_mb("VmHWM") if peak_known else None
    flagged = set(ReviewTask.objects.filter(project=project).values_list("item_id", flat=True))
    wrong_ids = set(ids[wrong].tolist())
    setup_test_environment()
    client = Client()
    client.force_login(user)
    pages = {}
    for name in ("labeling:review_label_errors", "labeling:review", "training:model"):
        t = time.perf_counter()
        response = client.get(reverse(name, args=[project.slug]))
        if response.status_code != 200:
            raise SystemExit(f"{name} answered {response.status_code}")
        pages[name.split(":")[1]] = round(time.perf_counter() - t, 3)
    return {
        "benchmark": "label_errors_scale",
        "labels": args.labels,
        "classes": args.classes,
        "search_seconds": round(seconds, 1),
        "stage_seconds": {k: round(v, 1) for k, v in stages.items()},
        "rss_before_mb": before,
        "peak_rss_mb": peak,
        "review_tasks": len(flagged),
        "suspects_precision": round(len(flagged & wrong_ids) / len(flagged), 3) if flagged else None,
        "suspects_recall": round(len(flagged & wrong_ids) / max(1, len(wrong_ids)), 3),
        "page_seconds": pages,
        "machine": machine(),
    }


if __name__ == "__main__":
    main()
