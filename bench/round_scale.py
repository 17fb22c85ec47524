"""A training round at a large pool, through the product: the head round a CPU worker runs. Prints ONE JSON object.

    .venv/bin/python bench/round_scale.py --items 100000 --labels 1000
    .venv/bin/python bench/round_scale.py --items 100000 --labels 20000 --classes 100

A throwaway database (SQLite, or $DATABASE_URL) with one project of `--items` items, `--labels` of them labeled,
and synthetic embeddings for all of them in the project's feature store (bench/scale_setup.py: embedding 100,000
images would take about 25 minutes on 2 cores). One run is queued and executed as the `gpu` queue's worker executes
it (training.services.runs.training_run_execute, head mode): snapshot, embeddings read, the head fitted and
self-trained on the pool, the pool scored and ranked by the default strategy, the version saved, a prediction written
for every pool item and the queue's priorities set. Then an annotator asks for the next image.

Keys: `items`, `labels`, `classes`, `round_seconds`, `stage_seconds` (the run's own timings, as the model page shows
them), `rss_before_mb` and `peak_rss_mb` (the process's resident memory before the round and its peak during it, from
/proc/self/status; null where unavailable), `run_status`, `holdout_accuracy`, `predictions`, `next_item_seconds`,
`machine`.
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
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--labels", type=int, default=1000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not 0 < args.labels <= args.items:
        raise SystemExit("--labels must be between 1 and --items")
    # What a new version sets off (review feeds, label-error search, holdout predictions) runs on the `default`
    # worker, not in the round's process: no broker here, so those messages are logged as unsent, and not run eagerly.
    with throwaway_django("labelloop-bench-round-scale-", CELERY_TASK_ALWAYS_EAGER="false",
                          CELERY_BROKER_URL="redis://127.0.0.1:9/0"):  # fmt: skip
        print(json.dumps(run(args)))


def run(args) -> dict:
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    from training.models import ModelVersion, Prediction, RunMode, RunTrigger, TrainingRun
    from training.services.runs import training_run_enqueue, training_run_execute

    rng = np.random.default_rng(args.seed)
    truth = rng.integers(0, args.classes, args.items)
    labeled = np.zeros(args.items, dtype=bool)
    labeled[rng.choice(args.items, args.labels, replace=False)] = True
    user, project, ids = bulk_project(items=args.items, classes=args.classes, given=truth, labeled=labeled,
                                      seed=args.seed, name="Round at scale")  # fmt: skip
    synthetic_embeddings(project=project, ids=ids, truth=truth, classes=args.classes, seed=args.seed)
    run = training_run_enqueue(project=project, trigger=RunTrigger.COMMAND, mode=RunMode.HEAD, send=False)
    gc.collect()
    before = memory_mb("VmRSS")
    peak_known = reset_peak()
    started = time.perf_counter()
    summary = training_run_execute(run_id=run.pk, worker="bench")
    seconds = time.perf_counter() - started
    peak = memory_mb("VmHWM") if peak_known else None
    run = TrainingRun.objects.get(pk=run.pk)
    if run.status != "succeeded":
        raise SystemExit(f"the run {run.status}: {run.error[:500]}")
    version = ModelVersion.objects.get(project=project, active=True)
    setup_test_environment()
    client = Client()
    client.force_login(user)
    t = time.perf_counter()
    response = client.get(reverse("labeling:label", args=[project.slug]))
    next_seconds = time.perf_counter() - t
    if response.status_code != 200:
        raise SystemExit(f"the label page answered {response.status_code}")
    return {
        "benchmark": "round_scale",
        "items": args.items,
        "labels": args.labels,
        "classes": args.classes,
        "round_seconds": round(seconds, 1),
        "stage_seconds": {k: round(float(v), 2) for k, v in (run.timings or {}).items() if isinstance(v, int | float)},
        "rss_before_mb": before,
        "peak_rss_mb": peak,
        "run_status": summary.get("status"),
        "holdout_accuracy": version.metrics.get("accuracy"),
        "predictions": Prediction.objects.filter(model_version=version).count(),
        "next_item_seconds": round(next_seconds, 3),
        "machine": machine(),
    }


if __name__ == "__main__":
    main()
