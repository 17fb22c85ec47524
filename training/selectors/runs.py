"""Reads of the training loop shared by the model page, the scheduler, tasks and commands: runs, versions, "due"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    F,
    JSONField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from labeling.constants import WEIGHTS_KEYWORDS, id_from_text, registered_weights_id
from labeling.models import Item, Job, JobKind, JobStatus, LabelClass, Project, ResolvedLabel
from labeling.selectors.backbone_weights import hub_weights_training_held, hub_weights_training_refusal
from labeling.selectors.classes import class_paths
from training.models import IN_FLIGHT, BackboneWeights, ModelVersion, RunMode, RunStatus, TrainingRun

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _last_trained(outer: str = "pk") -> QuerySet:
    """The newest successful training (not cold-start) run of the outer project."""
    return (
        TrainingRun.objects.filter(project=OuterRef(outer), status=RunStatus.SUCCEEDED)
        .exclude(mode=RunMode.COLD_START)
        .order_by("-created_at")
    )


def _with_loop_state(projects: QuerySet[Project]) -> QuerySet[Project]:
    """`projects` annotated with the training loop's state and THE rule for "due" (`due`), in one query.

    `new_labels` (ResolvedLabels updated after the last successful run's snapshot; every label when there is
    none; counted on resolved_project_updated_idx), `threshold`, `trained` (any successful training run),
    `labels_due` (new_labels reached the threshold), `cold_due` (no model and no cold start yet, items present,
    no import running: a cold start waits until imports finish), `importing`, `in_flight`, `backing_off` (the
    newest run failed less than LABELLOOP_RUN_RETRY_AFTER seconds ago: retry later instead of failing every few
    seconds), `held` (no worker here can load the project's backbone weights: hub_weights_training_refusal), `ready`
    (no run in flight, not backing off, labels_due or cold_due) and `due` (ready and not held).
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
        project=OuterRef("pk"), mode=RunMode.COLD_START, status__in=[RunStatus.SUCCEEDED, *IN_FLIGHT]
    )
    importing = Job.objects.filter(
        project=OuterRef("pk"), kind=JobKind.IMPORT, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]
    )
    retry_after = timedelta(seconds=float(getattr(settings, "LABELLOOP_RUN_RETRY_AFTER", 30.0)))
    labels_due = Q(new_labels__gte=F("threshold"))
    cold_due = Q(trained=False, cold_done=False, has_items=True, importing=False)
    backing_off = Q(last_status=RunStatus.FAILED, last_finished_at__gt=timezone.now() - retry_after)
    ready = Q(in_flight=False, backing_off=False) & (labels_due | cold_due)
    return projects.annotate(
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
        labels_due=_flag(labels_due),
        cold_due=_flag(cold_due),
        backing_off=_flag(backing_off),
        held=_weights_held(),
        ready=_flag(ready),
        due=_flag(ready & Q(held=False)),
    )


def _weights_held() -> Case | Value:
    """Whether a project's backbone weights are ones hub_weights_training_refusal refuses, as SQL. The rule refuses
    only keywords ("hub" while the hub is off), so it is asked of each keyword; a registered id or a path passes."""
    refused = [weights for weights in WEIGHTS_KEYWORDS if hub_weights_training_refusal(weights)]
    if not refused:
        return Value(False, output_field=BooleanField())
    return _flag(Q(backbone_weights__in=refused))


def _flag(condition: Q) -> Case:
    # A When whose condition is NULL (no run yet) falls through to False, where a negated Q could drop the row.
    return Case(When(condition, then=Value(True)), default=Value(False), output_field=BooleanField())


def projects_due_for_training(*, with_held: bool = False) -> QuerySet[Project]:
    """Projects the scheduler queues a run for now, in ONE query over indexed columns (see _with_loop_state).

    A project due with `labels_due` False gets a cold start. With `with_held`, also the projects that would be due
    but for their backbone weights (`held` True: the scheduler holds them). The model page asks the same rule for
    one project (loop_status), so the page and the scheduler never disagree.
    """
    wanted = (Q(due=True) | Q(ready=True, held=True)) if with_held else Q(due=True)
    return _with_loop_state(Project.objects.all()).filter(wanted).order_by("pk")


@dataclass
class LoopStatus:
    """What the model page says about the next run: the scheduler's own view of the project."""

    new_labels: int
    threshold: int
    trained: bool
    due: bool = False
    cold_start: bool = False  # the next run the scheduler queues orders the queue without a model
    importing: bool = False
    backing_off: bool = False
    held: str = ""  # why the scheduler queues no run for the project (its backbone weights), "" where nothing holds it

    # `held`'s reason alone, for the line that names a run in flight (which may itself be queued): the scheduler
    # queues no run after it, because ...
    held_why: str = ""


def loop_status(*, project: Project) -> LoopStatus:
    row = (
        _with_loop_state(Project.objects.filter(pk=project.pk))
        .values(
            "new_labels", "threshold", "trained", "due", "labels_due", "cold_done", "importing", "backing_off", "held"
        )
        .get()
    )
    return LoopStatus(
        new_labels=row["new_labels"],
        threshold=row["threshold"],
        trained=row["trained"],
        due=row["due"],
        cold_start=not row["trained"] and not row["cold_done"] and not row["labels_due"],
        importing=row["importing"],
        backing_off=row["backing_off"],
        held=hub_weights_training_refusal(project.backbone_weights) if row["held"] else "",
        held_why=hub_weights_training_held(project.backbone_weights) if row["held"] else "",
    )


