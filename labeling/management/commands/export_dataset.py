"""manage.py export_dataset PROJECT --format imagefolder|csv|jsonl|hf [filters] [--out PATH]: a dataset snapshot zip.

--classes takes what the API's `classes` takes, comma-separated: a blank entry (",,", "a,,b") is refused with the
API's message, never read as "all classes". --out follows labeling.management.out_path (shared with export_model):
a file, or a folder when it ends in "/" (created) or names an existing folder, the zip then inside it under its
download name; checked before any work, an existing file replaced and the output says so.

An export that matches no item is refused before any work, exit status 1: an empty dataset is never what the caller
meant (a filter too strict, nothing reviewed yet), and a script that goes on to train on it would fail later and less
clearly; nothing is written, so there is nothing to clean up.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from rest_framework.fields import CharField
from tqdm import tqdm

from labeling.management.out_path import export_job_copy, out_path_check
from labeling.models import JobKind, Project
from labeling.selectors.exports import FORMATS, ExportFilters
from labeling.services.exports import dataset_export_run, dataset_export_validate
from labeling.services.exports.nothing_to_export import dataset_export_refuse_empty
from labeling.services.jobs import job_create


class Command(BaseCommand):
    help = "Export a project's labeled images as a versioned dataset zip (with manifest.json and dataset hash)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("project", help="project slug")
        parser.add_argument(
            "--format",
            choices=FORMATS,
            default="imagefolder",
            help="imagefolder (a folder per class and split; single-label projects only), csv, jsonl or hf "
            "(default: %(default)s)",
        )
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
            "one) that gets the zip under its download name; checked before the export starts; an existing file "
            "is replaced (the output says so)",
        )

    def handle(self, *args, **opts) -> None:
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"No project with slug {opts['project']!r}.")
        blank = [str(n) for n, entry in enumerate(opts["classes"].split(","), 1) if not entry.strip()]
        if opts["classes"] and blank:  # the API refuses a blank entry of `classes` with this message
            entries = f"entr{'ies' if len(blank) > 1 else 'y'} {', '.join(blank)} of {opts['classes']!r}"
            raise CommandError(f"classes: {CharField.default_error_messages['blank']} ({entries})")
        out = out_path_check(opts["out"]) if opts["out"] else None
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
            dataset_export_refuse_empty(project=project, filters=filters, given=self._given(opts))
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        if out is not None and out.replaces is not None:
            self.stderr.write(f"--out {out.replaces} exists: it will be replaced when the export finishes.")
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
        where = str(export_job_copy(job=job, out=out)) if out is not None else result["files"][0]
        self.stdout.write(
            f"{result['item_count']} items, {result['bytes']} bytes, dataset hash {result['dataset_hash']} -> {where}"
        )
        if not result["item_count"]:  # every matching item's original was unreadable (listed above)
            raise CommandError("The export holds no item: every matching item's original file was unreadable.")

    @staticmethod
    def _given(opts: dict) -> list[str]:
        """The filter flags given, as the refusal of an empty export names them."""
        return [
            *(["--only-reviewed"] if opts["only_reviewed"] else []),
            *(["--only-agreed"] if opts["only_agreed"] else []),
            *([f"--min-annotators {opts['min_annotators']}"] if opts["min_annotators"] else []),
            *([f"--classes {opts['classes']!r}"] if opts["classes"] else []),
        ]
