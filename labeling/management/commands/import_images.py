"""`manage.py import_images PROJECT PATH [--labels-from-folders] [--csv FILE]`: validated import, in process.

PATH is a folder (recursive), a zip, or a single image. The run is recorded as an import Job, so the
web UI shows it too. Exit status 1 when the project or the path does not exist.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from labeling.models import Project
from labeling.services.imports import import_job_create, import_run


class Command(BaseCommand):
    help = "Import images (folder, zip or file) into a project with full validation."

    def add_arguments(self, parser):
        parser.add_argument("project", help="project slug")
        parser.add_argument("path", help="folder, .zip or image file")
        parser.add_argument("--labels-from-folders", action="store_true", help="sub-folder names are classes")
        parser.add_argument("--csv", help="CSV of filename,label to attach labels")
        parser.add_argument(
            "--threads", "--processes", dest="threads", type=int, default=None,
            help="decoder threads (default: LABELLOOP_IMPORT_THREADS, else one per core up to 4)",
        )  # fmt: skip
        parser.add_argument("--quiet-rejections", action="store_true", help="print only the summary")

    def handle(self, *args, **options):
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project with slug {options['project']!r}.")
        path = Path(options["path"]).expanduser()
        if not path.exists():
            raise CommandError(f"{path} does not exist.")
        csv_path = options.get("csv")
        if csv_path and not Path(csv_path).is_file():
            raise CommandError(f"CSV {csv_path} does not exist.")
        kind = "folder" if path.is_dir() else "zip" if path.suffix.lower() == ".zip" else "file"
        job = import_job_create(
            project=project,
            sources=[{"type": kind, "path": str(path.resolve()), "name": path.name}],
            csv_path=str(Path(csv_path).resolve()) if csv_path else None,
            labels_from_folders=options["labels_from_folders"],
        )
        with tqdm(total=0, unit="file", disable=options["verbosity"] == 0, file=self.stderr) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            result = import_run(job_id=job.pk, progress=progress, threads=options["threads"])
        job.refresh_from_db()
        if not options["quiet_rejections"]:
            for error in job.errors:
                self.stdout.write(f"rejected {error['name']}: {error['reason']}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Import #{job.pk} ({job.status}): {result.get('imported', 0)} imported, "
                f"{result.get('duplicates', 0)} duplicates, {result.get('rejected', 0)} rejected, "
                f"{result.get('labeled', 0)} labeled"
            )
        )
        if job.status == "failed":
            raise CommandError(job.message)
