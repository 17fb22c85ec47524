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
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402
from bench.scale_setup import bulk_project, memory_mb, reset_peak, synthetic_embeddings, throwaway_django  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=int, default=100_000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--noise", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with throwaway_django("labelloop-bench-label-errors-scale-"):
        print(json.dumps(run(args)))


def run(args) -> dict:
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse
    from tqdm import tqdm

    from labeling.models import ReviewTask
    from training.services.label_errors import label_errors_find

    rng = np.random.default_rng(args.seed)
    truth = rng.integers(0, args.classes, args.labels)
    given = truth.copy()
    wrong = rng.random(args.labels) < args.noise
    given[wrong] = (truth[wrong] + rng.integers(1, args.classes, int(wrong.sum()))) % args.classes
    everything = np.ones(args.labels, dtype=bool)
    user, project, ids = bulk_project(items=args.labels, classes=args.classes, given=given, labeled=everything,
                                      seed=args.seed, name="Label errors at scale")  # fmt: skip
    synthetic_embeddings(project=project, ids=ids, truth=truth, classes=args.classes, seed=args.seed)
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

    before = memory_mb("VmRSS")
    peak_known = reset_peak()
    started = time.perf_counter()
    label_errors_find(project=project, on_progress=progress)
    seconds = time.perf_counter() - started
    stages[clock["stage"] or "search"] = stages.get(clock["stage"] or "search", 0.0) + time.perf_counter() - clock["at"]
    bar.close()
    peak = memory_mb("VmHWM") if peak_known else None
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
