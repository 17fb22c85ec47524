"""manage.py train PROJECT [--mode head|finetune] [--wait] [--in-process] [--force]: queue (or run) a training round.
With no new labels since a version and the same settings it refuses (the same model again) unless --force.

With a reachable broker and a worker on the `gpu` queue the run goes to the worker (and --wait follows
it with a progress bar); otherwise, or with --in-process, it runs here. Exits non-zero when the run fails. A new
version's holdout figures are printed as the pages show them: each with its n and 95 % interval
(training.ml.intervals.headline).
"""

from __future__ import annotations

import argparse
import time

from django.core.management.base import BaseCommand, CommandError

from labeling.models import Project
from training import selectors, services
from training.management.commands._progress import StageBar
from training.ml.intervals import SMALL_HOLDOUT, headline
from training.models import IN_FLIGHT, RunMode, RunStatus, RunTrigger, TrainingRun
from training.services.runs import RunSameModel

MODES = [RunMode.HEAD.value, RunMode.FINETUNE.value]  # the values typed: argparse lists them on a wrong one


def timeout_seconds(value: str) -> float:
    """--timeout: a number of seconds, at least 1 (0 or less would give up before the first look)."""
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not seconds >= 1 or seconds == float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be at least 1 second (got {value})")
    return seconds


def figures_text(metrics: dict) -> str:
    """'holdout of 27 items: accuracy 0.778 [0.592, 0.894], ...' (95 % intervals), as the model page shows them."""
    rows = [row for row in headline(metrics) if row["value"] is not None]
    if not rows:
        return "holdout n/a"
    n = rows[0]["n"] if rows[0]["n"] is not None else metrics.get("holdout_size")
    shown = []
    for row in rows:
        bound = f" [{row['low']:.3f}, {row['high']:.3f}]" if row["low"] is not None else " (no interval)"
        shown.append(f"{row['label']} {row['value']:.3f}{bound}")
    size = f"holdout of {n} items" if isinstance(n, int) else "holdout of ? items"
    text = f"{size}: {', '.join(shown)}" + (" (95 % intervals)" if any(r["low"] is not None for r in rows) else "")
    if isinstance(n, int) and n < SMALL_HOLDOUT:
        text += f"; under {SMALL_HOLDOUT} items they are wide (the model page adds a cross-validated estimate)"
    return text


def gpu_worker_available(timeout: float = 1.5) -> bool:
    """Is any worker consuming the `gpu` queue? False when the broker is unreachable."""
    from celery import current_app  # the project's app (config/__init__.py loads it); app code never imports config

    try:
        replies = current_app.control.inspect(timeout=timeout).active_queues() or {}
    except Exception:
        return False
    return any(q.get("name") == "gpu" for queues in replies.values() for q in queues or [])


class Command(BaseCommand):
    help = "Train a model for a project now (on a worker when one is available, else in this process)."

    def add_arguments(self, parser):
        parser.add_argument("project", help="project slug or id")
        parser.add_argument("--mode", choices=MODES, help="head or finetune (default: the project's training mode)")
        parser.add_argument("--wait", action="store_true", help="follow a worker's run until it ends")
        parser.add_argument(
            "--force",
            action="store_true",
            help="train even with no new labels since a version and the same settings (the same model again)",
        )
        parser.add_argument("--in-process", action="store_true", help="train in this process even if a worker exists")
        parser.add_argument(
            "--timeout",
            type=timeout_seconds,
            default=6 * 3600,
            help="--wait gives up after this many seconds, at least 1 (default: %(default)s)",
        )

    def handle(self, *args, **opts):
        try:
            project = selectors.project_for_command(ref=opts["project"])
        except Project.DoesNotExist as exc:
            raise CommandError(str(exc)) from exc
        quiet = opts["verbosity"] == 0
        try:
            run = services.training_run_enqueue(
                project=project, trigger=RunTrigger.COMMAND, mode=opts["mode"], send=False, force=opts["force"]
            )
        except RunSameModel as exc:
            raise CommandError(f"{exc} Use --force to train anyway.") from exc
        except services.RunRefused as exc:
            raise CommandError(str(exc)) from exc
        if run is None:
            current = selectors.run_in_flight(project=project)
            if current is None or not opts["wait"]:
                raise CommandError(
                    f"Run #{current.pk if current else '?'} is already {current.status if current else 'in flight'} "
                    f"for {project.slug}; use --wait to follow it."
                )
            self.stdout.write(f"Following run #{current.pk} ({current.status}) of {project.slug}.")
            return self._follow(current.pk, opts["timeout"], quiet)
        if not opts["in_process"] and gpu_worker_available() and services.training_run_send(run_id=run.pk):
            self.stdout.write(f"Queued run #{run.pk} of {project.slug} on the gpu queue.")
            if opts["wait"]:
                return self._follow(run.pk, opts["timeout"], quiet)
            return None
        self.stdout.write(f"Training run #{run.pk} of {project.slug} in this process.")
        bar = StageBar(f"run #{run.pk}", disable=quiet)
        try:
            services.training_run_execute(run_id=run.pk, worker="manage.py train", on_progress=bar)
        finally:
            bar.close()
        return self._report(TrainingRun.objects.get(pk=run.pk))

    def _follow(self, run_id: int, timeout: float, quiet: bool) -> None:
        bar = StageBar(f"run #{run_id}", disable=quiet)
        deadline = time.monotonic() + timeout
        try:
            while True:
                run = TrainingRun.objects.get(pk=run_id)
                bar(round(run.progress * 10_000), 10_000, run.stage or run.status)
                if run.status not in IN_FLIGHT:
                    break
                if time.monotonic() > deadline:
                    raise CommandError(f"Run #{run_id} is still {run.status} after {timeout:.0f} s.")
                time.sleep(0.5)
        finally:
            bar.close()
        return self._report(run)

    def _report(self, run: TrainingRun) -> None:
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(f"Run #{run.pk} {run.status}: {run.error.splitlines()[0] if run.error else ''}")
        version = getattr(run, "model_version", None)
        if version is None:
            self.stdout.write(self.style.SUCCESS(f"Run #{run.pk} succeeded ({run.mode}): queue re-ranked."))
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Run #{run.pk} succeeded on {run.device or '?'}: model v{version.number}, "
                f"{version.label_count} labels, {figures_text(version.metrics or {})}."
            )
        )
