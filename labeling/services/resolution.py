"""The one label per item that training and export use, recomputed from annotations and reviews.

Called by the annotation services and by the review services after every verdict. Rules, in order:

1. Any Review with verdict `correct` on the item's annotations: the latest one's corrected classes
   (source=review, state=labeled).
2. Else a live annotation whose latest review is `accept`: its classes (source=review).
3. Else live annotations >= overlap: overlap 1 -> that annotation (source=single); overlap > 1 ->
   the most common class set (source=consensus); a tie -> no ResolvedLabel and state=review.
4. Else no ResolvedLabel; state partial (some live annotations) or unlabeled.

Live annotation = not skipped, not an undo row, not undone, latest review not `reject`.
Item.annotation_count is the live count. An imported label (source=import) with no annotations
or reviews over it is left alone. ResolvedLabel.updated_at changes on every change (the training
scheduler counts rows newer than its last run) and only then.
"""

from __future__ import annotations

from collections import Counter

from django.db import transaction

from labeling.models import Annotation, Item, ItemState, LabelSource, Project, ResolvedLabel, Review, Verdict


def _decide(*, item: Item, overlap: int) -> tuple[frozenset[int] | None, str, str, int, int]:
    """Return (classes or None, source, state, live count, annotator count) from the item's rows (4 queries)."""
    rows = list(Annotation.objects.filter(item=item).values_list("id", "user_id", "skipped", "undoes_id"))
    undone = {undoes for (_, _, _, undoes) in rows if undoes is not None}
    candidates = [
        (pk, user) for (pk, user, skipped, undoes) in rows if not skipped and undoes is None and pk not in undone
    ]
    reviews = list(
        Review.objects.filter(annotation__item=item)
        .order_by("created_at", "id")
        .values_list("id", "annotation_id", "verdict")
    )
    latest_verdict: dict[int, tuple[int, str]] = {}
    latest_correct: int | None = None
    latest_accept: tuple[int, int] | None = None  # (review id, annotation id)
    for review_id, annotation_id, verdict in reviews:
        latest_verdict[annotation_id] = (review_id, verdict)
        if verdict == Verdict.CORRECT:
            latest_correct = review_id
    live = [(pk, user) for (pk, user) in candidates if latest_verdict.get(pk, (0, ""))[1] != Verdict.REJECT]
    live_ids = {pk for pk, _ in live}
    for annotation_id, (review_id, verdict) in latest_verdict.items():
        if (
            verdict == Verdict.ACCEPT
            and annotation_id in live_ids
            and (latest_accept is None or review_id > latest_accept[0])
        ):
            latest_accept = (review_id, annotation_id)
    count = len(live)
    annotators = len({user for _, user in live})

    if latest_correct is not None:
        through = Review.corrected_classes.through
        classes = frozenset(through.objects.filter(review_id=latest_correct).values_list("labelclass_id", flat=True))
        return classes, LabelSource.REVIEW, ItemState.LABELED, count, annotators

    classes_of: dict[int, set[int]] = {pk: set() for pk in live_ids}
    if live_ids:
        through = Annotation.classes.through
        for annotation_id, class_id in through.objects.filter(annotation_id__in=live_ids).values_list(
            "annotation_id", "labelclass_id"
        ):
            classes_of[annotation_id].add(class_id)

    if latest_accept is not None:
        return frozenset(classes_of[latest_accept[1]]), LabelSource.REVIEW, ItemState.LABELED, count, annotators
    if count >= overlap and count > 0:
        if overlap == 1:
            newest = max(live_ids)
            return frozenset(classes_of[newest]), LabelSource.SINGLE, ItemState.LABELED, count, annotators
        votes = Counter(frozenset(classes_of[pk]) for pk in live_ids).most_common()
        if len(votes) > 1 and votes[0][1] == votes[1][1]:
            return None, "", ItemState.REVIEW, count, annotators
        return votes[0][0], LabelSource.CONSENSUS, ItemState.LABELED, count, annotators
    state = ItemState.PARTIAL if count > 0 else ItemState.UNLABELED
    return None, "", state, count, annotators


def resolved_label_recompute(*, item: Item) -> ResolvedLabel | None:
    """Recompute the item's ResolvedLabel, state and annotation_count from its rows; return the label or None.

    Callers that may race (two annotators on one item) should hold the item row lock
    (`select_for_update`) in the surrounding transaction; the annotation services do.
    """
    if Item._meta.get_field("project").is_cached(item):
        overlap = item.project.annotations_per_item
    else:
        overlap = Project.objects.values_list("annotations_per_item", flat=True).get(pk=item.project_id)
    with transaction.atomic():
        classes, source, state, count, annotators = _decide(item=item, overlap=overlap)
        existing = ResolvedLabel.objects.filter(item=item).first()
        result: ResolvedLabel | None
        if classes is None:
            if existing is not None and existing.source == LabelSource.IMPORT and count == 0:
                # An imported label that no live annotation or review overrides stays the item's label.
                _item_update(item, state=ItemState.LABELED, count=0)
                return existing
            if existing is not None:
                existing.delete()
            result = None
        elif existing is None:
            result = ResolvedLabel.objects.create(
                item=item, project_id=item.project_id, source=source, annotator_count=annotators
            )
            result.classes.set(classes)
        else:
            old = frozenset(existing.classes.values_list("id", flat=True))
            if old != classes or existing.source != source or existing.annotator_count != annotators:
                existing.source = source
                existing.annotator_count = annotators
                existing.save(update_fields=["source", "annotator_count", "updated_at"])
                if old != classes:
                    existing.classes.set(classes)
            result = existing
        _item_update(item, state=state, count=count)
    return result


def _item_update(item: Item, *, state: str, count: int) -> None:
    if item.state != state or item.annotation_count != count:
        Item.objects.filter(pk=item.pk).update(state=state, annotation_count=count)
        item.state, item.annotation_count = state, count
