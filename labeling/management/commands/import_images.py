"""`manage.py import_images PROJECT PATH [--labels-from-folders] [--csv FILE]`: validated import, in process.

PATH is a folder (recursive), a zip, or a single image. The run is recorded as an import Job, so the
web UI shows it too. Exit status 1 when the project or the path does not exist.

--csv with --labels-from-folders is allowed, as on the import page (a CSV dropped with folders): a file the CSV names
takes the CSV's label, every other file its folder's; the command says so before it starts. After the run it prints
what the page shows: the rejected files, the classes the labels made (those close to a class the project had first,
a probable typo, at the top), with --labels-from-folders which folder became which class with the files imported
from it ("76 of 77 files imported" when one was refused) and why a zip's top folder is or is not one, and a summary
that counts the labels not applied (bad CSV rows, refused classes) beside the rejected files.
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
        parser.add_argument(
            "--labels-from-folders",
            action="store_true",
            help="sub-folder names are classes; with --csv, a file the CSV names takes the CSV's label instead",
        )
        parser.add_argument(
            "--csv", help="CSV of filename,label to attach labels (wins over --labels-from-folders for its files)"
        )
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
        if csv_path and options["labels_from_folders"]:
            self.stdout.write(
                "--csv and --labels-from-folders: a file the CSV names takes the CSV's label; every other file takes "
                "its folder's."
            )
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

            import_run(job_id=job.pk, progress=progress, threads=options["threads"])
        job.refresh_from_db()
        result = job.result or {}
        if not options["quiet_rejections"]:
            for error in job.errors:
                self.stdout.write(f"rejected {error['name']}: {error['reason']}")
        self._new_classes(result.get("new_classes") or [])
        self._folder_classes(result.get("folder_classes") or {})
        refused = result.get("label_errors", 0)
        labels = f", {refused} label{'s' if refused != 1 else ''} not applied" if refused else ""
        summary = (
            f"Import #{job.number} ({job.status}): {result.get('imported', 0)} imported, "
            f"{result.get('duplicates', 0)} duplicates, {result.get('rejected', 0)} rejected{labels}, "
            f"{result.get('labeled', 0)} labeled"
        )
        if replaced := result.get("relabeled", 0):  # labels an earlier import gave, that the CSV changed
            summary += f", {replaced} import label{'s' if replaced != 1 else ''} replaced"
            for row in result.get("relabeled_files") or []:
                self.stdout.write(f"replaced {row['name']}: {row['before']} -> {row['after']}")
        self.stdout.write(self.style.WARNING(summary) if refused else self.style.SUCCESS(summary))
        if job.status == "failed":
            raise CommandError(job.message)

    def _new_classes(self, made: list[dict]) -> None:
        """The classes the labels made, as the import page lists them: near-misses of a class there before first."""
        if not made:
            return
        self.stdout.write(f"{len(made)} new class{'es' if len(made) != 1 else ''} made from the labels:")
        for row in made:  # job.result keeps them near-misses first (labeling.services.imports.new_classes)
            files = f"{row['files']} file{'s' if row['files'] != 1 else ''}"
            if row.get("near"):
                self.stdout.write(self.style.WARNING(f"  {row['name']} ({files}; close to {row['near']}: a typo?)"))
            elif row.get("also"):
                also = ", ".join(row["also"])
                self.stdout.write(self.style.WARNING(f"  {row['name']} ({files}; the project also has {also})"))
            else:
                self.stdout.write(f"  {row['name']} ({files})")

    def _folder_classes(self, report: dict, shown: int = 20) -> None:
        """Which folder became which class, as the import page's job card says: first why a top folder is or is not a
        class (labeling.services.imports.folder_classes), then up to `shown` folders."""
        for note in report.get("top_folders") or []:
            self.stdout.write(note["why"] + ".")
        rows, count = report.get("folders") or [], report.get("count", 0)
        if not rows:
            return
        self.stdout.write(f"{count} folder{'s' if count != 1 else ''} read as classes:")
        for row in rows[:shown]:  # files imported; "76 of 77 files imported" when some were refused, as the page says
            files, offered = row["files"], row.get("offered", row["files"])
            n = f"{files} file{'s' if files != 1 else ''}"
            if offered != files:
                n = f"{files} of {offered} files imported"
            self.stdout.write(f"  {row['folder']} -> {row['class']} ({n})")
        if count > shown:
            self.stdout.write(f"  ... and {count - shown} more (the import page lists {len(rows)})")
