"""Feeding the review queue: one open ReviewTask per (item, reason), from the sample, disagreement, model, gold and
label-error feeds (see labeling.services.reviews)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, Max, OuterRef, Q, QuerySet
from django.db.models.functions import Mod

from labeling.models import (
    Annotation,
    Item,
    ItemState,
    LabelSource,
    Project,
    ResolvedLabel,
    Review,
    ReviewTask,
    ReviewTaskReason,
    Verdict,
)
from labeling.selectors.training_seam import active_model_version, prediction_model

MODEL_CONTRADICTION_CONFIDENCE = 0.9
# Knuth's multiplicative hash: (id * A) mod 2^32 spreads consecutive ids evenly over [0, 2^32).
_HASH_A = 2654435761
_HASH_M = 2**32


def sample_hash(annotation_id: int) -> float:
    """The annotation's fixed position in [0, 1); it is in the audit sample when below the sample rate."""
    return (annotation_id * _HASH_A % _HASH_M) / _HASH_M


def live_annotations(*, project: Project | None = None) -> QuerySet[Annotation]:
    """Annotations that count (the same rule as resolution): not skipped, not an undo, not undone, not rejected."""
    latest_verdict = (
        Review.objects.filter(annotation=OuterRef("pk")).order_by("-created_at", "-id").values("verdict")[:1]
    )
    qs = (
        Annotation.objects.answers()
        .annotate(_latest_verdict=latest_verdict)
        .filter(Q(_latest_verdict__isnull=True) | ~Q(_latest_verdict=Verdict.REJECT))
    )
    if project is not None:
        qs = qs.filter(item__project=project)
    return qs


def _class_sets(annotation_ids: Iterable[int]) -> dict[int, frozenset[int]]:
    ids = list(annotation_ids)
    out: dict[int, set[int]] = {pk: set() for pk in ids}
    through = Annotation.classes.through
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        for annotation_id, class_id in through.objects.filter(annotation_id__in=chunk).values_list(
            "annotation_id", "labelclass_id"
        ):
            out[annotation_id].add(class_id)
    return {pk: frozenset(v) for pk, v in out.items()}


def review_task_open(
    *, project: Project, item: Item | int, reason: str, annotation: Annotation | int | None = None, score: float = 0.0
) -> ReviewTask:
    """Open a task for (item, reason) or return the open one (its score and annotation are refreshed)."""
    if reason not in ReviewTaskReason.values:
        raise ValidationError(f"Unknown review reason {reason!r}.")
    item_id = item if isinstance(item, int) else item.pk
    annotation_id = annotation if (annotation is None or isinstance(annotation, int)) else annotation.pk
    existing = ReviewTask.objects.filter(item_id=item_id, reason=reason, done=False).first()
    if existing is not None:
        if existing.score != score or (annotation_id and existing.annotation_id != annotation_id):
            existing.score = score
            existing.annotation_id = annotation_id or existing.annotation_id
            existing.save(update_fields=["score", "annotation"])
        return existing
    try:
        with transaction.atomic():
            return ReviewTask.objects.create(
                project=project, item_id=item_id, reason=reason, annotation_id=annotation_id, score=score
            )
    except IntegrityError:  # another process opened it first
        return ReviewTask.objects.get(item_id=item_id, reason=reason, done=False)


def _bulk_open(project: Project, rows: list[tuple[int, int | None, float]], reason: str) -> int:
    """Open tasks for (item id, annotation id, score) rows; rows whose (item, reason) is already open are skipped."""
    if not rows:
        return 0
    open_items = set(
        ReviewTask.objects.filter(project=project, reason=reason, done=False).values_list("item_id", flat=True)
    )
    new, seen = [], set()
    for item_id, annotation_id, score in rows:
        if item_id in open_items or item_id in seen:
            continue
        seen.add(item_id)
        new.append(
            ReviewTask(project=project, item_id=item_id, annotation_id=annotation_id, reason=reason, score=score)
        )
    # ignore_conflicts: a concurrent refresh may have opened the same (item, reason) meanwhile.
    ReviewTask.objects.bulk_create(new, ignore_conflicts=True, batch_size=500)
    return len(new)


