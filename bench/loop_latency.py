"""Loop latency: from the Nth new label to a re-ordered queue, through the real plumbing.

    .venv/bin/python bench/loop_latency.py                 # 10,000 items, retrain every 20 labels
    .venv/bin/python bench/loop_latency.py --items 2000 --interval 1

A throwaway SQLite database (or $DATABASE_URL), a real redis-server, a `gpu` worker and a `default` worker
with beat (the production layout) on this machine. Not timed: synthesizing the images, a warm-up round that
fills the embedding cache and warms the gpu worker, and the N-1 quiet labels. Timed: the Nth label is
recorded through the annotation service; the clock stops when the run that includes it has written the new
predictions and priorities (TrainingRun.finished_at). Prints ONE JSON object with
`seconds_label_to_requeue` and a breakdown (scheduler pick-up, queue wait, per-stage run timings).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 15.0


def bench_env(work: Path, redis_url: str, **extra: str) -> dict[str, str]:
    """Environment for this process and its workers: a throwaway database, media and data under `work`."""
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{work / 'bench.sqlite3'}",
        "LABELLOOP_MEDIA_ROOT": str(work / "media"),
        "LABELLOOP_DATA_ROOT": str(work / "data"),
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_RESULT_BACKEND": redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def synth_png(cls: int, seed: int, size: int = 32) -> bytes:
    """A class-coloured blob on noise: learnable, unique per seed."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    img = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
    hue = np.array([(cls * 73) % 256, (cls * 151) % 256, (cls * 29 + 90) % 256], dtype=np.uint8)
    cx, cy = rng.integers(8, size - 8, 2)
    yy, xx = np.mgrid[:size, :size]
    mask = (xx - cx) ** 2 + (yy - cy) ** 2 < (6 + cls % 4) ** 2
    img[mask] = hue
    buffer = io.BytesIO()
    Image.fromarray(img, "RGB").save(buffer, "PNG")
    return buffer.getvalue()


