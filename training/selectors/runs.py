"""Reads of the training loop shared by the model page, the scheduler, tasks and commands: runs, versions, "due"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Case, Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce, Greatest

from labeling.models import Item, Job, JobKind, JobStatus, Project, ResolvedLabel
from training.constants import MODE_COLD_START
from training.models import IN_FLIGHT, ModelVersion, RunStatus, TrainingRun

COLD_START = MODE_COLD_START
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _last_trained(outer: str = "pk") -> QuerySet:
    """The newest successful training (not cold-start) run of the outer project."""
    return (
        TrainingRun.objects.filter(project=OuterRef(outer), status=RunStatus.SUCCEEDED)
        .exclude(mode=COLD_START)
        .order_by("-created_at")
    )


def projects_due_for_training() -> QuerySet[Project]:
    """Projects with no run in flight that need one, in ONE query over indexed columns.

    Annotated: `new_labels` (ResolvedLabels updated after the last successful run's snapshot; every
    label when there is none; counted on resolved_project_updated_idx), `trained` (any successful
    training run), `cold_done`, `has_items`, `importing` (a cold start waits until imports finish),
    `last_status` / `last_finished_at` (newest run, for the retry back-off).
    """
    last_seen = Coalesce(Subquery(_last_trained().values("labels_seen_at")[:1]), Value(EPOCH))
    new_labels = (
        ResolvedLabel.objects.filter(project=OuterRef("pk"), updated_at__gt=OuterRef("last_seen"))
        .order_by()
        .values("project")
        .annotate(n=Count("pk"))
        .values("n")
    )
    newest = TrainingRun.objects.filter(project=OuterRef("pk")).order_by("-created_at")
    cold_done = TrainingRun.objects.filter(
        project=OuterRef("pk"), mode=COLD_START, status__in=[RunStatus.SUCCEEDED, *IN_FLIGHT]
    )
    importing = Job.objects.filter(
        project=OuterRef("pk"), kind=JobKind.IMPORT, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]
    )
    return (
        Project.objects.annotate(
            last_seen=last_seen,
            trained=Exists(_last_trained()),
            in_flight=Exists(TrainingRun.objects.filter(project=OuterRef("pk"), status__in=IN_FLIGHT)),
            new_labels=Coalesce(Subquery(new_labels), Value(0)),
            threshold=Greatest(
                Case(When(trained=True, then=F("retrain_every")), default=F("min_labels_to_train")), Value(1)
            ),
            cold_done=Exists(cold_done),
            has_items=Exists(Item.objects.filter(project=OuterRef("pk"))),
            importing=Exists(importing),
            last_status=Subquery(newest.values("status")[:1]),
            last_finished_at=Subquery(newest.values("finished_at")[:1]),
        )
        .filter(in_flight=False)
        .filter(Q(new_labels__gte=F("threshold")) | Q(trained=False, cold_done=False, has_items=True, importing=False))
        .order_by("pk")
    )


@dataclass
class LoopStatus:
    """What the model page says about the next run."""

    new_labels: int
    threshold: int
    trained: bool


def loop_status(*, project: Project) -> LoopStatus:
    last = (
        TrainingRun.objects.filter(project=project, status=RunStatus.SUCCEEDED)
        .exclude(mode=COLD_START)
        .order_by("-created_at")
        .values_list("labels_seen_at", flat=True)
        .first()
    )
    trained = last is not None
    qs = ResolvedLabel.objects.filter(project=project)
    if last is not None:
        qs = qs.filter(updated_at__gt=last)
    threshold = max(project.retrain_every if trained else project.min_labels_to_train, 1)
    return LoopStatus(new_labels=qs.count(), threshold=threshold, trained=trained)


def runs_recent(*, project: Project, limit: int = 20) -> list[TrainingRun]:
    return list(
        TrainingRun.objects.filter(project=project).select_related("model_version").order_by("-created_at")[:limit]
    )


def run_in_flight(*, project: Project) -> TrainingRun | None:
    return TrainingRun.objects.filter(project=project, status__in=IN_FLIGHT).first()


def model_versions(*, project: Project, limit: int = 50) -> list[ModelVersion]:
    return list(ModelVersion.objects.filter(project=project).select_related("run").order_by("-number")[:limit])


def model_version_active(*, project: Project) -> ModelVersion | None:
    return ModelVersion.objects.filter(project=project, active=True).first()


def project_for_command(*, ref: str) -> Project:
    """A project by slug or numeric id (management commands)."""
    project = Project.objects.filter(slug=ref).first()
    if project is None and ref.isdigit():
        project = Project.objects.filter(pk=int(ref)).first()
    if project is None:
        raise Project.DoesNotExist(f"No project with slug or id {ref!r}.")
    return project
