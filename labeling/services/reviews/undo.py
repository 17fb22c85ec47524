"""Undo of a review verdict: the reviewer's last verdict in the project, within LABELLOOP_UNDO_GRACE_SECONDS (the
same rules as labeling.services.annotations.annotation_undo).

The verdict's Review row is deleted, not marked: Review has no field to say "withdrawn", and every reader of reviews
(the resolved label's rules in labeling.services.resolution, the quality report, the settled-task note, the
label-error outcomes, the reviews API, the audit-sample feed's "not reviewed yet") counts each row as a verdict
given, so a kept row would keep counting. Annotations (the labels judged) stay untouched and append-only; the only
annotation removed is the stand-in row a verdict on an import-only item created in the reviewer's name, whose one
purpose was to carry that verdict (the imported label it copied is put back).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from labeling.models import Item, LabelSource, Project, ResolvedLabel, Review, ReviewTask
from labeling.services.resolution import resolved_label_recompute
from labeling.services.undo_target import undo_target


class ReviewUndoConflict(Exception):
    """The named verdict is not the reviewer's last undoable one, or there is nothing to undo (HTTP 409)."""


@dataclass
class ReviewUndone:
    review_id: int
    verdict: str
    item_id: int
    reopened: list[ReviewTask] = field(default_factory=list)  # newest first: the first is the card to show again


def _undoable(*, reviewer, project: Project, now):
    grace = timedelta(seconds=settings.LABELLOOP_UNDO_GRACE_SECONDS)
    return (
        Review.objects.filter(reviewer=reviewer, annotation__item__project=project, created_at__gte=now - grace)
        .select_related("annotation")
        .order_by("-created_at", "-id")
    )


def review_undo_target(*, reviewer, project: Project) -> int | None:
    """The id of the verdict review_undo would withdraw now, or None (the review page names it in its undo)."""
    return _undoable(reviewer=reviewer, project=project, now=timezone.now()).values_list("pk", flat=True).first()


def _nothing_to_undo() -> str:
    return f"Nothing to undo (verdicts can be undone for {settings.LABELLOOP_UNDO_GRACE_SECONDS / 60:g} minutes)."


def _refusal(review_id: int, latest: Review | None) -> str:
    """Why the named verdict is not withdrawn: it is not the reviewer's latest undoable one."""
    if latest is None:
        return _nothing_to_undo()
    if not review_id:  # 0: the page showed no verdict to undo
        return (
            f"Not undone: this page showed no verdict to undo. Your last is #{latest.pk} on image "
            f"#{latest.annotation.item_id} (given in another tab or window?). Nothing changed."
        )
    return (
        f"Not undone: verdict #{review_id} is not your last one any more; your last is #{latest.pk} on image "
        f"#{latest.annotation.item_id}. Nothing changed."
    )


def _reopen_tasks(*, review: Review, item_id: int) -> list[ReviewTask]:
    """Open again the tasks the verdict closed.

    Only verdicts close tasks (labeling.services.reviews.verdicts), and no verdict on the item came after this one
    (checked by the caller): a closed task of the item made after the item's previous verdict, and not after this
    one, was closed by this one. The newest such task of each reason is opened again; an open task of that reason
    made after the verdict (its effect fed the queue) gives way to it, one made before it stays instead.
    """
    before = (
        Review.objects.filter(annotation__item_id=item_id, created_at__lte=review.created_at)
        .exclude(pk=review.pk)
        .order_by("-created_at", "-id")
        .first()
    )
    closed = ReviewTask.objects.filter(item_id=item_id, done=True, created_at__lte=review.created_at)
    if before is not None:
        closed = closed.filter(created_at__gt=before.created_at)
    seen, reopened = set(), []
    for task in closed.order_by("-created_at", "-id"):
        if task.reason in seen:
            continue
        seen.add(task.reason)
        open_now = ReviewTask.objects.filter(item_id=item_id, reason=task.reason, done=False)
        open_now.filter(created_at__gt=review.created_at).delete()
        if open_now.exists():
            continue
        ReviewTask.objects.filter(pk=task.pk).update(done=False)
        task.done = False
        reopened.append(task)
    return reopened


def _drop_stand_in(*, review: Review, item: Item) -> None:
    """A verdict on an import-only item was recorded on a stand-in annotation in the reviewer's name that copied the
    imported label: with its last verdict gone it goes too, and the imported label is the item's label again."""
    stand_in = review.annotation
    if stand_in.user_id != review.reviewer_id or Review.objects.filter(annotation=stand_in).exists():
        return
    classes = list(stand_in.classes.values_list("pk", flat=True))
    ReviewTask.objects.filter(annotation=stand_in).update(annotation=None)
    stand_in.delete()
    ResolvedLabel.objects.filter(item=item).delete()
    label = ResolvedLabel.objects.create(item=item, project_id=item.project_id, source=LabelSource.IMPORT)
    label.classes.set(classes)


def review_undo(*, reviewer, project: Project, review_id: int | None = None) -> ReviewUndone:
    """Withdraw the reviewer's last verdict in the project, if given within the undo grace period.

    `review_id` names the verdict the caller means to withdraw (the review page sends the one it saved last): unless
    it is the reviewer's last undoable one it is refused, so an undo repeated because its answer was lost withdraws
    nothing more. None: whichever is last.
    The Review row is deleted (see the module docstring), the tasks it closed are open again, and the item's
    resolved label is recomputed as if the verdict had never been given. Raises ReviewUndoConflict when there is
    nothing to undo, the named verdict is not the one to undo, or another reviewer has judged the item since;
    Review.DoesNotExist when `review_id` is no verdict of the reviewer's in the project (another project's, another
    reviewer's, one already undone, none). Nothing changes then.
    """
    now = timezone.now()
    with transaction.atomic():
        target = undo_target(
            latest=_undoable(reviewer=reviewer, project=project, now=now).first(),
            named_id=review_id,
            owned=Review.objects.filter(reviewer=reviewer, annotation__item__project=project),
            not_found=Review.DoesNotExist(
                f"No verdict #{review_id} of yours in this project (an undone verdict is removed). Nothing changed."
            ),
            refused=lambda latest: ReviewUndoConflict(_refusal(review_id or 0, latest)),
            nothing=ReviewUndoConflict(_nothing_to_undo()),
        )
        item = Item.objects.select_for_update().select_related("project").get(pk=target.annotation.item_id)
        # Read again under the item's lock: a concurrent undo may have removed it, a reviewer may have judged since.
        target = Review.objects.filter(pk=target.pk).select_related("annotation").first()
        if target is None:
            raise ReviewUndoConflict("Already undone. Nothing changed.")
        later = Review.objects.filter(annotation__item=item, created_at__gte=target.created_at).exclude(pk=target.pk)
        later = later.select_related("reviewer").first()
        if later is not None:
            raise ReviewUndoConflict(
                f"Not undone: {later.reviewer.get_username()} has given a verdict on image #{item.pk} since yours. "
                "Nothing changed."
            )
        done = ReviewUndone(review_id=target.pk, verdict=target.verdict, item_id=item.pk)
        target.delete()
        _drop_stand_in(review=target, item=item)
        done.reopened = _reopen_tasks(review=target, item_id=item.pk)
        resolved_label_recompute(item=item)
    return done
