"""manage.py score PROJECT: re-score the open pool with the active model here, and rewrite priorities."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from labeling.models import Project
from training import selectors, services
from training.management.commands._progress import StageBar


class Command(BaseCommand):
    help = "Score every open item of a project with its active model and re-rank the queue (in this process)."

    def add_arguments(self, parser):
        parser.add_argument("project", help="project slug or id")

    def handle(self, *args, **opts):
        try:
            project = selectors.project_for_command(ref=opts["project"])
        except Project.DoesNotExist as exc:
            raise CommandError(str(exc)) from exc
        bar = StageBar(f"score {project.slug}", disable=opts["verbosity"] == 0)
        try:
            result = services.model_score_pool(project=project, progress=bar)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()
        self.stdout.write(
            self.style.SUCCESS(f"Scored {result['scored']} items with model v{result['version']}; queue re-ranked.")
        )
