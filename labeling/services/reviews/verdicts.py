"""Review verdicts (accept, reject or correct a label) and gold items, a manager's known answer for an item
(labeling.services.reviews describes the rules)."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from labeling.constants import MAX_REVIEW_COMMENT, ids_from_values
from labeling.models import (
    Annotation,
    Item,
    LabelClass,
    Project,
    ResolvedLabel,
    Review,
    ReviewTask,
    ReviewTaskReason,
    Verdict,
)
from labeling.selectors.classes import unusable_classes_message
from labeling.services.resolution import resolved_label_recompute
from labeling.services.reviews.feeds import (
    _bulk_open,
    _gold_rows,
    live_annotations,
)


def _clean_corrected(project: Project, class_ids: Iterable | None) -> list[int]:
    try:
        ids = ids_from_values(class_ids or [])
    except (TypeError, ValueError) as exc:
        raise ValidationError("Unknown class id: class ids are positive integers.") from exc
    if not ids:
        raise ValidationError("A correction needs at least one class.")
    if not project.is_multi_label and len(ids) != 1:
        raise ValidationError("This is a single-label project: a correction has exactly one class.")
    found = set(LabelClass.objects.filter(project=project, pk__in=ids, archived=False).values_list("id", flat=True))
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValidationError(unusable_classes_message(project=project, missing=missing))
    return ids


def task_annotation(task: ReviewTask) -> Annotation | None:
    """The annotation a verdict on this task is about: the task's own if it still counts, else the newest live one."""
    live = live_annotations().filter(item_id=task.item_id)
    if task.annotation_id is not None:
        own = live.filter(pk=task.annotation_id).first()
        if own is not None:
            return own
    return live.order_by("-created_at", "-id").first()


def _imported_label_annotation(*, item: Item, reviewer) -> Annotation:
    """An imported label has no annotation to hang a Review on: record it as the reviewer's annotation.

    Such rows are the reviewer's own (they also carry the reviewer's verdict) and the quality report leaves them
    out of annotator figures.
    """
    resolved = ResolvedLabel.objects.filter(item=item).first()
    if resolved is None:
        raise ValidationError("This item has no live annotation or label to review.")
    annotation = Annotation.objects.create(item=item, user=reviewer)
    annotation.classes.set(resolved.classes.all())
    return annotation


def _refuse_correction_to_given(*, item: Item, annotation: Annotation | None, corrected: list[int]) -> None:
    """A correction must change the label: the judged annotation's classes (or the imported label's) are refused."""
    if annotation is not None:
        given = set(annotation.classes.values_list("id", flat=True))
    else:
        through = ResolvedLabel.classes.through
        given = set(through.objects.filter(resolvedlabel__item=item).values_list("labelclass_id", flat=True))
    if given != set(corrected):
        return
    names = ", ".join(c.path for c in LabelClass.objects.filter(pk__in=corrected))
    raise ValidationError(
        f"{names} is already the given label: press Accept to confirm it, or choose a different class to correct it."
    )


def _is_own_label(*, annotation: Annotation, reviewer) -> bool:
    """The reviewer gave this label. Their record of an imported label (it carries their own verdict) is not."""
    if annotation.user_id != reviewer.pk:
        return False
    return not Review.objects.filter(annotation=annotation, reviewer=reviewer).exists()


def review_submit(
    *,
    task: ReviewTask,
    reviewer,
    verdict: str,
    corrected_class_ids: Iterable[int] | None = None,
    comment: str = "",
) -> Review:
    """Record a verdict on the task's annotation, close the task, recompute the item's resolved label.

    accept: the annotation is confirmed. reject: it stops counting and the item returns to the queue. Either answers
    every open task about that annotation.
    correct: the reviewer's classes become the item's label; every open task of the item is closed.
    An item labeled only by import has no annotation to judge: the verdict is recorded on an annotation row in the
    reviewer's name that carries the imported classes. Raises ValidationError (nothing changes) for an unknown
    verdict, bad classes, a comment over MAX_REVIEW_COMMENT characters, a correction to the given label itself, a
    verdict on the reviewer's own label, a closed task, or an item with neither a live annotation nor a label.
    """
    if verdict not in Verdict.values:
        raise ValidationError(f"Unknown verdict {verdict!r}: use accept, reject or correct.")
    project = task.project
    corrected = _clean_corrected(project, corrected_class_ids) if verdict == Verdict.CORRECT else []
    comment = (comment or "").strip()
    if len(comment) > MAX_REVIEW_COMMENT:
        raise ValidationError(
            f"A comment may be at most {MAX_REVIEW_COMMENT:,} characters (this one has {len(comment):,}); nothing was "
            "saved."
        )
    with transaction.atomic():
        locked = ReviewTask.objects.select_for_update().select_related("item").get(pk=task.pk)
        if locked.done:
            raise ValidationError("This review task is already closed.")
        item = Item.objects.select_for_update().select_related("project").get(pk=locked.item_id)
        annotation = task_annotation(locked)
        if annotation is not None and _is_own_label(annotation=annotation, reviewer=reviewer):
            raise ValidationError("This is your own label: someone else has to review it. Press Next for another task.")
        if corrected:
            _refuse_correction_to_given(item=item, annotation=annotation, corrected=corrected)
        if annotation is None:
            annotation = _imported_label_annotation(item=item, reviewer=reviewer)
        review = Review.objects.create(annotation=annotation, reviewer=reviewer, verdict=verdict, comment=comment)
        if corrected:
            review.corrected_classes.set(corrected)
        to_close = ReviewTask.objects.filter(pk=locked.pk)
        if verdict == Verdict.CORRECT:
            to_close = ReviewTask.objects.filter(item=item, done=False)
        else:
            # The judged annotation is confirmed, or no longer counts: the other open tasks about it (an audit
            # sample and a model contradiction of the same label) are answered too, not judged a second time.
            to_close = ReviewTask.objects.filter(Q(pk=locked.pk) | Q(annotation=annotation, done=False))
        to_close.update(done=True)
        resolved_label_recompute(item=item)
    task.done = True
    return review


# ---- gold ----------------------------------------------------------------------------------------------------


def item_gold_set(*, item: Item, class_ids: Iterable[int]) -> Item:
    """Make the item a gold item with these answer classes; wrong live answers already given go to review."""
    project = item.project
    ids = _clean_corrected(project, class_ids)
    with transaction.atomic():
        Item.objects.filter(pk=item.pk).update(is_gold=True)
        item.is_gold = True
        item.gold_classes.set(ids)
        resolved_label_recompute(item=item)  # the gold answer is the item's label from now on (resolution, rule 0)
    _bulk_open(project, _gold_rows(project, [item.pk]), ReviewTaskReason.GOLD)
    return item


def item_gold_clear(*, item: Item) -> Item:
    """Stop using the item as gold; its open gold tasks are closed."""
    with transaction.atomic():
        Item.objects.filter(pk=item.pk).update(is_gold=False)
        item.is_gold = False
        item.gold_classes.clear()
        ReviewTask.objects.filter(item=item, reason=ReviewTaskReason.GOLD, done=False).delete()
        resolved_label_recompute(item=item)  # its answers decide its label again
    return item
