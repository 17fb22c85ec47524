"""The one label per item that training and export use, recomputed from annotations and reviews.

Called by the annotation services and by the review services after every verdict. Rules, in order:

0. A gold item with gold classes: those classes (source=review: a reviewer or manager set them), state labeled,
   whatever its annotations say. Every annotator answers a gold item once (labeling.services.queue serves it past
   the overlap), so its answers measure the annotators and never decide, flip or tie its label.
1. Any Review with verdict `correct` on the item's annotations: the latest one's corrected classes
   (source=review, state=labeled).
2. Else a live annotation whose latest review is `accept`: its classes (source=review).
3. Else live annotations >= overlap: overlap 1 -> that annotation (source=single); overlap > 1 ->
   the most common class set (source=consensus); a tie -> no ResolvedLabel and state=review.
4. Else no ResolvedLabel; state partial (some live annotations) or unlabeled.

Live annotation = not skipped, not an undo row, not undone, latest review not `reject`.
Item.annotation_count is the live count. An imported label (source=import) is left alone while
nothing overrides it: no live annotation and no review on any of the item's annotations. Once one
exists it decides; in particular, rejecting the stand-in annotation that a review of an import-only
item records (labeling.services.reviews) drops the imported label and sends the item back to the queue.
ResolvedLabel.updated_at changes on every change (the training scheduler counts rows newer than its
last run) and only then.
"""

from __future__ import annotations

from collections import Counter

from django.db import connection, transaction

from labeling.models import Item, ItemState, LabelSource, Project, ResolvedLabel, Review, Verdict

# The item's annotations with their classes and reviews, in plain SQL: it runs on every label, and building
# the ORM query cost more CPU than running it. Review times only order reviews (ISO text on SQLite sorts right).
DECIDE_SQL = """
    SELECT a.id, a.user_id, a.skipped, a.undoes_id, ac.labelclass_id, r.id, r.created_at, r.verdict
    FROM labeling_annotation a
    LEFT JOIN labeling_annotation_classes ac ON ac.annotation_id = a.id
    LEFT JOIN labeling_review r ON r.annotation_id = a.id
    WHERE a.item_id = %s"""


def _decide(*, item: Item, overlap: int) -> tuple[frozenset[int] | None, str, str, int, int, bool]:
    """Return (classes or None, source, state, live count, annotator count, reviewed) from the item's rows.

    `reviewed`: some annotation of the item has a review (whatever its verdict).

    One query reads annotations with their classes and reviews (a handful of rows per item); a
    `correct` verdict costs one more for its classes.
    """
    with connection.cursor() as cursor:
        cursor.execute(DECIDE_SQL, [item.pk])
        rows = cursor.fetchall()
    annotations: dict[int, tuple[int, bool, int | None]] = {}
    classes_of: dict[int, set[int]] = {}
    review_rows: set[tuple] = set()
    for pk, user, skipped, undoes, class_id, review_id, review_at, verdict in rows:
        annotations[pk] = (user, skipped, undoes)
        bucket = classes_of.setdefault(pk, set())
        if class_id is not None:
            bucket.add(class_id)
        if review_id is not None:
            review_rows.add((review_at, review_id, pk, verdict))
    undone = {undoes for (_, _, undoes) in annotations.values() if undoes is not None}
    candidates = [
        (pk, user)
        for pk, (user, skipped, undoes) in annotations.items()
        if not skipped and undoes is None and pk not in undone
    ]
    latest_verdict: dict[int, tuple[int, str]] = {}
    latest_correct: int | None = None
    latest_accept: tuple[int, int] | None = None  # (review id, annotation id)
    for _, review_id, annotation_id, verdict in sorted(review_rows):
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
    reviewed = bool(review_rows)

    if latest_correct is not None:
        through = Review.corrected_classes.through
        classes = frozenset(through.objects.filter(review_id=latest_correct).values_list("labelclass_id", flat=True))
        return classes, LabelSource.REVIEW, ItemState.LABELED, count, annotators, reviewed

    if latest_accept is not None:
        return (
            frozenset(classes_of[latest_accept[1]]),
            LabelSource.REVIEW,
            ItemState.LABELED,
            count,
            annotators,
            reviewed,
        )
    if count >= overlap and count > 0:
        if overlap == 1:
            newest = max(live_ids)
            return frozenset(classes_of[newest]), LabelSource.SINGLE, ItemState.LABELED, count, annotators, reviewed
        votes = Counter(frozenset(classes_of[pk]) for pk in live_ids).most_common()
        if len(votes) > 1 and votes[0][1] == votes[1][1]:
            return None, "", ItemState.REVIEW, count, annotators, reviewed
        return votes[0][0], LabelSource.CONSENSUS, ItemState.LABELED, count, annotators, reviewed
    state = ItemState.PARTIAL if count > 0 else ItemState.UNLABELED
    return None, "", state, count, annotators, reviewed


