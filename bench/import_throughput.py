"""Import throughput: full validation + thumbnail + phash + sha256 + DB rows on CIFAR-10 JPEGs.

    .venv/bin/python bench/import_throughput.py --data ../shared/datasets/cifar10 --n 2000

Copies n JPEGs into a temp folder with planted bad files, imports them into a throwaway SQLite
database (migrated from scratch) through the same service the UI and CLI use, and prints ONE JSON
object. The planted files must all be rejected (the script exits 1 otherwise).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def plant_bad_files(folder: Path, a_jpeg: Path) -> int:
    from PIL import Image

    bad = folder / "bad"
    bad.mkdir()
    data = a_jpeg.read_bytes()
    (bad / "zero.jpg").write_bytes(b"")
    (bad / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (bad / "text.jpg").write_bytes(b"just some text, renamed\n")
    (bad / "page.jpg").write_bytes(b"<!DOCTYPE html><html><body>hi</body></html>")
    (bad / "vector.svg").write_bytes(b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>')
    (bad / "duplicate.jpg").write_bytes(data)
    buffer = io.BytesIO()
    Image.new("L", (5000, 2000)).save(buffer, "PNG")  # 10 Mpx over the 5 Mpx limit set below
    (bad / "bomb.png").write_bytes(buffer.getvalue())
    return 7


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "cifar10"))
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=None, help="decoder threads (default: LABELLOOP_IMPORT_THREADS)")
    args = parser.parse_args()

    sources = sorted(Path(args.data).glob("train/*/*.jpg"))
    if not sources:
        sys.exit(f"no JPEGs under {args.data}/train/<class>/")
    step = max(1, len(sources) // args.n)
    picked = sources[::step][: args.n]
    work = Path(tempfile.mkdtemp(prefix="labelloop-bench-import-"))
    try:
        folder = work / "images"
        for i, src in enumerate(picked):
            target = folder / src.parent.name / f"{i:06d}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
        planted = plant_bad_files(folder, picked[0])

        os.environ.update(
            DJANGO_SETTINGS_MODULE="config.settings.test",
            DATABASE_URL=f"sqlite:///{work / 'bench.sqlite3'}",
            LABELLOOP_MEDIA_ROOT=str(work / "media"),
            LABELLOOP_DATA_ROOT=str(work / "data"),
            LABELLOOP_MAX_IMAGE_PIXELS="5000000",
        )
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from labeling.models import Item, Job
        from labeling.services.imports import decoder_threads, import_job_create, import_run
        from labeling.services.projects import project_create

        user = get_user_model().objects.create(username="bench")
        project = project_create(name="Bench", created_by=user)
        job = import_job_create(
            project=project, sources=[{"type": "folder", "path": str(folder), "name": "images"}],
            labels_from_folders=True,
        )  # fmt: skip
        start = time.perf_counter()
        cpu_start = _cpu_seconds()
        if os.environ.get("BENCH_PROFILE"):
            import cProfile

            cProfile.runctx("import_run(job_id=job.pk, threads=args.threads)", globals(), locals(), "/tmp/imp.prof")
            return
        result = import_run(job_id=job.pk, threads=args.threads)
        seconds = time.perf_counter() - start
        cpu = _cpu_seconds() - cpu_start
        job = Job.objects.get(pk=job.pk)
        files = len(picked) + planted
        out = {
            "bench": "import_throughput",
            "images": result["imported"],
            "files": files,
            "seconds": round(seconds, 3),
            "images_per_s": round(result["imported"] / seconds, 1),
            "files_per_s": round(files / seconds, 1),
            "rejected": result["rejected"],
            "duplicates": result["duplicates"],
            "planted_bad": planted,
            "labeled": result["labeled"],
            "items_in_db": Item.objects.count(),
            # CPU time of this process and its decoder threads: independent of other load on the machine.
            "cpu_ms_per_image": round(1000 * cpu / max(1, result["imported"]), 3),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "threads": decoder_threads(args.threads),
            "cpu_count": os.cpu_count(),
            "reasons": sorted({e["reason"][:60] for e in job.errors}),
        }
        print(json.dumps(out))
        if result["rejected"] + result["duplicates"] != planted or result["imported"] != len(picked):
            sys.exit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
