"""manage.py label_errors PROJECT [--show N] [--json]: run the label-error search in this process and print what the
review page shows: the estimated share of wrong labels with its interval, the suspects to review (most suspect
first), the classes too small to judge, and the cross-validated estimate with the accuracy on the open images.
The table names classes as the pages do ("a / b / c"); --json, for scripts, as the API does ("a/b/c").

It rewrites the project's open label-error review tasks and records a finished search job, as the page's "Find
label errors" does, so the pages show what it found. A search that
cannot judge yet (too few labels, a model too weak, a multi-label project) says why and exits 0.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from labeling.models import Job, JobKind, JobStatus, Project
from labeling.selectors.classes import class_paths, class_tree
from labeling.selectors.training_seam import weak_class_note
from labeling.services.jobs import job_create, job_finish, job_start
from training import selectors
from training.management.commands._progress import StageBar
from training.ml.intervals import HEADLINE
from training.selectors.label_errors import label_errors_report
from training.services.label_errors import label_errors_find


def _figure(f: dict | None) -> str:
    if not f or f.get("value") is None:
        return "n/a"
    interval = f" [{f['low']:.3f}, {f['high']:.3f}]" if f.get("low") is not None else ""
    return f"{f['value']:.3f}{interval} n = {f['n']}"


class Command(BaseCommand):
    help = "Find suspected label errors in a project and print them, with the cross-validated estimate."

    def add_arguments(self, parser):
        parser.add_argument("project", help="project slug or id")
        parser.add_argument("--show", type=int, default=10, help="print the first N suspects (default 10)")
        parser.add_argument("--json", action="store_true", help="print the report as JSON (what the API gives)")

    def handle(self, *args, **opts):
        try:
            project = selectors.project_for_command(ref=opts["project"])
        except Project.DoesNotExist as exc:
            raise CommandError(str(exc)) from exc
        if opts["show"] < 0:
            raise CommandError("--show takes a count of 0 or more.")
        running = Job.objects.filter(project=project, kind=JobKind.LABEL_ERRORS, status=JobStatus.RUNNING).first()
        if running is not None:
            raise CommandError(
                f"A label-error search of {project.slug} is running (job #{running.number}); wait for it."
            )
        # A Job as the page's search has: the pages read the cross-validated estimate from the latest finished one.
        job = job_create(project=project, kind=JobKind.LABEL_ERRORS)
        job_start(job=job, total=1, message="starting")
        bar = StageBar(f"label errors {project.slug}", disable=opts["verbosity"] == 0 or opts["json"])
        try:
            result = label_errors_find(project=project, job=job, on_progress=bar)
            bar(1, 1, "done")  # each stage counts from 0 to 100 %; a search that stops early ends full too
        except Exception as exc:
            job_finish(job=job, error=f"{type(exc).__name__}: {exc}")
            raise CommandError(f"The label-error search failed: {exc}") from exc
        finally:
            bar.close()
        job_finish(job=job, result=result)
        # --json is for scripts: classes by stored path ("a/b/c"), as the API; the table keeps the pages' "a / b / c".
        report = label_errors_report(
            project=project, limit=None if opts["json"] else opts["show"], display=not opts["json"],
            search_id=result.get("search"),  # the search it ran, whichever version is active
        )  # fmt: skip
        if report["search"] is not None:
            report["search"].pop("more_after")
        if opts["json"]:
            self.stdout.write(json.dumps(report, default=str, indent=1))
            return
        self._print(project, report, opts["show"])

    def _print(self, project: Project, report: dict, show: int) -> None:
        search, cv = report["search"], report["cross_validated"]
        names = class_paths(class_tree(project=project), display=True)
        if search["status"] != "ok":
            self.stdout.write(f"Label-error search of {project.slug}: {search['status']}. {search['reason']}")
        else:
            suspects, total = search["suspects"], search["suspects_open"]
            judged = f"{search['labels']} labels judged"
            of = "labels"
            if project.is_multi_label:
                judged = f"{search['labels']} labels x {search['classes_judged']} classes judged"
                of = "class decisions"
            self.stdout.write(
                self.style.SUCCESS(
                    f"Label-error search of {project.slug}: {judged}, out-of-sample agreement "
                    f"{search['agreement']:.0%}. Probably wrong: {search['estimated_share']:.1%} of {of} "
                    f"(95 % interval {search['share_low']:.1%} to {search['share_high']:.1%}); "
                    f"{total} suspect{'' if total == 1 else 's'} to review."
                )
            )
            for s in suspects[:show]:
                if s["decisions"] is not None:
                    said = "; ".join(
                        f"{'not ' if d['given'] else 'missing '}{names.get(d['class_id'], '?')} "
                        f"(present {d['p_present']:.2f})"
                        for d in s["decisions"]
                    )
                    self.stdout.write(f"  item {s['item']} ({s['name']}): {said}")
                    continue
                given, suggested = names.get(s["given_class"], "?"), names.get(s["suggested_class"], "?")
                line = f"  item {s['item']} ({s['name']}): given {given}, model says {suggested}"
                if s["p_suggested"] is not None:
                    line += f" ({s['p_suggested']:.2f} against {s['p_given']:.2f})"
                if s["neighbours_suggested"] is not None:
                    line += (
                        f"; of its 10 most similar labeled images {round(10 * s['neighbours_suggested'])} carry "
                        f"{suggested} and {round(10 * s['neighbours_given'])} {given}"
                    )
                self.stdout.write(line)
            if total > len(suspects):
                self.stdout.write(f"  ... and {total - len(suspects)} more (--show N, or the review page)")
        if search.get("weak_classes"):
            weak = ", ".join(weak_class_note(row) for row in search["weak_classes"])
            self.stdout.write(f"Not judged (the model is too weak yet for these classes): {weak}")
        if search["not_checked"]:
            small = ", ".join(f"{name} ({count})" for name, count in search["not_checked"])
            self.stdout.write(f"Not judged (fewer than {search['min_per_class']} labels): {small}")
        if cv:
            # In a multi-label project "accuracy" is the subset accuracy.
            named = {**dict(HEADLINE), "accuracy": "subset accuracy" if cv["multi_label"] else "accuracy"}
            shown = ", ".join(f"{named[key]} {_figure(cv[key])}" for key, _ in HEADLINE if cv.get(key))
            self.stdout.write(f"Cross-validated over {cv['n']} labeled items: {shown}")
            if cv["open_images"]:
                self.stdout.write(
                    f"Estimated on the open images ({cv['open_images']['scored']:,} scored): accuracy "
                    f"{_figure(cv['open_images']['accuracy'])}"
                )
