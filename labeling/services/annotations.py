"""Annotation writes: label, skip, undo. Rows are append-only; the resolved label is recomputed each time.

Errors: `ValidationError` for bad input (HTTP 400), `LabelingConflict` when the item cannot take this
user's annotation any more (HTTP 409). Either way nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from labeling.constants import MAX_ID, ids_from_values
from labeling.models import Annotation, Item, ItemState, LabelClass, Project, ReviewTask, ReviewTaskReason
from labeling.selectors.annotator_work import annotations_undoable
from labeling.selectors.claimable import NOT_EXCLUDED_SQL, NOT_LABELED_SQL, OPEN_STATES
from labeling.selectors.classes import paths_attached, unusable_classes_message
from labeling.services.resolution import resolved_label_recompute
from labeling.services.reviews import gold_classes_of, review_task_open, review_tasks_for_annotation, sample_hash
from labeling.services.undo_target import undo_target

MAX_SECONDS = 24 * 3600.0
# How far ahead of the server's clock a client's shown_at may be (clock skew): such a time is stored as the
# server's now, so shown_at <= created_at always holds; further ahead is bad input.
SHOWN_AT_SKEW = timedelta(seconds=60)
# Has this user a live label on the item? A skip does not count: skipped items come back to the user
# (labeling.services.queue), and a label or another skip of one is taken.
ALREADY_LABELED_SQL = f"SELECT 1 FROM labeling_item i WHERE i.id = %(item)s AND NOT {NOT_LABELED_SQL}"
# Has this user a live label or skip on the item (the queue's exclusion)? After the label check: a live skip.
ALREADY_ANNOTATED_SQL = f"SELECT 1 FROM labeling_item i WHERE i.id = %(item)s AND NOT {NOT_EXCLUDED_SQL}"


class LabelingConflict(Exception):
    """The item no longer takes an annotation from this user (already labeled, held by someone else...)."""


class UndoRefused(LabelingConflict):
    """An undo named a label or skip that is not the user's latest undoable one. str() says it to the labeling page,
    whose undo names the annotation it saved last (so another was made since, in another tab?); `api_message` says it
    to a script, which has no page: only the latest can be undone, and which that is."""

    def __init__(self, message: str, *, api_message: str):
        super().__init__(message)
        self.api_message = api_message


def _lock_sql(n_classes: int) -> str:
    """Lock the item row (never the project's) and read what the checks need, in one round trip.

    With class ids, it also counts how many of them are active classes of the item's project.
    """
    valid = "0"
    if n_classes:
        marks = ", ".join(f"%(c{k})s" for k in range(n_classes))
        valid = (
            "(SELECT COUNT(*) FROM labeling_labelclass c WHERE c.project_id = i.project_id"
            f" AND NOT c.archived AND c.id IN ({marks}))"
        )
    sql = (
        "SELECT i.id, i.project_id, i.state, i.annotation_count, i.lease_user_id, i.lease_expires_at, i.is_gold,"
        f" i.picked_at_random, {valid} AS valid_classes"
        " FROM labeling_item i WHERE i.id = %(item)s AND i.project_id = %(project)s"
    )
    if connection.features.has_select_for_update_of:
        sql += " FOR UPDATE OF i"
    return sql


def _lock_item(item: Item, class_ids: list[int] | None = None) -> Item:
    """The locked row (only the fields the services read; the rest load on access) with `valid_classes` set.

    `item` may be a stub `Item(pk=..., project=project)` from a URL: only its pk and project are read. Raises
    Item.DoesNotExist when no such item belongs to that project.
    """
    ids = class_ids or []
    if not isinstance(item.pk, int) or not 0 < item.pk <= MAX_ID:
        raise Item.DoesNotExist("No such item in this project.")  # past the id column's range: never a row
    params = {"item": item.pk, "project": item.project_id, **{f"c{k}": c for k, c in enumerate(ids)}}
    locked = next(iter(Item.objects.raw(_lock_sql(len(ids)), params)), None)
    if locked is None:
        raise Item.DoesNotExist("No such item in this project.")
    project_field = Item._meta.get_field("project")
    if project_field.is_cached(item):
        locked.project = item.project  # the caller's project row (read in this request): no second read
    else:
        locked.project = Project.objects.get(pk=locked.project_id)
    return locked


def _clean_seconds(seconds_spent: float | None) -> float:
    try:
        value = float(seconds_spent or 0.0)
    except (TypeError, ValueError) as exc:
        raise ValidationError("seconds_spent must be a number.") from exc
    if value != value or value < 0:  # NaN or negative
        raise ValidationError("seconds_spent must be a non-negative number.")
    return min(value, MAX_SECONDS)


def _clean_shown_at(shown_at: datetime | None, now: datetime) -> datetime | None:
    """When the image was shown, as stored: aware, never after now (see SHOWN_AT_SKEW)."""
    if shown_at is None:
        return None
    if not isinstance(shown_at, datetime):
        raise ValidationError("shown_at must be a date and time.")
    if timezone.is_naive(shown_at):
        shown_at = timezone.make_aware(shown_at)
    if shown_at > now + SHOWN_AT_SKEW:
        raise ValidationError("shown_at is in the future: the image cannot have been shown yet.")
    return min(shown_at, now)


def _check_can_annotate(*, item: Item, user, now) -> None:
    """Raise LabelingConflict unless this user may add an annotation (or skip) to the locked item now."""
    project = item.project
    holds_lease = item.lease_user_id == user.pk and item.lease_expires_at is not None and item.lease_expires_at > now
    closed = item.state not in OPEN_STATES or item.annotation_count >= project.annotations_per_item
    with connection.cursor() as cursor:
        cursor.execute(ALREADY_LABELED_SQL, {"item": item.pk, "user": user.pk})
        already = cursor.fetchone() is not None
    if already:
        # A key typed again after the answer to the first was lost, or at a second tab of the same annotator: their
        # label stands, and the message says which it is (the page could not know it was saved).
        raise LabelingConflict(_already_labeled_message(item=item, user=user))
    if item.is_gold:
        return  # every annotator answers a gold item once, whatever its state or count; a lease reserves no slot
    if closed:
        raise LabelingConflict("This item needs no more annotations.")
    other_lease = (
        not holds_lease
        and item.lease_user_id is not None
        and item.lease_expires_at is not None
        and item.lease_expires_at > now
    )
    # Another annotator's live lease reserves one of the remaining slots.
    if other_lease and item.annotation_count + 1 >= project.annotations_per_item:
        raise LabelingConflict("Another annotator is working on this item.")


def _class_names(annotation: Annotation, project: Project) -> str:
    """The annotation's classes as the annotator knows them: their paths, joined by " + " (a multi-label set)."""
    return " + ".join(c.path for c in paths_attached(annotation.classes.order_by("order", "pk"), project=project))


def _already_labeled_message(*, item: Item, user) -> str:
    """Why a second label of the item by this user is refused: the one they gave stands (a conflict path only)."""
    label = Annotation.objects.filter(item_id=item.pk, user=user).answers().order_by("-created_at", "-id").first()
    names = f" “{_class_names(label, item.project)}”" if label is not None else ""
    return f"You have already labeled image #{item.pk}: your label{names} is saved. Nothing changed."


def _parse_class_ids(*, project: Project, class_ids: Iterable) -> list[int]:
    try:
        ids = ids_from_values(class_ids)
    except (TypeError, ValueError) as exc:
        raise ValidationError("Unknown class id: class ids are positive integers.") from exc
    if not ids:
        raise ValidationError("Choose at least one class.")
    if not project.is_multi_label and len(ids) != 1:
        raise ValidationError("This is a single-label project: choose exactly one class.")
    return ids


def _check_classes(*, item: Item, ids: list[int]) -> None:
    """Raise ValidationError unless every id is an active class of the item's project (counted by the lock)."""
    if item.valid_classes == len(ids):
        return
    found = set(
        LabelClass.objects.filter(project_id=item.project_id, pk__in=ids, archived=False).values_list("id", flat=True)
    )
    missing = [i for i in ids if i not in found]
    raise ValidationError(unusable_classes_message(project=item.project, missing=missing))


def annotation_create(
    *, item: Item, user, class_ids: Iterable[int], seconds_spent: float = 0.0, shown_at: datetime | None = None
) -> Annotation:
    """Record the user's label for the item, release their lease, recompute the resolved label.

    The user must hold the item's lease, or the item must still need annotations, not be annotated
    by them and not be reserved by someone else's lease. `item` may be a stub (see _lock_item).
    `shown_at`: when the item's image appeared on the user's screen (see _clean_shown_at); a label
    of an item the user had skipped before is an ordinary label.
    """
    seconds = _clean_seconds(seconds_spent)
    project = item.project
    ids = _parse_class_ids(project=project, class_ids=class_ids)
    with transaction.atomic():
        locked = _lock_item(item, ids)
        _check_classes(item=locked, ids=ids)
        now = timezone.now()
        shown = _clean_shown_at(shown_at, now)
        _check_can_annotate(item=locked, user=user, now=now)
        # Whether the queue served it as a random draw: the flag as it is now, before any later scoring rewrites it.
        annotation = Annotation.objects.create(
            item=locked, user=user, seconds_spent=seconds, shown_at=shown, picked_at_random=locked.picked_at_random
        )
        Annotation.classes.through.objects.bulk_create(
            [Annotation.classes.through(annotation_id=annotation.pk, labelclass_id=i) for i in ids]
        )
        resolved_label_recompute(item=locked, item_updates=_release_fields(locked, user, now))
        _feed_review_queue(annotation=annotation, item=locked, class_ids=ids)
    _copy_back(item, locked)
    return annotation


def _feed_review_queue(*, annotation: Annotation, item: Item, class_ids: list[int]) -> None:
    """Open the review tasks this new label calls for, as it arrives; a plain label costs no query.

    Decided for free first: several live labels or a consensus tie (disagreement) run every feed of
    labeling.services.reviews for the item; a gold item's answer is checked against its gold classes only (its
    answers go past the overlap and its label is the gold answer: annotators who differ are no disagreement);
    otherwise the only feed a label can trigger is the audit sample (the same fixed hash of the annotation id),
    which opens one task directly. Model contradictions are found by the feeds' refresh after a training round and
    on the review page, not on this hot path. Skips and undos never open a task: they add no label and, below the
    overlap, cannot create a tie.
    """
    project = item.project
    if item.is_gold:
        _gold_check(annotation=annotation, item=item, class_ids=class_ids)
    elif item.state == ItemState.REVIEW or (project.annotations_per_item > 1 and item.annotation_count > 1):
        review_tasks_for_annotation(annotation=annotation)
        return
    if project.review_sample_rate > 0 and sample_hash(annotation.pk) < project.review_sample_rate:
        review_task_open(project=project, item=item, reason=ReviewTaskReason.SAMPLE, annotation=annotation)


def _gold_check(*, annotation: Annotation, item: Item, class_ids: list[int]) -> None:
    """A gold-check task for an answer that differs from the gold classes, unless one is open for the item (the
    feeds' refresh opens the next once it is closed, as for any gold answer without a task)."""
    gold = gold_classes_of([item.pk]).get(item.pk)
    if gold is None or gold == frozenset(class_ids):
        return
    if not ReviewTask.objects.filter(item_id=item.pk, reason=ReviewTaskReason.GOLD, done=False).exists():
        review_task_open(
            project=item.project, item=item, reason=ReviewTaskReason.GOLD, annotation=annotation, score=1.0
        )


def annotation_skip(*, item: Item, user, seconds_spent: float = 0.0, shown_at: datetime | None = None) -> Annotation:
    """Record that the user skipped the item and release their lease.

    The item stays in the queue for others, and comes back to this user once the rest of their queue is
    done (labeling.services.queue). `item` may be a stub (see _lock_item); `shown_at` as for annotation_create.
    """
    seconds = _clean_seconds(seconds_spent)
    with transaction.atomic():
        locked = _lock_item(item)
        now = timezone.now()
        shown = _clean_shown_at(shown_at, now)
        _check_can_annotate(item=locked, user=user, now=now)
        _check_not_skipped_twice(item=locked, user=user, now=now)
        annotation = Annotation.objects.create(
            item=locked,
            user=user,
            skipped=True,
            seconds_spent=seconds,
            shown_at=shown,
            picked_at_random=locked.picked_at_random,
        )
        _release(locked, user, now)
    _copy_back(item, locked)
    return annotation


def _check_not_skipped_twice(*, item: Item, user, now) -> None:
    """A skip of an item the user has skipped already counts only when the queue served it to them again.

    Served again = the user holds its lease; otherwise (a repeated key, a stale page) it is refused, so a
    skip is recorded once per showing. Costs a query only without the lease.
    """
    if item.lease_user_id == user.pk and item.lease_expires_at is not None and item.lease_expires_at > now:
        return
    with connection.cursor() as cursor:
        cursor.execute(ALREADY_ANNOTATED_SQL, {"item": item.pk, "user": user.pk})
        if cursor.fetchone() is not None:
            raise LabelingConflict(f"You have already skipped image #{item.pk}: your skip is saved. Nothing changed.")


def _nothing_to_undo() -> str:
    return f"Nothing to undo (labels can be undone for {settings.LABELLOOP_UNDO_GRACE_SECONDS / 60:g} minutes)."


def _undo_refusal(*, user, project: Project, annotation_id: int, latest: Annotation | None) -> LabelingConflict:
    """Why the named annotation is not withdrawn (it is not the user's latest undoable one)."""
    named = None
    if 0 < annotation_id <= MAX_ID:
        named = Annotation.objects.filter(
            pk=annotation_id, user=user, item__project=project, undoes__isnull=True
        ).first()
    if named is not None and Annotation.objects.filter(undoes=named).exists():
        return LabelingConflict(
            f"Already undone: your {_what(named, project)} of image #{named.item_id} was withdrawn. Nothing changed."
        )
    if latest is None:
        return LabelingConflict(_nothing_to_undo())
    return UndoRefused(
        f"Not undone: this page's undo was out of date. Your last {_what(latest, project)} is now the one of "
        f"image #{latest.item_id} (made in another tab or window?). Nothing changed.",
        api_message=f"Not undone: only your latest label or skip can be undone, and annotation #{annotation_id} is "
        f"not it; your latest is #{latest.pk}, the {_what(latest, project)} of image #{latest.item_id}. "
        "Nothing changed.",
    )


def _what(annotation: Annotation, project: Project) -> str:
    return "skip" if annotation.skipped else f"label “{_class_names(annotation, project)}”"


def annotation_undo(
    *, user, project: Project, annotation_id: int | None = None, lease_seconds: int | None = None
) -> Annotation:
    """Withdraw the user's last label or skip in the project, if made within the undo grace period.

    `annotation_id` names the annotation the caller means to withdraw (the labeling page sends the one it saved
    last): unless it is the user's last undoable one it is refused, so an undo repeated because its answer was
    lost withdraws nothing more. None: whichever is last.
    Recorded as a new Annotation with `undoes` set (history is kept). The item becomes claimable again
    by this user and is leased to them; open review tasks about the withdrawn label are dropped.
    Returns the undo row (its `.undoes.item` is the item). Raises LabelingConflict when there is nothing to undo
    or the named annotation is not the one to undo, Annotation.DoesNotExist when `annotation_id` is no label or
    skip of the user's in the project (another project's, another user's, none); nothing changes then.
    """
    lease_seconds = settings.LABELLOOP_LEASE_SECONDS if lease_seconds is None else lease_seconds
    now = timezone.now()
    with transaction.atomic():
        target = undo_target(
            latest=annotations_undoable(user=user, project=project, now=now).first(),
            named_id=annotation_id,
            owned=Annotation.objects.filter(user=user, item__project=project, undoes__isnull=True),
            not_found=Annotation.DoesNotExist(f"No label or skip #{annotation_id} of yours in this project."),
            refused=lambda latest: _undo_refusal(
                user=user, project=project, annotation_id=annotation_id or 0, latest=latest
            ),
            nothing=LabelingConflict(_nothing_to_undo()),
        )
        # The whole row: callers show the item again.
        locked = Item.objects.select_for_update(of=("self",)).get(pk=target.item_id)
        locked.project = project
        # Read again under the item's lock: an undo of the same annotation committed meanwhile (two requests at
        # once) has withdrawn it; a second undo row would break its unique `undoes`.
        if Annotation.objects.filter(undoes=target).exists():
            raise _undo_refusal(user=user, project=project, annotation_id=target.pk, latest=target)
        undo = Annotation.objects.create(item=locked, user=user, undoes=target)
        Item.objects.filter(pk=locked.pk).update(
            lease_user=user, lease_expires_at=now + timedelta(seconds=lease_seconds)
        )
        locked.lease_user_id, locked.lease_expires_at = user.pk, now + timedelta(seconds=lease_seconds)
        if not target.skipped:
            resolved_label_recompute(item=locked)
            # Review tasks about the withdrawn label have nothing left to judge: drop them unanswered.
            ReviewTask.objects.filter(annotation=target, done=False).delete()
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
