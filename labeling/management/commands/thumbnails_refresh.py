"""`manage.py thumbnails_refresh PROJECT [PROJECT ...] | --all`: make the grid's thumbnails again from the originals.

Once after upgrading past the pixel rule (imaging.pixels), for projects that hold transparent or 16-bit images:
their thumbnails then show what the model sees (white drawings on black instead of blank tiles). JPEG items are
skipped. Safe to run again.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from labeling.models import Project
from labeling.services.imports.thumbnails import thumbnails_refresh


class Command(BaseCommand):
    help = "Re-make the thumbnails of a project's non-JPEG images from their originals."

    def add_arguments(self, parser):
        parser.add_argument("projects", nargs="*", metavar="PROJECT", help="project slugs")
        parser.add_argument("--all", action="store_true", help="every project")

    def handle(self, *args, projects: list[str], **options):
        if options["all"] == bool(projects):
            raise CommandError("Name the projects (slugs) or pass --all, not both.")
        found = list(Project.objects.order_by("slug") if options["all"] else Project.objects.filter(slug__in=projects))
        missing = sorted(set(projects) - {p.slug for p in found})
        if missing:
            raise CommandError("No such project: " + ", ".join(missing))
        quiet = options["verbosity"] == 0
        for project in found:
            with tqdm(total=0, unit="img", desc=project.slug, disable=quiet, file=self.stderr) as bar:

                def progress(done: int, total: int, bar=bar) -> None:
                    bar.total = total
                    bar.update(done - bar.n)  # redrawn at most every 0.1 s (tqdm's mininterval), not per image

                counts = thumbnails_refresh(project=project, progress=progress)
            self.stdout.write(
                f"{project.slug}: {counts['refreshed']} thumbnails made again, {counts['unreadable']} originals "
                f"unreadable (kept their old thumbnail), {counts['skipped_jpeg']} JPEG skipped"
            )
