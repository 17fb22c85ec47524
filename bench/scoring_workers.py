"""Sharded re-scoring throughput: one Celery worker, then two, scoring the same pool with nothing cached.

    .venv/bin/python bench/scoring_workers.py                      # 4,000 items, 128 px, shards of 500
    .venv/bin/python bench/scoring_workers.py --items 1000 --image-size 64

A throwaway SQLite database (or $DATABASE_URL) and a real redis-server on this machine. Not timed: a round in
this process trains the active model on the labeled items (before the pool exists, so it embeds only those).
Timed, per phase: from sending the chord to the scoring Job's end (shards embed with the backbone, predict,
upsert predictions; the last step ranks the whole pool and writes priorities), with the embedding cache
emptied first and fresh worker processes (each `-c 1`, `--threads` torch threads), so cold starts count.
Prints ONE JSON object: pool, one_worker_img_per_s, two_workers_img_per_s, speedup, and the details.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loop_latency import bench_env, free_port, synth_png, wait  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=4000, help="pool size")
    parser.add_argument("--labels", type=int, default=200)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--shard-size", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker process")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="labelloop-bench-scoring-"))
    redis_port = free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = bench_env(
        work,
        redis_url,
        LABELLOOP_SCORE_SHARD_SIZE=str(args.shard_size),
        LABELLOOP_ROUND_OVERRIDES=json.dumps({"num_workers": 0}),
    )
    os.environ.update(env)
    redis = shutil.which("redis-server") or sys.exit("redis-server is not installed")
    broker = subprocess.Popen(
        [redis, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    workers: list[subprocess.Popen] = []
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(json.dumps(run(args, work, workers)))
    finally:
        stop(workers)
        broker.terminate()
        broker.wait(10)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def stop(procs: list) -> None:
    for proc in procs:  # each worker runs in its own session: stop the whole process group
        with contextlib.suppress(Exception):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.wait(30)
    procs.clear()


def make_items(project, n: int, start: int, truth, media: Path):
    from labeling.models import Item, Split

    rows = []
    for i in range(start, start + n):
        data = synth_png(int(truth[i]), i)
        sha = hashlib.sha256(data).hexdigest()
        name = f"projects/{project.pk}/originals/{sha[:2]}/{sha}.png"
        (media / name).parent.mkdir(parents=True, exist_ok=True)
        (media / name).write_bytes(data)
        rows.append(
            Item(project=project, file=name, thumbnail=name, sha256=sha, width=32, height=32, format="PNG",
                 original_name=f"{i:05d}.png", split=Split.TRAIN)
        )  # fmt: skip
    return Item.objects.bulk_create(rows, batch_size=2000)


def run(args, work: Path, procs: list) -> dict:
    import numpy as np
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from labeling.models import Item, ItemState, Job, JobKind, JobStatus, LabelClass, LabelSource, ResolvedLabel
    from labeling.services.jobs import job_create
    from labeling.services.projects import project_create
    from training import services
    from training.models import ModelVersion, Prediction
    from training.services import sharding

    user = get_user_model().objects.create(username="bench")
    project = project_create(name="Scoring bench", created_by=user, image_size=args.image_size, holdout_fraction=0.0)
    classes = [LabelClass.objects.create(project=project, name=f"c{i}", order=i) for i in range(args.classes)]
    truth = np.random.default_rng(0).integers(0, args.classes, args.labels + args.items)
    media = Path(settings.MEDIA_ROOT)

    labeled = make_items(project, args.labels, 0, truth, media)
    made = ResolvedLabel.objects.bulk_create(
        [ResolvedLabel(item=item, project=project, source=LabelSource.IMPORT) for item in labeled]
    )
    through = ResolvedLabel.classes.through
    through.objects.bulk_create(
        [through(resolvedlabel_id=r.pk, labelclass_id=classes[truth[i]].pk) for i, r in enumerate(made)]
    )
    Item.objects.filter(pk__in=[i.pk for i in labeled]).update(state=ItemState.LABELED, annotation_count=1)
    run = services.training_run_enqueue(project=project, trigger="manual", mode="head", send=False)
    summary = services.training_run_execute(run_id=run.pk, worker="bench")
    if summary.get("status") != "succeeded":
        raise SystemExit(f"the setup round failed: {summary}")
    version = ModelVersion.objects.get(project=project, active=True)
    make_items(project, args.items, args.labels, truth, media)
    pool = len(sharding.pool_ids(project=project))
    cache = services.project_cache_dir(project)

    common = [sys.executable, "-m", "celery", "-A", "config.celery_app", "worker", "-Q", sharding.SCORE_QUEUE,
              "-c", "1", "--pool", "prefork", "-l", "INFO", "--without-gossip", "--without-mingle"]  # fmt: skip
    threads = str(args.threads)
    worker_env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    phases = {}
    for n_workers in (1, 2):
        shutil.rmtree(cache, ignore_errors=True)  # embeddings NOT cached: the shards run the backbone
        Prediction.objects.filter(model_version=version).delete()
        logs = [work / f"worker-{n_workers}-{k}.log" for k in range(n_workers)]
        for k, log in enumerate(logs):
            procs.append(
                subprocess.Popen(
                    [*common, "-n", f"w{k + 1}@%h"], cwd=ROOT, env=worker_env, stdout=log.open("w"),
                    stderr=subprocess.STDOUT, start_new_session=True,
                )
            )  # fmt: skip
        for log in logs:
            wait(lambda log=log: "ready." in log.read_text(errors="replace"), 120, f"a worker ({log.name})")
        job = job_create(project=project, kind=JobKind.SCORE)
        started = time.perf_counter()
        info = sharding.sharded_scoring_start(project=project, job=job)
        finished = Job.objects.filter(pk=job.pk, status__in=[JobStatus.SUCCEEDED, JobStatus.FAILED])
        wait(finished.exists, 3600, lambda logs=logs: "\n".join(p.read_text()[-2000:] for p in logs), interval=0.1)
        seconds = time.perf_counter() - started
        job.refresh_from_db()
        if job.status != JobStatus.SUCCEEDED:
            raise SystemExit(f"scoring with {n_workers} worker(s) failed: {job.message}")
        scored = Prediction.objects.filter(model_version=version).count()
        if scored != pool:
            raise SystemExit(f"{scored} predictions for a pool of {pool}")
        phases[n_workers] = {
            "seconds": round(seconds, 2),
            "img_per_s": round(pool / seconds, 1),
            "shards": info["shards"],
            "shards_per_worker": job.result["workers"],
            "shard_seconds_sum": job.result["shard_seconds"],
        }
        stop(procs)
    return {
        "bench": "scoring_workers",
        "pool": pool,
        "one_worker_img_per_s": phases[1]["img_per_s"],
        "two_workers_img_per_s": phases[2]["img_per_s"],
        "speedup": round(phases[2]["img_per_s"] / phases[1]["img_per_s"], 2),
        "phases": {"one_worker": phases[1], "two_workers": phases[2]},
        "shard_size": args.shard_size,
        "image_size": args.image_size,
        "backbone": project.backbone,
        "strategy": project.al_strategy,
        "torch_threads_per_worker": args.threads,
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
    }


if __name__ == "__main__":
    main()