def _sample_rows(project: Project, items: Iterable[int] | None = None) -> list[tuple[int, int | None, float]]:
    rate = project.review_sample_rate
    if rate <= 0:
        return []
    qs = (
        live_annotations(project=project)
        .filter(reviews__isnull=True)
        .annotate(_h=Mod(F("id") * _HASH_A, _HASH_M))
        .filter(_h__lt=rate * _HASH_M)
        .exclude(Exists(ReviewTask.objects.filter(annotation=OuterRef("pk"), reason=ReviewTaskReason.SAMPLE)))
    )
    if items is not None:
        qs = qs.filter(item_id__in=list(items))
    return [(item_id, pk, 0.0) for pk, item_id in qs.order_by("id").values_list("id", "item_id")]


def _disagreement_rows(project: Project, items: Iterable[int] | None = None) -> list[tuple[int, int | None, float]]:
    """Items in state review or whose live annotations disagree, unless a verdict came after the last annotation."""
    live = live_annotations(project=project)
    if items is not None:
        live = live.filter(item_id__in=list(items))
    per_item: dict[int, list[tuple[int, object]]] = defaultdict(list)
    for pk, item_id, created in live.values_list("id", "item_id", "created_at"):
        per_item[item_id].append((pk, created))
    review_state = Item.objects.filter(project=project, state=ItemState.REVIEW)
    if items is not None:
        review_state = review_state.filter(pk__in=list(items))
    flagged = set(review_state.values_list("id", flat=True))
    multi = {item_id: rows for item_id, rows in per_item.items() if len(rows) > 1}
    sets = _class_sets(pk for rows in multi.values() for pk, _ in rows)
    scores: dict[int, float] = {}
    for item_id, rows in multi.items():
        votes = Counter(sets[pk] for pk, _ in rows)
        if len(votes) > 1:
            flagged.add(item_id)
            scores[item_id] = 1 - votes.most_common(1)[0][1] / len(rows)
    # A gold item's label is its gold answer, whatever its answers say: answers that differ are gold checks, not a
    # disagreement to settle (labeling.services.resolution, rule 0).
    flagged -= set(Item.objects.filter(pk__in=flagged, is_gold=True).values_list("id", flat=True)) if flagged else set()
    if not flagged:
        return []
    last_verdict = dict(
        Review.objects.filter(annotation__item_id__in=flagged)
        .values("annotation__item_id")
        .annotate(t=Max("created_at"))
        .values_list("annotation__item_id", "t")
    )
    out = []
    for item_id in sorted(flagged):
        rows = per_item.get(item_id, [])
        newest = max((created for _, created in rows), default=None)
        verdict_at = last_verdict.get(item_id)
        if verdict_at is not None and (newest is None or verdict_at >= newest):
            continue
        latest = max(rows, key=lambda r: (r[1], r[0]))[0] if rows else None
        out.append((item_id, latest, scores.get(item_id, 0.5)))
    return out


def _model_rows(project: Project, items: Iterable[int] | None = None) -> list[tuple[int, int | None, float]]:
    version = active_model_version(project)
    if version is None:
        return []
    prediction = prediction_model()  # not None: there is an active version
    agrees = ResolvedLabel.classes.through.objects.filter(
        resolvedlabel__item_id=OuterRef("item_id"), labelclass_id=OuterRef("predicted_class_id")
    )
    done_since = ReviewTask.objects.filter(
        item_id=OuterRef("item_id"),
        reason=ReviewTaskReason.MODEL,
        done=True,
        created_at__gte=version.created_at,
    )
    qs = (
        prediction.objects.filter(
            model_version=version,
            confidence__gte=MODEL_CONTRADICTION_CONFIDENCE,
            predicted_class__isnull=False,
            item__resolved__isnull=False,
        )
        .exclude(item__resolved__source=LabelSource.REVIEW)
        .filter(~Exists(agrees))
        .filter(~Exists(done_since))
    )
    if items is not None:
        qs = qs.filter(item_id__in=list(items))
    rows = list(qs.values_list("item_id", "confidence"))
    latest = dict(
        live_annotations(project=project)
        .filter(item_id__in=[r[0] for r in rows])
        .values("item_id")
        .annotate(last=Max("id"))
        .values_list("item_id", "last")
    )
    return [(item_id, latest.get(item_id), float(conf)) for item_id, conf in rows]


def gold_classes_of(item_ids: Iterable[int]) -> dict[int, frozenset[int]]:
    out: dict[int, set[int]] = defaultdict(set)
    for item_id, class_id in Item.gold_classes.through.objects.filter(item_id__in=list(item_ids)).values_list(
        "item_id", "labelclass_id"
    ):
        out[item_id].add(class_id)
    return {k: frozenset(v) for k, v in out.items()}


