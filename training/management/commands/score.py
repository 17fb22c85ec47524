"""manage.py score PROJECT [--in-process] [--timeout S]: re-score the open pool with the active model and
rewrite priorities.

A pool bigger than one shard (LABELLOOP_SCORE_SHARD_SIZE) is spread over the workers listening on the
`default` queue when any answer (a progress bar follows the scoring Job); otherwise, or with --in-process,
it is scored in this process.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from labeling.models import Job, JobKind, JobStatus, Project
from labeling.services.jobs import job_create, job_finish
from training import selectors, services
from training.management.commands._progress import StageBar
from training.services import sharding


class Command(BaseCommand):
    help = "Score every open item of a project with its active model and re-rank the queue."

    def add_arguments(self, parser):
        parser.add_argument("project", help="project slug or id")
        parser.add_argument("--in-process", action="store_true", help="score here even if workers are available")
        parser.add_argument("--timeout", type=float, default=6 * 3600, help="give up waiting for workers after S s")

    def handle(self, *args, **opts):
        try:
            project = selectors.project_for_command(ref=opts["project"])
        except Project.DoesNotExist as exc:
            raise CommandError(str(exc)) from exc
        quiet = opts["verbosity"] == 0
        if not opts["in_process"] and sharding.sharded_scoring_wanted(project=project):
            workers = sharding.scoring_workers()
            if workers:
                return self._sharded(project, workers, opts["timeout"], quiet)
        bar = StageBar(f"score {project.slug}", disable=quiet)
        try:
            result = services.model_score_pool(project=project, progress=bar)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()
        self.stdout.write(
            self.style.SUCCESS(f"Scored {result['scored']} items with model v{result['version']}; queue re-ranked.")
        )
        return None

    def _sharded(self, project: Project, workers: list[str], timeout: float, quiet: bool) -> None:
        job = job_create(project=project, kind=JobKind.SCORE)
        try:
            info = sharding.sharded_scoring_start(project=project, job=job)
        except ValueError as exc:
            job_finish(job=job, error=str(exc))
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Scoring {info['pool']} items of {project.slug} in {info['shards']} shards "
            f"(job #{job.number}; {len(workers)} worker(s) listening: {', '.join(workers)})."
        )
        bar = StageBar(f"score {project.slug}", disable=quiet)
        deadline = time.monotonic() + timeout
        try:
            while True:
                job = Job.objects.get(pk=job.pk)
                bar(job.done if job.total else 0, job.total or 1, job.message or job.status)
                if job.finished:
                    break
                if time.monotonic() > deadline:
                    raise CommandError(f"Scoring job #{job.number} is still {job.status} after {timeout:.0f} s.")
                time.sleep(0.5)
        finally:
            bar.close()
        if job.status != JobStatus.SUCCEEDED:
            raise CommandError(f"Scoring failed: {job.message}")
        result = job.result or {}
        workers_used = ", ".join(f"{host} ({n})" for host, n in (result.get("workers") or {}).items())
        self.stdout.write(
            self.style.SUCCESS(
                f"Scored {result.get('scored', 0)} items with model v{result.get('version')} in "
                f"{result.get('shards', 0)} shards on {workers_used or 'the workers'}; queue re-ranked."
            )
        )
        return None
