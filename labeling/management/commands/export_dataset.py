"""manage.py export_dataset PROJECT --format imagefolder|csv|jsonl|hf [filters] [--out PATH]: a dataset snapshot zip.

--classes takes what the API's `classes` takes, comma-separated: a blank entry (",,", "a,,b") is refused with the
API's message, never read as "all classes". --out is a file, or a folder when it ends in "/" (created) or names
an existing folder: the zip goes inside it under its download name.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from rest_framework.fields import CharField
from tqdm import tqdm

from labeling.models import JobKind, Project
from labeling.selectors.exports import FORMATS, ExportFilters
from labeling.services.exports import dataset_export_run, dataset_export_validate, export_job_file
from labeling.services.jobs import job_create


class Command(BaseCommand):
    help = "Export a project's labeled images as a versioned dataset zip (with manifest.json and dataset hash)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("project", help="project slug")
        parser.add_argument("--format", choices=FORMATS, default="imagefolder")
        parser.add_argument("--only-reviewed", action="store_true", help="only labels a reviewer accepted/corrected")
        parser.add_argument("--only-agreed", action="store_true", help="only items where all annotators agree")
        parser.add_argument("--min-annotators", type=int, default=0)
        parser.add_argument(
            "--classes",
            default="",
            help='comma-separated class names or paths ("a/b", "a / b", "/a/b/"); a class stands for itself and '
            "every class under it; empty = all",
        )
        parser.add_argument("--val-fraction", type=float, default=0.1)
        parser.add_argument(
            "--out",
            default="",
            help='copy the zip here: a file path, or a folder (ending in "/", created if missing, or an existing '
            "one) that gets the zip under its download name",
        )

    def handle(self, *args, **opts) -> None:
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"No project with slug {opts['project']!r}.")
        blank = [str(n) for n, entry in enumerate(opts["classes"].split(","), 1) if not entry.strip()]
        if opts["classes"] and blank:  # the API refuses a blank entry of `classes` with this message
            entries = f"entr{'ies' if len(blank) > 1 else 'y'} {', '.join(blank)} of {opts['classes']!r}"
            raise CommandError(f"classes: {CharField.default_error_messages['blank']} ({entries})")
        out_dir = bool(opts["out"]) and (opts["out"].endswith(("/", os.sep)) or Path(opts["out"]).is_dir())
        if out_dir and Path(opts["out"]).exists() and not Path(opts["out"]).is_dir():
            raise CommandError(f"--out {opts['out']!r} ends in a separator but is a file, not a folder.")
        filters = ExportFilters.from_dict(
            {
                "only_reviewed": opts["only_reviewed"],
                "only_agreed": opts["only_agreed"],
                "min_annotators": opts["min_annotators"],
                "classes": opts["classes"],
                "val_fraction": opts["val_fraction"],
            }
        )
        try:
            dataset_export_validate(project=project, fmt=opts["format"], filters=filters)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        params = {"format": opts["format"], "filters": filters.as_dict()}
        job = job_create(project=project, kind=JobKind.EXPORT_DATASET, params=params)
        bar = tqdm(total=0, unit="img", desc=f"export {opts['format']}", disable=opts["verbosity"] == 0)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)  # redrawn at most every 0.1 s (tqdm's mininterval), not per image

        try:
            dataset_export_run(job_id=job.pk, progress=progress)
        finally:
            bar.close()
        job.refresh_from_db()
        if job.status != "succeeded":
            raise CommandError(f"Export failed: {job.message}")
        for error in job.errors[:20]:
            self.stderr.write(f"skipped {error['name']}: {error['reason']}")
        result = job.result
        where = result["files"][0]
        if opts["out"]:
            handle, name = export_job_file(job=job)
            target = Path(opts["out"])
            if out_dir:
                target.mkdir(parents=True, exist_ok=True)
                target = target / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with handle, target.open("wb") as out:
                shutil.copyfileobj(handle, out, 1024 * 1024)
            where = str(target.resolve())
        self.stdout.write(
            f"{result['item_count']} items, {result['bytes']} bytes, dataset hash {result['dataset_hash']} -> {where}"
        )
