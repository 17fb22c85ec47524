"""manage.py send_to_queue PROJECT --lowest-confidence N | --random N | --newest N [--class PATH] [--since WHEN]
[--until WHEN] [--model-version N]: send production predictions' kept images to the labeling queue (an import job)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from labeling.models import Project
from labeling.selectors.classes import class_path_normalize
from serving.selectors.send_selection import Order, Selection
from serving.selectors.sent import send_outcome
from serving.services.send_to_queue import predictions_send_to_queue


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise CommandError(f"Not a date or time: {text!r} (use e.g. 2026-12-01 or 2026-12-01T08:00).") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Send production images (kept by the prediction log, not sent before) to the project's labeling queue."

    def add_arguments(self, parser) -> None:
        parser.add_argument("project", help="project slug")
        how = parser.add_mutually_exclusive_group()
        how.add_argument("--lowest-confidence", type=int, metavar="N", help="the N least-confident (default: 50)")
        how.add_argument("--random", type=int, metavar="N", help="a uniform random sample of N (live accuracy)")
        how.add_argument("--newest", type=int, metavar="N", help="the N newest")
        how.add_argument("--most-drifted", type=int, metavar="N", help="the N least like the project's images")
        parser.add_argument(
            "--class",
            dest="top_class",
            default="",
            help='only this predicted class, as a path "a/b" or "a / b", and every class under it (multi-label: one of '
            "those predicted)",
        )
        parser.add_argument("--since", default="", help="from this UTC date or time (ISO 8601)")
        parser.add_argument("--until", default="", help="before this UTC date or time (ISO 8601)")
        parser.add_argument("--model-version", type=int, default=None, help="only predictions of this model version")
        parser.add_argument("--seed", type=int, default=None, help="seed of --random")

    def handle(self, *args, **opts) -> None:
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"No project with slug {opts['project']!r}.")
        # No option at all: the 50 least confident. A number given is checked as given (0 is refused, not 50).
        order = Order.LOWEST_CONFIDENCE
        limit = 50 if opts["lowest_confidence"] is None else opts["lowest_confidence"]
        if opts["random"] is not None:
            order, limit = Order.RANDOM, opts["random"]
        elif opts["newest"] is not None:
            order, limit = Order.NEWEST, opts["newest"]
        elif opts["most_drifted"] is not None:
            order, limit = Order.MOST_DRIFTED, opts["most_drifted"]
        selection = Selection(
            order=order,
            limit=limit,
            top_class=class_path_normalize(opts["top_class"]) if opts["top_class"].strip() else "",
            since=_when(opts["since"]) if opts["since"] else None,
            until=_when(opts["until"]) if opts["until"] else None,
            version_number=opts["model_version"],
            seed=opts["seed"],
        )
        try:
            job = predictions_send_to_queue(project=project, selection=selection, source="command")
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        job.refresh_from_db()
        state = job.get_status_display().lower() + (f": {job.message}" if job.message else "")
        sent, note = send_outcome(job)
        self.stdout.write(
            f"{sent} production images sent to the labeling queue of {project.slug}: import job {job.number} ({state})"
            + (f"; {note}." if note else ".")
        )
