"""Reads for the review queue: open tasks by reason, the next task, and what a reviewer sees about one item (the
labels given, the active model's view, a label-error search's view)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Q, QuerySet

from labeling.models import (
    Item,
    LabelClass,
    LabelSource,
    Project,
    ResolvedLabel,
    Review,
    ReviewTask,
    ReviewTaskReason,
    Split,
    Verdict,
)
from labeling.selectors.label_answers import labels_by_item
from labeling.selectors.training_seam import (
    active_model_version,
    latest_label_error_search,
    model_version_model,
    prediction_model,
    still_contested,
    suspect_decisions,
)

# The order reasons are worked through when no filter is set: gold misses and disagreements first.
REASON_ORDER = [
    ReviewTaskReason.GOLD,
    ReviewTaskReason.DISAGREEMENT,
    ReviewTaskReason.MODEL,
    ReviewTaskReason.LABEL_ERROR,
    ReviewTaskReason.SAMPLE,
]


def review_tasks_open(*, project: Project, reason: str | None = None) -> QuerySet[ReviewTask]:
    qs = ReviewTask.objects.filter(project=project, done=False)
    if reason:
        qs = qs.filter(reason=reason)
    return qs.order_by("-score", "id")


def label_error_tasks_shown(
    *, project: Project, details: dict, known_classes: set[int], limit: int
) -> tuple[list[ReviewTask], int]:
    """(the first `limit` open label-error tasks a page lists, loaded with item, annotator and classes; how many it
    lists in all). A task is listed while the item's label still differs from the class the search's model gave it
    (`details`: LabelErrorSearch.suspects) and that class still exists (`known_classes`), or in a multi-label
    project while one of its contested decisions still stands; the label may have changed since. Every open task is
    checked on plain ids, and only the shown ones are loaded as objects (loading all 3,000 open suspects that way
    took 0.5-0.7 s a page)."""
    open_tasks = review_tasks_open(project=project, reason=ReviewTaskReason.LABEL_ERROR)
    ordered = list(open_tasks.values_list("pk", "item_id"))
    given: dict[int, list[int]] = {}
    through = ResolvedLabel.classes.through.objects.filter(resolvedlabel__item__in=open_tasks.values("item_id"))
    for item_id, class_id in through.values_list("resolvedlabel__item_id", "labelclass_id").order_by("labelclass_id"):
        given.setdefault(item_id, []).append(class_id)
    listed = []
    for pk, item_id in ordered:
        detail = details.get(str(item_id))
        decisions = suspect_decisions(detail)
        if decisions is not None:  # multi-label: while one of its decisions still stands as the search saw it
            if still_contested(decisions, set(given.get(item_id, [])), known_classes):
                listed.append(pk)
        elif detail and detail[1] in known_classes and given.get(item_id, []) != [detail[1]]:
            listed.append(pk)
    shown = (
        ReviewTask.objects.filter(pk__in=listed[:limit])
        .select_related("item", "annotation__user")
        .prefetch_related("item__resolved__classes")
        .in_bulk()
    )
    return [shown[pk] for pk in listed[:limit]], len(listed)


def review_task_counts(*, project: Project) -> dict[str, int]:
    counts = dict(
        ReviewTask.objects.filter(project=project, done=False)
        .values_list("reason")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("reason", "n")
    )
    return {reason: counts.get(reason, 0) for reason in REASON_ORDER}


def review_task_next(*, project: Project, reason: str | None = None, after: int | None = None) -> ReviewTask | None:
    """The next open task: within a reason by score (highest first, then id); without one, reasons in REASON_ORDER.

    `after` is the task on screen when the reviewer pressed Next: the answer is the open task that follows it in that
    order, and the first one again after the last, so pressing Next walks through every open task in turn (before,
    Next only avoided the task on screen, and two tasks took turns while the rest were never shown). The task on
    screen comes back only when it is the only one open. An `after` that names no task of the project starts at the
    first.
    """
    reasons = [reason] if reason else REASON_ORDER
    current = ReviewTask.objects.filter(project=project, pk=after).only("reason", "score").first() if after else None
    if current is not None and current.reason in reasons:
        later = Q(score__lt=current.score) | Q(score=current.score, pk__gt=current.pk)
        task = review_tasks_open(project=project, reason=current.reason).filter(later).select_related("item").first()
        if task is not None:
            return task
        reasons_after = reasons[reasons.index(current.reason) + 1 :]
        task = _first_open(project, reasons_after)
        if task is not None:
            return task
    return _first_open(project, reasons)


def _first_open(project: Project, reasons: list[str]) -> ReviewTask | None:
    for r in reasons:
        task = review_tasks_open(project=project, reason=r).select_related("item").first()
        if task is not None:
            return task
    return None


@dataclass
class GivenLabel:
    annotation_id: int
    username: str
    classes: list[LabelClass]
    created_at: object
    seconds: float
    verdict: str | None


@dataclass
class ReviewContext:
    task: ReviewTask
    item: Item
    given: GivenLabel | None
    others: list[GivenLabel]
    resolved: list[LabelClass]
    resolved_source: str
    gold: list[LabelClass]
    model_top: list[tuple[LabelClass, float]] = field(default_factory=list)
    model_version: int | None = None  # the active version's number, whether or not it predicted this item
    # The active version has no prediction of the item because it was trained on it, with the label it has now: its
    # opinion of the item would not be independent of the label under review (see active_version_learned_label).
    model_learned: bool = False
    # A "model contradicts" task the active version has not scored: what the version that raised it said.
    raised_top: list[tuple[LabelClass, float]] = field(default_factory=list)
    raised_version: int | None = None
    # For a suspected label error: what the search's cross-validated model (one that never saw this label) said,
    # as (its class, its probability, probability it gave the given class); None otherwise.
    out_of_sample: tuple[LabelClass, float, float, float | None, float | None] | None = None
    # In a multi-label project, the search's contested decisions instead: (class, given, probability present,
    # share of the 10 most similar labeled images with it).
    out_of_sample_decisions: list[tuple[LabelClass, bool, float, float | None]] = field(default_factory=list)
    imported: bool = False  # no annotator labeled the item: its label came with the images (CSV, folders)


def _given_labels(item: Item) -> list[GivenLabel]:
    rows = labels_by_item(item_ids=[item.pk]).get(item.pk, [])
    verdicts: dict[int, str] = {}
    for annotation_id, verdict in (
        Review.objects.filter(annotation__item=item)
        .order_by("created_at", "id")
        .values_list("annotation_id", "verdict")
    ):
        verdicts[annotation_id] = verdict
    return [
        GivenLabel(
            a.pk, a.user.get_username(), list(a.classes.all()), a.created_at, a.seconds_spent, verdicts.get(a.pk)
        )
        for a in rows
    ]


def model_top_classes(*, item: Item, k: int = 3) -> tuple[list[tuple[LabelClass, float]], int | None]:
    """Top-k classes of the active model version's prediction for the item, and that version's number.

    Only the active version counts: an older version's prediction is stale, so an item the active version has not
    scored gets ([], its number) and the page says so. No active version (or no training app): ([], None).
    """
    version = active_model_version(item.project_id)
    if version is None:
        return [], None
    prediction = prediction_model().objects.filter(item=item, model_version=version).first()
    if prediction is None:
        return [], version.number
    return _ranked(version, prediction, k), version.number


def raising_model_top_classes(*, item: Item, k: int = 3) -> tuple[list[tuple[LabelClass, float]], int | None]:
    """For a "model contradicts" task the active version has not scored: the newest version that scored the item
    (the one that raised the task, or a later one), its top-k classes and number; ([], None) if none did."""
    model = prediction_model()
    prediction = (
        model.objects.filter(item=item).select_related("model_version").order_by("-model_version__number").first()
        if model is not None
        else None
    )
    if prediction is None:
        return [], None
    return _ranked(prediction.model_version, prediction, k), prediction.model_version.number


def active_version_learned_label(*, item: Item, resolved: ResolvedLabel | None) -> bool:
    """Whether the active version was trained on `item` with the label it has now: a train-split item whose resolved
    label (`resolved`, classes prefetched) was last written no later than the newest label of the version's training
    snapshot (its run's labels_seen_at, else the version's creation), on classes the version predicts. A round
    stores predictions of the unlabeled pool and the holdout only, so such an item has none, and any opinion of the
    version on it would not be independent of the label. One query; False without an active version."""
    version_model = model_version_model()
    if version_model is None or resolved is None or item.split != Split.TRAIN:
        return False
    row = (
        version_model.objects.filter(project_id=item.project_id, active=True)
        .values_list("run__labels_seen_at", "created_at", "class_ids")
        .first()
    )
    if row is None:
        return False
    seen_at, created_at, class_ids = row
    classes = {c.pk for c in resolved.classes.all()}
    return bool(classes) and classes <= set(class_ids or []) and resolved.updated_at <= (seen_at or created_at)


def _ranked(version, prediction, k: int) -> list[tuple[LabelClass, float]]:
    class_ids = list(version.class_ids or [])
    probs = list(prediction.probabilities or [])
    if len(class_ids) != len(probs):
        return []
    classes = LabelClass.objects.in_bulk(class_ids)
    ranked = sorted(zip(class_ids, probs, strict=True), key=lambda cp: -float(cp[1]))
    return [(classes[c], float(p)) for c, p in ranked if c in classes][:k]


def review_context(*, task: ReviewTask) -> ReviewContext:
    item = task.item
    labels = _given_labels(item)
    given = next((g for g in labels if g.annotation_id == task.annotation_id), None)
    if given is None:
        live = [g for g in labels if g.verdict != Verdict.REJECT]
        given = live[-1] if live else None
    resolved = ResolvedLabel.objects.filter(item=item).prefetch_related("classes").first()
    top, version = model_top_classes(item=item)
    learned = not top and version is not None and active_version_learned_label(item=item, resolved=resolved)
    raised_top, raised_version = [], None
    if not top and task.reason == ReviewTaskReason.MODEL:
        raised_top, raised_version = raising_model_top_classes(item=item)
    out_of_sample, decisions = None, []
    if task.reason in (ReviewTaskReason.LABEL_ERROR, ReviewTaskReason.MODEL):
        # A "model contradicts" card shows the latest search's view too, where it still contradicts the label: the
        # one opinion of a model that never saw this label, when the active version learned it.
        given_ids = {c.pk for c in resolved.classes.all()} if resolved else set()
        out_of_sample, decisions = _label_error_view(
            item=item, given=given_ids, standing_only=task.reason == ReviewTaskReason.MODEL
        )
    return ReviewContext(
        task=task,
        item=item,
        given=given,
        others=[g for g in labels if given is None or g.annotation_id != given.annotation_id],
        resolved=list(resolved.classes.all()) if resolved else [],
        resolved_source=resolved.get_source_display() if resolved else "",
        gold=list(item.gold_classes.all()) if item.is_gold else [],
        model_top=top,
        model_version=version,
        model_learned=learned,
        raised_top=raised_top,
        raised_version=raised_version,
        out_of_sample=out_of_sample,
        out_of_sample_decisions=decisions,
        imported=not labels and resolved is not None and resolved.source == LabelSource.IMPORT,
    )


def _label_error_view(
    *, item: Item, given: set[int], standing_only: bool = False
) -> tuple[tuple | None, list[tuple[LabelClass, bool, float, float | None]]]:
    """The latest label-error search's out-of-sample view of this item (see training.models.LabelErrorSearch).
    Single-label: (the model's class, its probability, the given class's, and the shares of similar labeled images
    with the model's class and with the given one (None from older searches)), []. Multi-label: None, and the
    contested decisions the resolved label (`given`: its class ids) still makes, as (class, given, probability
    present, neighbours' share). `standing_only`: a single-label view only while the label is still the one the
    search judged and the model's class is not it (a card about another question must not show a stale view)."""
    search = latest_label_error_search(project_id=item.project_id)
    row = ((search.suspects or {}) if search is not None else {}).get(str(item.pk))
    decisions = suspect_decisions(row)
    if decisions is not None:
        classes = LabelClass.objects.in_bulk([d.class_id for d in decisions])
        return None, [
            (classes[d.class_id], d.given, d.p_present, d.near_present)
            for d in still_contested(decisions, given, set(classes))
        ]
    if not row or len(row) < 4:
        return None, []
    if standing_only and (given != {row[0]} or row[1] in given):
        return None, []
    model_class = LabelClass.objects.filter(project_id=item.project_id, pk=row[1]).first()
    if model_class is None:
        return None, []
    near = (float(row[4]), float(row[5])) if len(row) > 5 else (None, None)
    return (model_class, float(row[2]), float(row[3]), *near), []


def review_task_settlement(*, task: ReviewTask) -> Review | None:
    """The verdict that settled a closed task: the first review of one of its item's annotations from the task's
    opening on (a verdict closes every task about the annotation it judges, a correction every task of the item).
    None where the task was closed without a verdict (the feeds close a task whose question went away)."""
    return (
        Review.objects.filter(annotation__item_id=task.item_id, created_at__gte=task.created_at)
        .select_related("reviewer")
        .prefetch_related("corrected_classes")
        .order_by("created_at", "id")
        .first()
    )