def _gold_rows(project: Project, items: Iterable[int] | None = None) -> list[tuple[int, int | None, float]]:
    gold_items = Item.objects.filter(project=project, is_gold=True)
    if items is not None:
        gold_items = gold_items.filter(pk__in=list(items))
    gold = gold_classes_of(gold_items.values_list("id", flat=True))
    if not gold:
        return []
    qs = (
        live_annotations(project=project)
        .filter(item_id__in=list(gold), reviews__isnull=True)
        .exclude(Exists(ReviewTask.objects.filter(annotation=OuterRef("pk"), reason=ReviewTaskReason.GOLD)))
    )
    rows = list(qs.order_by("id").values_list("id", "item_id"))
    sets = _class_sets(pk for pk, _ in rows)
    return [(item_id, pk, 1.0) for pk, item_id in rows if sets[pk] != gold[item_id]]


FEEDS = {
    ReviewTaskReason.SAMPLE: _sample_rows,
    ReviewTaskReason.DISAGREEMENT: _disagreement_rows,
    ReviewTaskReason.MODEL: _model_rows,
    ReviewTaskReason.GOLD: _gold_rows,
}


def review_tasks_refresh(*, project: Project) -> dict[str, int]:
    """Open every task the feeds call for in the project; returns how many were opened per reason. Idempotent."""
    return {reason: _bulk_open(project, feed(project), reason) for reason, feed in FEEDS.items()}


def review_tasks_for_items(*, project: Project, item_ids: Iterable[int]) -> dict[str, int]:
    """The cheap incremental hook: run the feeds for a few items (after an annotation, a review, a prediction)."""
    ids = list(item_ids)
    if not ids:
        return {}
    return {reason: _bulk_open(project, feed(project, ids), reason) for reason, feed in FEEDS.items()}


def review_tasks_for_annotation(*, annotation: Annotation) -> dict[str, int]:
    """Incremental hook for the annotation services: sample, gold and disagreement checks for one new label."""
    item = annotation.item
    return review_tasks_for_items(project=item.project, item_ids=[item.pk])


def review_tasks_label_errors_set(*, project: Project, scores: dict[int, float]) -> set[int]:
    """Replace the open label-error tasks with `scores` (item id -> score); returns the items with an open task.

    An item whose label a reviewer set is left out (its label is settled), and each task asks about the item's
    latest live annotation (none for an imported label). Open label-error tasks for items no longer suspected are
    closed without a verdict (they were never answered).
    """
    reviewed = set(
        ResolvedLabel.objects.filter(item_id__in=list(scores), source=LabelSource.REVIEW).values_list(
            "item_id", flat=True
        )
    )
    latest = dict(
        live_annotations(project=project)
        .filter(item_id__in=list(scores))
        .values("item_id")
        .annotate(last=Max("id"))
        .values_list("item_id", "last")
    )
    scores = {item_id: (latest.get(item_id), score) for item_id, score in scores.items() if item_id not in reviewed}
    with transaction.atomic():
        stale = ReviewTask.objects.filter(project=project, reason=ReviewTaskReason.LABEL_ERROR, done=False).exclude(
            item_id__in=list(scores)
        )
        # Chunk the exclusion list for SQLite's variable limit on large projects.
        if len(scores) > 900:
            keep = set(scores)
            stale_ids = [
                pk
                for pk, item_id in ReviewTask.objects.filter(
                    project=project, reason=ReviewTaskReason.LABEL_ERROR, done=False
                ).values_list("id", "item_id")
                if item_id not in keep
            ]
            for start in range(0, len(stale_ids), 900):
                ReviewTask.objects.filter(pk__in=stale_ids[start : start + 900]).delete()
        else:
            stale.delete()
        existing = {
            t.item_id: t
            for t in ReviewTask.objects.filter(project=project, reason=ReviewTaskReason.LABEL_ERROR, done=False)
        }
        changed, new = [], []
        for item_id, (annotation_id, score) in scores.items():
            task = existing.get(item_id)
            if task is None:
                new.append(
                    ReviewTask(
                        project=project,
                        item_id=item_id,
                        annotation_id=annotation_id,
                        reason=ReviewTaskReason.LABEL_ERROR,
                        score=score,
                    )
                )
            elif task.score != score or task.annotation_id != annotation_id:
                task.score, task.annotation_id = score, annotation_id
                changed.append(task)
        ReviewTask.objects.bulk_update(changed, ["score", "annotation"], batch_size=500)
        ReviewTask.objects.bulk_create(new, ignore_conflicts=True, batch_size=500)
    return set(scores)
