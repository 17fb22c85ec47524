"""manage.py reclaim_disk [--dry-run]: remove the copies of model versions this machine keeps and nothing reads.

Rounds trim their own run folder and the caches are swept as they are used (docs/production.md, "Disk per
version"); this command does it all at once on one machine: the run folders an install accumulated before
rounds trimmed them, embedding folders of older image rules (training/services/embedding_cache.py), the
prediction service's extracted ONNX files, the drift reference embeddings and the
downloaded checkpoints. Run it on each machine that has a LABELLOOP_DATA_ROOT (web/worker hosts, the prediction
service's host). Prints one JSON object: files and bytes per kind.
"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand
from tqdm import tqdm

from labeling.storage_utils import disk_usage, storage_cache_root
from serving.runtime.registry import serving_cache_root, serving_cache_sweep
from serving.services.drift_reference import drift_reference_root, drift_reference_sweep
from training.services.artifacts import downloaded_checkpoints_sweep
from training.services.disk import run_folders_trim
from training.services.embedding_cache import embedding_folders_sweep


class Command(BaseCommand):
    help = (
        "Remove the copies of model versions nothing reads on this machine: weights left in finished run folders, "
        "embedding folders of older image rules, and cached ONNX files,"
        " drift references and downloaded checkpoints of versions no project serves."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")

    def handle(self, *args, **opts):
        dry_run = opts["dry_run"]
        quiet = opts["verbosity"] == 0
        with tqdm(total=0, desc="run folders", unit="run", file=sys.stderr, disable=quiet) as bar:

            def step(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            runs = run_folders_trim(dry_run=dry_run, progress=step)
        with tqdm(total=0, desc="embedding folders", unit="project", file=sys.stderr, disable=quiet) as bar:

            def step(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            embeddings = embedding_folders_sweep(dry_run=dry_run, progress=step)
        out = {"dry_run": dry_run, "run_folders": runs, "embedding_folders": embeddings}
        sweeps = {
            "serving_cache": (serving_cache_root(), serving_cache_sweep),
            "drift_reference": (drift_reference_root(), drift_reference_sweep),
        }
        for name, (root, sweep) in sweeps.items():
            out[name] = self._sweep(root, sweep, dry_run=dry_run)
        downloaded = {"entries": 0, "bytes": 0}
        for folder in sorted(p for p in (storage_cache_root() / "models").glob("*") if p.is_dir()):
            sweep = lambda dry_run, f=folder: downloaded_checkpoints_sweep(f, dry_run=dry_run)  # noqa: E731
            found = self._sweep(folder, sweep, dry_run=dry_run)
            downloaded = {k: downloaded[k] + found[k] for k in downloaded}
        out["downloaded_checkpoints"] = downloaded
        swept = sum(out[k]["bytes"] for k in (*sweeps, "downloaded_checkpoints"))
        out["bytes"] = runs["bytes"] + embeddings["bytes"] + swept
        self.stdout.write(json.dumps(out))

    @staticmethod
    def _sweep(root, sweep, *, dry_run: bool) -> dict:
        """One sweep: the entries (and their bytes) it removed, or with dry_run would remove."""
        sizes = {name: disk_usage(root / name) for name in sweep(dry_run=True)}  # measured before they go
        names = list(sizes) if dry_run else sweep(dry_run=False)
        return {"entries": len(names), "bytes": sum(sizes.get(n, 0) for n in names)}