def wait(predicate, timeout: float, what, interval: float = 0.05) -> None:
    """Poll `predicate`; `what` (a string or a callable giving one) explains a timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what() if callable(what) else what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--labels", type=int, default=200, help="labels before the warm-up round")
    parser.add_argument("--retrain-every", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--strategy", default="diverse_margin")
    parser.add_argument("--interval", type=float, default=5.0, help="scheduler beat interval (production default 5)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="labelloop-bench-loop-"))
    redis_port = free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = bench_env(work, redis_url, LABELLOOP_SCHEDULER_INTERVAL=str(args.interval))
    os.environ.update(env)
    workers: list[subprocess.Popen] = []
    redis = shutil.which("redis-server") or sys.exit("redis-server is not installed")
    broker = subprocess.Popen(
        [redis, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        result = run(args, work, workers)
        print(json.dumps(result))
        if not result.get("queue_head_is_top_priority"):
            sys.exit(1)
    finally:
        for proc in workers:  # each worker runs in its own session: stop the whole process group
            with contextlib.suppress(Exception):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in workers:
            with contextlib.suppress(Exception):
                proc.wait(20)
        broker.terminate()
        broker.wait(10)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run(args, work: Path, procs: list) -> dict:
    import numpy as np
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from labeling.models import Item, ItemState, LabelClass, LabelSource, ResolvedLabel, Split
    from labeling.services.annotations import annotation_create
    from labeling.services.projects import project_create
    from labeling.services.queue import item_claim_next
    from training.models import ModelVersion, Prediction, RunStatus, TrainingRun

    user = get_user_model().objects.create(username="bench")
    project = project_create(
        name="Loop bench", created_by=user, image_size=args.image_size, al_strategy=args.strategy,
        min_labels_to_train=min(args.labels, 100), retrain_every=args.retrain_every, holdout_fraction=0.1,
    )  # fmt: skip
    classes = [LabelClass.objects.create(project=project, name=f"c{i}", order=i) for i in range(args.classes)]

    # Items: files written straight into the media root, rows in bulk (an import would validate each file).
    rng = np.random.default_rng(0)
    truth = rng.integers(0, args.classes, args.items)
    media = Path(settings.MEDIA_ROOT)
    rows = []
    setup_started = time.perf_counter()
    for i in range(args.items):
        data = synth_png(int(truth[i]), i)
        sha = hashlib.sha256(data).hexdigest()
        name = f"projects/{project.pk}/originals/{sha[:2]}/{sha}.png"
        (media / name).parent.mkdir(parents=True, exist_ok=True)
        (media / name).write_bytes(data)
        rows.append(
            Item(
                project=project, file=name, thumbnail=name, sha256=sha, width=32, height=32, format="PNG",
                original_name=f"{i:05d}.png", split=Split.HOLDOUT if rng.random() < 0.1 else Split.TRAIN,
                priority=float(rng.random()),
            )
        )  # fmt: skip
    Item.objects.bulk_create(rows, batch_size=2000)
    ids = list(Item.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    truth_of = dict(zip(ids, (int(t) for t in truth), strict=True))

    def quiet_labels(item_ids: list[int]) -> None:
        made = ResolvedLabel.objects.bulk_create(
            [ResolvedLabel(item_id=i, project=project, source=LabelSource.IMPORT) for i in item_ids]
        )
        through = ResolvedLabel.classes.through
        through.objects.bulk_create(
            [through(resolvedlabel_id=r.pk, labelclass_id=classes[truth_of[r.item_id]].pk) for r in made]
        )
        Item.objects.filter(pk__in=item_ids).update(state=ItemState.LABELED, annotation_count=1)

    order = rng.permutation(ids).tolist()
    quiet_labels(order[: args.labels])
    setup_seconds = time.perf_counter() - setup_started

    common = [sys.executable, "-m", "celery", "-A", "config.celery_app", "worker", "--pool", "prefork",
              "-l", "WARNING", "--without-gossip", "--without-mingle"]  # fmt: skip
    logs = {}
    for name, extra in (("gpu", ["-Q", "gpu", "-c", "1"]), ("default", ["-Q", "housekeeping,default", "-c", "1", "-B",
                                                                          "-s", str(work / "beat")])):  # fmt: skip
        logs[name] = work / f"worker-{name}.log"
        procs.append(
            subprocess.Popen(
                [*common, *extra, "-n", f"{name}@%h"], cwd=ROOT, env=os.environ.copy(), stdout=logs[name].open("w"),
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        )  # fmt: skip

    def log_tail() -> str:
        return "\n".join(p.read_text(errors="replace")[-1500:] for p in logs.values())

    # Warm-up round (not timed): the scheduler queues it, the gpu worker fills the embedding cache.
    warm_started = time.perf_counter()
    finished = TrainingRun.objects.filter(project=project, status__in=["succeeded", "failed"]).exclude(mode="coldstart")
    wait(finished.exists, 1800, lambda: f"the warm-up round\n{log_tail()}", interval=0.5)
    warm_seconds = time.perf_counter() - warm_started
    failed = TrainingRun.objects.filter(project=project, status=RunStatus.FAILED).first()
    if failed:
        raise SystemExit(f"a run failed: {failed.error}")

    # N-1 quiet labels, then the Nth through the annotation service.
    quiet_labels(order[args.labels : args.labels + args.retrain_every - 1])
    time.sleep(2 * args.interval)
    runs_before = set(TrainingRun.objects.filter(project=project).values_list("pk", flat=True))
    assert not TrainingRun.objects.filter(project=project, status__in=["queued", "running"]).exists()
    annotator = get_user_model().objects.create(username="annotator")
    item = item_claim_next(project=project, user=annotator)
    annotation_create(item=item, user=annotator, class_ids=[classes[truth_of[item.pk]].pk])
    labeled_at = ResolvedLabel.objects.get(item=item).updated_at
    started = time.perf_counter()

    def done() -> bool:
        return (
            TrainingRun.objects.filter(project=project, status__in=["succeeded", "failed"])
            .exclude(pk__in=runs_before)
            .exists()
        )

    wait(done, 600, lambda: f"the timed round\n{log_tail()}")
    observed = time.perf_counter() - started
    run = TrainingRun.objects.exclude(pk__in=runs_before).get(project=project)
    if run.status != RunStatus.SUCCEEDED:
        raise SystemExit(f"the timed run failed: {run.error}")
    version = ModelVersion.objects.get(project=project, active=True)
    served = item_claim_next(project=project, user=get_user_model().objects.create(username="next"))
    top = (
        Item.objects.filter(project=project, split=Split.TRAIN, state=ItemState.UNLABELED)
        .order_by("-priority", "id")
        .first()
    )
    predicted = Prediction.objects.filter(model_version=version).count()
    timings = {k: v for k, v in run.timings.items() if k not in ("sends", "sent_at")}
    return {
        "bench": "loop_latency",
        "seconds_label_to_requeue": round((run.finished_at - labeled_at).total_seconds(), 3),
        "target_seconds": TARGET_SECONDS,
        "observed_by_poller_seconds": round(observed, 3),
        "breakdown": {
            "scheduler_pickup": round((run.created_at - labeled_at).total_seconds(), 3),
            "queue_wait": round((run.started_at - run.created_at).total_seconds(), 3),
            "run_total": timings.get("total"),
            "run_stages": timings,
        },
        "requeued": served is not None and top is not None,
        "queue_head_is_top_priority": served is not None and top is not None and served.pk == top.pk,
        "items": args.items,
        "pool_scored": predicted,
        "labels_in_round": run.label_count,
        "model_version": version.number,
        "holdout_accuracy": version.metrics.get("accuracy"),
        "strategy": args.strategy,
        "image_size": args.image_size,
        "scheduler_interval": args.interval,
        "device": run.device,
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "setup_seconds_untimed": round(setup_seconds, 1),
        "warmup_round_seconds_untimed": round(warm_seconds, 1),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


if __name__ == "__main__":
    main()
