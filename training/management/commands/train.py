"""manage.py train PROJECT [--mode head|finetune] [--wait] [--in-process]: queue (or run) a training round.

With a reachable broker and a worker on the `gpu` queue the run goes to the worker (and --wait follows
it with a progress bar); otherwise, or with --in-process, it runs here. Exits non-zero when the run fails.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from labeling.models import Project
from training import selectors, services
from training.management.commands._progress import StageBar
from training.models import IN_FLIGHT, RunMode, RunStatus, RunTrigger, TrainingRun


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
        parser.add_argument(
            "--mode", choices=[RunMode.HEAD, RunMode.FINETUNE], help="default: the project's training mode"
        )
        parser.add_argument("--wait", action="store_true", help="follow a worker's run until it ends")
        parser.add_argument("--in-process", action="store_true", help="train in this process even if a worker exists")
        parser.add_argument("--timeout", type=float, default=6 * 3600, help="--wait gives up after this many seconds")

    def handle(self, *args, **opts):
        try:
            project = selectors.project_for_command(ref=opts["project"])
        except Project.DoesNotExist as exc:
            raise CommandError(str(exc)) from exc
        quiet = opts["verbosity"] == 0
        run = services.training_run_enqueue(project=project, trigger=RunTrigger.COMMAND, mode=opts["mode"], send=False)
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
        m = version.metrics or {}
        shown = " ".join(f"{k}={m[k]:.3f}" for k in ("accuracy", "macro_f1", "ece") if isinstance(m.get(k), float))
        self.stdout.write(
            self.style.SUCCESS(
                f"Run #{run.pk} succeeded on {run.device or '?'}: model v{version.number}, "
                f"{version.label_count} labels, holdout {shown or 'n/a'}."
            )
        )
