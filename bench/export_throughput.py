"""Dataset export throughput: a 10,000-item labeled project exported as a Job (with progress) to an ImageFolder
zip and to JSONL, through the same service the UI, the API's Celery task and the command use.

    .venv/bin/python bench/export_throughput.py [--n 10000] [--classes 10]

Builds a throwaway SQLite database (migrated from scratch) with n tiny generated PNGs and resolved labels,
runs each export job, and prints ONE JSON object. For reference: Label Studio 1.23 takes about 25 s to export
a JSON of 10k tasks (no images) on this kind of machine.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tiny_png(seed: int) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (16, 16), ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    image.putpixel((0, 0), (seed % 256, (seed // 256) % 256, (seed // 65536) % 256))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def build_project(n: int, n_classes: int, media: Path):
    from labeling.models import Item, ItemState, LabelClass, LabelSource, Project, ResolvedLabel, Split

    project = Project.objects.create(name="Export bench", slug="export-bench")
    classes = [LabelClass.objects.create(project=project, name=f"class {c:02d}", order=c) for c in range(n_classes)]
    items = []
    for i in range(n):
        data = tiny_png(i)
        sha = hashlib.sha256(data).hexdigest()
        key = f"projects/{project.pk}/originals/{sha[:2]}/{sha}.png"
        path = media / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        items.append(
            Item(project=project, file=key, thumbnail=key, sha256=sha, width=16, height=16, format="PNG",
                 original_name=f"photo {i:05d}.png", split=Split.HOLDOUT if i % 10 == 0 else Split.TRAIN,
                 state=ItemState.LABELED, annotation_count=1)
        )  # fmt: skip
    Item.objects.bulk_create(items, batch_size=2000)
    ids = list(Item.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    ResolvedLabel.objects.bulk_create(
        [ResolvedLabel(item_id=pk, project=project, source=LabelSource.SINGLE, annotator_count=1) for pk in ids],
        batch_size=2000,
    )
    through = ResolvedLabel.classes.through
    labels = ResolvedLabel.objects.filter(project=project).order_by("item_id").values_list("id", "item_id")
    through.objects.bulk_create(
        [through(resolvedlabel_id=rid, labelclass_id=classes[item_id % n_classes].pk) for rid, item_id in labels],
        batch_size=5000,
    )
    return project


def run_export(project, fmt: str) -> dict:
    from labeling.models import Job, JobKind
    from labeling.selectors.exports import ExportFilters
    from labeling.services.exports import dataset_export_run, export_job_file
    from labeling.services.jobs import job_create

    params = {"format": fmt, "filters": ExportFilters().as_dict()}
    job = job_create(project=project, kind=JobKind.EXPORT_DATASET, params=params)
    updates = []
    started = time.perf_counter()
    dataset_export_run(job_id=job.pk, progress=lambda done, total: updates.append(done))
    seconds = time.perf_counter() - started
    job = Job.objects.get(pk=job.pk)
    assert job.status == "succeeded", job.message
    assert job.done == job.total == job.result["item_count"], (job.done, job.total)
    handle, _ = export_job_file(job=job)
    with handle, zipfile.ZipFile(handle) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        entries = len(zf.namelist())
    return {
        "seconds": round(seconds, 3),
        "bytes": job.result["bytes"],
        "items_per_s": round(job.result["item_count"] / seconds, 1),
        "progress_updates": len(updates),
        "zip_entries": entries,
        "dataset_hash": manifest["dataset_hash"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--classes", type=int, default=10)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="labelloop-bench-export-"))
    try:
        os.environ.update(
            DJANGO_SETTINGS_MODULE="config.settings.test",
            DATABASE_URL=f"sqlite:///{work / 'bench.sqlite3'}",
            LABELLOOP_MEDIA_ROOT=str(work / "media"),
            LABELLOOP_DATA_ROOT=str(work / "data"),
        )
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        project = build_project(args.n, args.classes, work / "media")
        setup_seconds = time.perf_counter() - started
        results = {fmt: run_export(project, fmt) for fmt in ("imagefolder", "jsonl")}
        if len({r["dataset_hash"] for r in results.values()}) != 1:
            sys.exit("the two formats disagree on the dataset hash")
        print(
            json.dumps(
                {
                    "items": args.n,
                    "seconds": {fmt: r["seconds"] for fmt, r in results.items()},
                    "bytes": {fmt: r["bytes"] for fmt, r in results.items()},
                    "items_per_s": {fmt: r["items_per_s"] for fmt, r in results.items()},
                    "progress_updates": {fmt: r["progress_updates"] for fmt, r in results.items()},
                    "zip_entries": {fmt: r["zip_entries"] for fmt, r in results.items()},
                    "setup_seconds": round(setup_seconds, 2),
                    "database": "sqlite",
                    "cpus": os.cpu_count(),
                    "load_avg_1m": round(os.getloadavg()[0], 2),
                    "reference_label_studio_1_23_json_10k_s": 25,
                }
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
