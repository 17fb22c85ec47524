"""Annotation writes: label, skip, undo. Rows are append-only; the resolved label is recomputed each time.

Errors: `ValidationError` for bad input (HTTP 400), `LabelingConflict` when the item cannot take this
user's annotation any more (HTTP 409). Either way nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from labeling.models import Annotation, Item, ItemState, LabelClass, Project
from labeling.services.queue import NOT_EXCLUDED_SQL, OPEN_STATES
from labeling.services.resolution import resolved_label_recompute
from labeling.services.reviews import review_tasks_for_annotation, sample_hash

MAX_SECONDS = 24 * 3600.0
# Has this user a live label or a skip (not undone) on the item? Same rule as the queue's exclusion.
ALREADY_ANNOTATED_SQL = f"SELECT 1 FROM labeling_item i WHERE i.id = %(item)s AND NOT {NOT_EXCLUDED_SQL}"


class LabelingConflict(Exception):
    """The item no longer takes an annotation from this user (already labeled, held by someone else...)."""


def _lock_item(item: Item) -> Item:
    # of=("self",): lock the item row only, not the project row that select_related joins.
    locked = Item.objects.select_for_update(of=("self",)).select_related("project").get(pk=item.pk)
    return locked


def _clean_seconds(seconds_spent: float | None) -> float:
    try:
        value = float(seconds_spent or 0.0)
    except (TypeError, ValueError) as exc:
        raise ValidationError("seconds_spent must be a number.") from exc
    if value != value or value < 0:  # NaN or negative
        raise ValidationError("seconds_spent must be a non-negative number.")
    return min(value, MAX_SECONDS)


def _check_can_annotate(*, item: Item, user, now) -> None:
    """Raise LabelingConflict unless this user may add an annotation (or skip) to the locked item now."""
    project = item.project
    holds_lease = item.lease_user_id == user.pk and item.lease_expires_at is not None and item.lease_expires_at > now
    if item.state not in OPEN_STATES or item.annotation_count >= project.annotations_per_item:
        raise LabelingConflict("This item needs no more annotations.")
    with connection.cursor() as cursor:
        cursor.execute(ALREADY_ANNOTATED_SQL, {"item": item.pk, "user": user.pk})
        already = cursor.fetchone() is not None
    if already:
        raise LabelingConflict("You have already annotated or skipped this item.")
    other_lease = (
        not holds_lease
        and item.lease_user_id is not None
        and item.lease_expires_at is not None
        and item.lease_expires_at > now
    )
    # Another annotator's live lease reserves one of the remaining slots.
    if other_lease and item.annotation_count + 1 >= project.annotations_per_item:
        raise LabelingConflict("Another annotator is working on this item.")


def _clean_class_ids(*, project: Project, class_ids: Iterable) -> list[int]:
    try:
        ids = sorted({int(c) for c in class_ids})
    except (TypeError, ValueError) as exc:
        raise ValidationError("Class ids must be integers.") from exc
    if not ids:
        raise ValidationError("Choose at least one class.")
    if not project.is_multi_label and len(ids) != 1:
        raise ValidationError("This is a single-label project: choose exactly one class.")
    found = set(LabelClass.objects.filter(project=project, pk__in=ids, archived=False).values_list("id", flat=True))
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValidationError(f"Unknown or archived class id(s) for this project: {missing}.")
    return ids


def annotation_create(*, item: Item, user, class_ids: Iterable[int], seconds_spent: float = 0.0) -> Annotation:
    """Record the user's label for the item, release their lease, recompute the resolved label.

    The user must hold the item's lease, or the item must still need annotations, not be annotated
    by them and not be reserved by someone else's lease.
    """
    seconds = _clean_seconds(seconds_spent)
    with transaction.atomic():
        locked = _lock_item(item)
        ids = _clean_class_ids(project=locked.project, class_ids=class_ids)
        now = timezone.now()
        _check_can_annotate(item=locked, user=user, now=now)
        annotation = Annotation.objects.create(item=locked, user=user, seconds_spent=seconds)
        Annotation.classes.through.objects.bulk_create(
            [Annotation.classes.through(annotation_id=annotation.pk, labelclass_id=i) for i in ids]
        )
        resolved_label_recompute(item=locked, item_updates=_release_fields(locked, user, now))
        if _may_need_review(annotation=annotation, item=locked):
            review_tasks_for_annotation(annotation=annotation)
    _copy_back(item, locked)
    return annotation


def _may_need_review(*, annotation: Annotation, item: Item) -> bool:
    """Whether the new label can open a review task: free to decide, so a plain label costs no extra query.

    Audit sample (the same fixed hash of the annotation id as labeling.services.reviews), a gold item, or
    several live labels / a consensus tie (disagreement). Model contradictions are found by the feeds'
    refresh after a training round and on the review page, not on this hot path. Skips and undos never
    open a task: they add no label and, below the overlap, cannot create a tie.
    """
    project = item.project
    rate = project.review_sample_rate
    return (
        (rate > 0 and sample_hash(annotation.pk) < rate)
        or item.is_gold
        or item.state == ItemState.REVIEW
        or (project.annotations_per_item > 1 and item.annotation_count > 1)
    )


def annotation_skip(*, item: Item, user, seconds_spent: float = 0.0) -> Annotation:
    """Record that the user skipped the item (it stays in the queue for others) and release their lease."""
    seconds = _clean_seconds(seconds_spent)
    with transaction.atomic():
        locked = _lock_item(item)
        now = timezone.now()
        _check_can_annotate(item=locked, user=user, now=now)
        annotation = Annotation.objects.create(item=locked, user=user, skipped=True, seconds_spent=seconds)
        _release(locked, user, now)
    _copy_back(item, locked)
    return annotation


def annotation_undo(*, user, project: Project, lease_seconds: int | None = None) -> Annotation:
    """Withdraw the user's last label or skip in the project, if made within the undo grace period.

    Recorded as a new Annotation with `undoes` set (history is kept). The item becomes claimable again
    by this user and is leased to them. Returns the undo row (its `.undoes.item` is the item).
    Raises LabelingConflict when there is nothing to undo.
    """
    grace = timedelta(seconds=settings.LABELLOOP_UNDO_GRACE_SECONDS)
    lease_seconds = settings.LABELLOOP_LEASE_SECONDS if lease_seconds is None else lease_seconds
    now = timezone.now()
    with transaction.atomic():
        target = (
            Annotation.objects.filter(
                user=user, item__project=project, undoes__isnull=True, created_at__gte=now - grace
            )
            .filter(~Exists(Annotation.objects.filter(undoes=OuterRef("pk"))))
            .order_by("-created_at", "-id")
            .first()
        )
        if target is None:
            minutes = settings.LABELLOOP_UNDO_GRACE_SECONDS / 60
            raise LabelingConflict(f"Nothing to undo (labels can be undone for {minutes:g} minutes).")
        locked = _lock_item(target.item)
        undo = Annotation.objects.create(item=locked, user=user, undoes=target)
        Item.objects.filter(pk=locked.pk).update(
            lease_user=user, lease_expires_at=now + timedelta(seconds=lease_seconds)
        )
        locked.lease_user_id, locked.lease_expires_at = user.pk, now + timedelta(seconds=lease_seconds)
        if not target.skipped:
            resolved_label_recompute(item=locked)
    undo.undoes = target
    target.item = locked
    return undo


def _release_fields(item: Item, user, now) -> dict:
    """The lease fields to clear when this user finishes with the item ({} when someone else's lease stays)."""
    expired = item.lease_expires_at is not None and item.lease_expires_at <= now
    if item.lease_user_id is not None and (item.lease_user_id == user.pk or expired):
        return {"lease_user_id": None, "lease_expires_at": None}
    return {}


def _release(item: Item, user, now) -> None:
    fields = _release_fields(item, user, now)
    if fields:
        Item.objects.filter(pk=item.pk).update(**fields)
        item.lease_user_id, item.lease_expires_at = None, None


def _copy_back(item: Item, locked: Item) -> None:
    for field in ("state", "annotation_count", "lease_user_id", "lease_expires_at"):
        setattr(item, field, getattr(locked, field))