EXISTING_SQL = "SELECT * FROM labeling_resolvedlabel WHERE item_id = %s"


def resolved_label_recompute(*, item: Item, item_updates: dict | None = None) -> ResolvedLabel | None:
    """Recompute the item's ResolvedLabel, state and annotation_count from its rows; return the label or None.

    Callers that may race (two annotators on one item) should hold the item row lock
    (`select_for_update`) in the surrounding transaction; the annotation services do.
    `item_updates` (e.g. a lease release) are folded into the same single UPDATE of the item.
    """
    item_updates = item_updates or {}
    if Item._meta.get_field("project").is_cached(item):
        overlap = item.project.annotations_per_item
    else:
        overlap = Project.objects.values_list("annotations_per_item", flat=True).get(pk=item.project_id)
    # No savepoint when nested in the caller's transaction: it saves two round trips per label.
    with transaction.atomic(savepoint=False):
        classes, source, state, count, annotators, reviewed = _decide(item=item, overlap=overlap)
        gold = _gold_classes(item)
        if gold:
            classes, source, state = gold, LabelSource.REVIEW, ItemState.LABELED
        existing = next(iter(ResolvedLabel.objects.raw(EXISTING_SQL, [item.pk])), None)
        result: ResolvedLabel | None
        if classes is None:
            if existing is not None and existing.source == LabelSource.IMPORT and count == 0 and not reviewed:
                # An imported label that no live annotation or review overrides stays the item's label.
                _item_update(item, state=ItemState.LABELED, count=0, extra=item_updates)
                return existing
            if existing is not None:
                existing.delete()
            result = None
        elif existing is None:
            result = ResolvedLabel.objects.create(
                item=item, project_id=item.project_id, source=source, annotator_count=annotators
            )
            through = ResolvedLabel.classes.through
            through.objects.bulk_create([through(resolvedlabel_id=result.pk, labelclass_id=c) for c in classes])
        else:
            old = frozenset(existing.classes.values_list("id", flat=True))
            if old != classes or existing.source != source or existing.annotator_count != annotators:
                existing.source = source
                existing.annotator_count = annotators
                existing.save(update_fields=["source", "annotator_count", "updated_at"])
                if old != classes:
                    existing.classes.set(classes)
            result = existing
        _item_update(item, state=state, count=count, extra=item_updates)
    return result


def _gold_classes(item: Item) -> frozenset[int]:
    """The gold item's answer classes (empty for an ordinary item: no query)."""
    if not item.is_gold:
        return frozenset()
    return frozenset(Item.gold_classes.through.objects.filter(item_id=item.pk).values_list("labelclass_id", flat=True))


def _item_update(item: Item, *, state: str, count: int, extra: dict) -> None:
    if item.state != state or item.annotation_count != count or extra:
        Item.objects.filter(pk=item.pk).update(state=state, annotation_count=count, **extra)
        item.state, item.annotation_count = state, count
        for field, value in extra.items():
            setattr(item, field, value)


def items_resolve_after_overlap_change(*, project: Project) -> list[int]:
    """After "Annotators per image" went down: the partial items that now have as many labels as it asks for are
    recomputed, and their leases dropped (with 1 asked the queue serves only unlabeled items: they would stay
    partial, unserved and untrained on, and an annotator holding one could neither label nor skip it). Returns the
    ids of the items whose state changed. One recompute per item, on those items only."""
    changed = []
    items = Item.objects.filter(
        project=project, state=ItemState.PARTIAL, annotation_count__gte=project.annotations_per_item
    ).values_list("pk", flat=True)
    for pk in list(items):
        with transaction.atomic():
            locked = Item.objects.select_for_update().select_related("project").get(pk=pk)
            before = locked.state
            resolved_label_recompute(item=locked, item_updates={"lease_user": None, "lease_expires_at": None})
            if locked.state != before:
                changed.append(pk)
    return changed