def runs_recent(*, project: Project, limit: int = 20) -> list[TrainingRun]:
    runs = TrainingRun.objects.filter(project=project).select_related("model_version").defer("model_version__metrics")
    return list(runs.order_by("-created_at")[:limit])


# The parts of a version's metrics that grow with the classes: the confusion matrix (K²: 3.3 MB of JSON at 1,080
# classes, about 90 ms to decode) and the per-class table. Lists of versions leave them out.
PER_CLASS_METRICS = ("confusion_matrix", "per_class")


def metrics_summary() -> RawSQL:
    """A version's metrics without PER_CLASS_METRICS, cut out by the database: for .annotate(summary=...) with
    .defer("metrics"), so that a page or an API list of versions never decodes a confusion matrix."""
    column = f'"{ModelVersion._meta.db_table}"."metrics"'
    if connection.vendor == "postgresql":
        sql = column + "".join(f" - '{key}'" for key in PER_CLASS_METRICS)
    else:  # SQLite's JSON1
        sql = f"json_remove({column}, " + ", ".join(f"'$.{key}'" for key in PER_CLASS_METRICS) + ")"
    return RawSQL(sql, [], output_field=JSONField())


def run_in_flight(*, project: Project) -> TrainingRun | None:
    return TrainingRun.objects.filter(project=project, status__in=IN_FLIGHT).first()


def model_versions(*, project: Project, limit: int = 50) -> list[ModelVersion]:
    """The newest versions, each with `summary` (its metrics but the per-class parts) and without `metrics`."""
    versions = ModelVersion.objects.filter(project=project).select_related("run").defer("metrics")
    return list(versions.annotate(summary=metrics_summary()).order_by("-number")[:limit])


def model_version_active(*, project: Project, summary: bool = False) -> ModelVersion | None:
    """The active version; with `summary`, its `metrics` deferred and `summary` (no per-class parts) annotated."""
    versions = ModelVersion.objects.filter(project=project, active=True)
    if summary:
        versions = versions.defer("metrics").annotate(summary=metrics_summary())
    return versions.first()


def project_for_command(*, ref: str) -> Project:
    """A project by slug or numeric id (management commands)."""
    project = Project.objects.filter(slug=ref).first()
    if project is None and (pk := id_from_text(ref)) is not None:
        project = Project.objects.filter(pk=pk).first()
    if project is None:
        raise Project.DoesNotExist(f"No project with slug or id {ref!r}.")
    return project


def backbone_weights_of_project(*, project: Project) -> BackboneWeights | None:
    """The registered weights the project's backbone setting names (None for the bundled weights or a file path)."""
    weights_id = registered_weights_id(project.backbone_weights)
    return BackboneWeights.objects.filter(pk=weights_id).first() if weights_id is not None else None


@dataclass(frozen=True)
class LabelsNotLearned:
    """Resolved labels the model does not learn from: on a class with live subclasses (a label at a level of a
    taxonomy, kept as given) or on an archived class; each list holds (class path, labels), most first."""

    subclassed: list[tuple[str, int]]
    archived: list[tuple[str, int]]

    @property
    def total(self) -> int:
        return sum(n for _, n in self.subclassed) + sum(n for _, n in self.archived)


def learned_class_ids(rows: list[tuple[int, int | None, bool]]) -> set[int]:
    """The classes a model learns, from (id, parent id, archived) rows of a project's classes: the live (not archived)
    classes with no live subclass. training.services.snapshot.class_order orders them; labels on any other class are
    left out of training."""
    live_parents = {parent for _, parent, archived in rows if not archived and parent is not None}
    return {pk for pk, _, archived in rows if not archived and pk not in live_parents}


def labels_not_learned(*, project: Project) -> LabelsNotLearned:
    """The labels on classes training does not learn (learned_class_ids). Two queries: labels per class, and the
    class tree."""
    through = ResolvedLabel.classes.through
    per_class = dict(
        through.objects.filter(resolvedlabel__project=project)
        .values("labelclass_id")
        .annotate(n=Count("pk"))
        .values_list("labelclass_id", "n")
    )
    if not per_class:
        return LabelsNotLearned([], [])
    rows = list(LabelClass.objects.filter(project=project).values_list("pk", "name", "parent_id", "archived"))
    tree = {pk: (name, parent) for pk, name, parent, _ in rows}
    archived = {pk for pk, _, _, gone in rows if gone}
    learned = learned_class_ids([(pk, parent, gone) for pk, _, parent, gone in rows])
    paths = class_paths(tree, display=True)

    def listed(ids: set[int]) -> list[tuple[str, int]]:
        return sorted(
            ((paths[pk], per_class[pk]) for pk in ids if per_class.get(pk)), key=lambda row: (-row[1], row[0])
        )

    return LabelsNotLearned(subclassed=listed(set(tree) - learned - archived), archived=listed(archived))
