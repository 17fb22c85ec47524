"""manage.py drift_check PROJECT: compare the project's latest predictions with its own images now."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from labeling.models import Project
from serving.services.drift import MIN_ON_DEMAND, DriftCheckError, drift_check_run
from training.management.commands._progress import StageBar


class Command(BaseCommand):
    help = (
        "Run a drift check of a project's production inputs now: the latest predictions of the active version "
        "against a random sample of its images (MMD, permutation test). Prints the report as JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help="project slug")
        parser.add_argument("--min-predictions", type=int, default=MIN_ON_DEMAND, help="fewest predictions to run on")

    def handle(self, *args, **opts):
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"No project with slug {opts['project']!r}.")
        if opts["min_predictions"] < 2:
            raise CommandError("--min-predictions must be at least 2.")
        bar = StageBar(f"drift {project.slug}", disable=opts["verbosity"] == 0)
        try:
            report = drift_check_run(project=project, minimum=opts["min_predictions"], progress=bar)
        except DriftCheckError as exc:
            raise CommandError(f"Drift check failed: {exc}") from exc
        finally:
            bar.close()
        fields = ("version_number", "n_production", "n_reference", "statistic", "p_value", "threshold", "drifted",
                  "low_confidence_share", "low_confidence_alert")  # fmt: skip
        out = {"report": report.pk, **{f: getattr(report, f) for f in fields}}
        out["window_start"], out["window_end"] = report.window_start.isoformat(), report.window_end.isoformat()
        self.stdout.write(json.dumps(out))
