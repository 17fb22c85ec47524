"""Reads for the labeling page, grid and API: taxonomy, model suggestions, progress, grid sources.

Predictions live in the training app, which labeling never imports: they are read through
labeling.selectors.training_seam, and an absent training app means no suggestions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.utils import timezone

from labeling.models import Annotation, Item, ItemState, LabelClass, Project, Review, Split, Verdict
from labeling.selectors.annotator_work import annotator_work
from labeling.selectors.claimable import OPEN_STATES, claimable_items
from labeling.selectors.classes import class_path_display, class_path_names
from labeling.selectors.training_seam import prediction_model as _prediction_model


@dataclass(frozen=True)
class ClassOption:
    id: int
    name: str
    path: str
    hotkey: str
    color: str
    parent_id: int | None
    has_children: bool


@dataclass(frozen=True)
class Suggestion:
    class_id: int
    name: str
    path: str
    probability: float


# A class row as class_options reads it: id, name, parent id, hotkey, color, archived, order.
ClassRow = tuple[int, str, int | None, str, str, bool, int]
CLASS_ROW_FIELDS = ("id", "name", "parent_id", "hotkey", "color", "archived", "order")


def label_classes_for_labeling(*, project: Project) -> list[ClassOption]:
    """Active classes in taxonomy order with their full path (one query)."""
    return class_options(LabelClass.objects.filter(project=project).values_list(*CLASS_ROW_FIELDS))


def class_options(rows: Iterable[ClassRow]) -> list[ClassOption]:
    """The active classes of `rows` in taxonomy order with their full path, as label_classes_for_labeling gives them.
    `rows` (CLASS_ROW_FIELDS) must hold every class of the project, archived ones too: a path needs its ancestors."""
    rows = list(rows)
    tree = {r[0]: (r[1], r[2]) for r in rows}
    parents = {r[2] for r in rows if r[2] is not None and not r[5]}
    options = [
        ClassOption(id=r[0], name=r[1], path=class_path_display(class_path_names(r[0], tree)), hotkey=r[3],
                    color=r[4], parent_id=r[2], has_children=r[0] in parents)
        for r in sorted(rows, key=lambda r: (r[6], r[0]))
        if not r[5]
    ]  # fmt: skip
    return options


def item_suggestions(*, item: Item, classes: list[ClassOption] | None = None, limit: int = 3) -> list[Suggestion]:
    """Top classes of the active model's prediction for the item, best first (empty without one).

    `classes`: the project's label_classes_for_labeling(); read here only when there is a prediction.
    """
    prediction_model = _prediction_model()
    if prediction_model is None:
        return []
    # Plain SQL: it runs on every served item. JSON columns come back as text (decoded here) on both databases.
    version_table = prediction_model._meta.get_field("model_version").related_model._meta.db_table
    sql = (
        f"SELECT p.probabilities, v.class_ids FROM {prediction_model._meta.db_table} p"
        f" JOIN {version_table} v ON v.id = p.model_version_id WHERE p.item_id = %s AND v.active ORDER BY p.id LIMIT 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [item.pk])
        row = cursor.fetchone()
    if row is None:
        return []
    probabilities, class_ids = (json.loads(v) if isinstance(v, str | bytes) else v for v in row)
    if classes is None:
        classes = label_classes_for_labeling(project=item.project)
    known = {c.id: c for c in classes}
    pairs = sorted(
        ((float(p), cid) for p, cid in zip(probabilities or [], class_ids or [], strict=False) if cid in known),
        reverse=True,
    )
    return [
        Suggestion(class_id=cid, name=known[cid].name, path=known[cid].path, probability=p) for p, cid in pairs[:limit]
    ]


def labeling_progress(*, project: Project, user) -> dict:
    """Labeled today by this user and items still open in the project.

    "Labeled today": the user's live labels made since local midnight (TIME_ZONE) in this project; skips,
    undo rows, labels they undid and a reviewer's verdicts on imported labels (annotator_work) do not count.
    Index-backed counts (the open items: open_items_count): fine for a page render, never inside the claim
    transaction.
    """
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    mine_today = annotator_work(
        Annotation.objects.filter(user=user, created_at__gte=midnight, item__project=project).answers()
    ).count()
    return {"mine_today": mine_today, "remaining": open_items_count(project=project)}


# Every labeling card shows the project's open items. Counting them is a scan of every open item: at 100,000 it took
# 23-35 ms of a card's 45 ms on PostgreSQL, 5.5 ms on SQLite (bench/labeling_latency.py --via page). So from
# OPEN_COUNT_EXACT_FROM open items on, a count made in the last OPEN_COUNT_SECONDS stands (Django's cache, per
# process unless CACHES is shared): it is off by the labels of those seconds, a few in tens of thousands. Below
# that the count is exact on every card, as a small project's last items are counted down one by one.
OPEN_COUNT_EXACT_FROM = 5000
OPEN_COUNT_SECONDS = 10


def open_items_count(*, project: Project) -> int:
    """The project's items still open (unlabeled, or awaiting more annotators)."""
    # The creation time keeps a test database's reused pk from reading another project's count.
    key = f"labelloop:open-items:{project.pk}:{project.created_at.timestamp() if project.created_at else ''}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    count = Item.objects.filter(project=project, state__in=OPEN_STATES).count()
    if count >= OPEN_COUNT_EXACT_FROM:
        cache.set(key, count, OPEN_COUNT_SECONDS)
    return count


def item_skipped_by_user(*, item: Item, user) -> bool:
    """Whether the user's last word on the item is a skip that stands: served to them again, it is back because
    nothing else is left for them. (A label given after the skip and then undone leaves an undo row last: an undo
    gives the item back, not the queue.)"""
    last = Annotation.objects.filter(item=item, user=user).order_by("-pk").values_list("skipped", "undoes_id")[:1]
    return any(skipped and undoes is None for skipped, undoes in last)


@dataclass(frozen=True)
class SkippedItem:
    item: Item  # id, width, height, original_name loaded
    skipped_at: datetime  # the user's latest live skip of it


def skipped_items_for_user(*, project: Project, user, limit: int = 100) -> list[SkippedItem]:
    """The user's skipped items that the queue will serve them again, in that order (oldest skip first).

    Same rule as labeling.services.queue's fall-back: the user's latest live skip of an item that is still
    open, has a free annotation slot and carries no live label of theirs. Items another annotator's lease
    holds right now are listed too (they come back when the lease ends). Walks the user's skips on
    annotation_user_skip_idx; at most `limit` rows.
    """
    later_skip = Annotation.objects.filter(
        item=OuterRef("item"), user=user, skipped=True, pk__gt=OuterRef("pk")
    ).standing()
    latest_verdict = (
        Review.objects.filter(annotation=OuterRef("pk")).order_by("-created_at", "-id").values("verdict")[:1]
    )
    live_label = (
        Annotation.objects.filter(item=OuterRef("item"), user=user)
        .answers()
        .annotate(latest_verdict=Subquery(latest_verdict))
        .filter(Q(latest_verdict__isnull=True) | ~Q(latest_verdict=Verdict.REJECT))
    )
    skips = (
        Annotation.objects.filter(
            user=user,
            skipped=True,
            item__project=project,
            item__state__in=OPEN_STATES,
            item__annotation_count__lt=project.annotations_per_item,
        )
        .standing()
        .filter(~Exists(later_skip), ~Exists(live_label))
        .select_related("item")
        .only("id", "created_at", "item__id", "item__width", "item__height", "item__original_name", "item__sha256")
        .order_by("created_at", "id")
    )
    return [SkippedItem(item=s.item, skipped_at=s.created_at) for s in skips[:limit]]


def grid_items(
    *, project: Project, user, class_id: int | None = None, limit: int = 48, hide_ids: list[int] | None = None
) -> list[dict]:
    """Items for grid mode: open items this user may still label.

    With class_id: items the active model assigns to that class, most confident first (uses the
    prediction_class_conf_idx). Without: unlabeled train items by priority (item_queue_idx).
    """
    # The queue's own rule (a free slot, no one else's lease, no live label or skip of theirs), one probe per item
    base = claimable_items(project=project, user=user).filter(state__in=OPEN_STATES).exclude(pk__in=hide_ids or [])
    prediction_model = _prediction_model()
    if class_id is not None and prediction_model is not None:
        predictions = (
            prediction_model.objects.filter(
                model_version__active=True, model_version__project=project, predicted_class_id=class_id
            )
            .filter(item__in=base)
            .order_by("-confidence", "item_id")
            .values_list("item_id", "confidence")[:limit]
        )
        rows = list(predictions)
        items = {
            i.pk: i for i in Item.objects.filter(pk__in=[r[0] for r in rows]).only("id", "width", "height", "sha256")
        }
        return [{"item": items[pk], "confidence": conf} for pk, conf in rows if pk in items]
    if class_id is not None:
        return []
    # Train pool only (walks item_queue_idx in order): holdout and gold items come one by one through the queue.
    items = (
        base.filter(state=ItemState.UNLABELED, split=Split.TRAIN, is_gold=False)
        .order_by("-priority", "id")
        .only("id", "width", "height", "sha256")[:limit]
    )
    return [{"item": item, "confidence": None} for item in items]


def grid_class_counts(*, project: Project) -> dict[int, int]:
    """How many open items the active model assigns to each class (for the grid's source menu)."""
    prediction_model = _prediction_model()
    if prediction_model is None:
        return {}
    key = f"labelloop:grid-class-counts:{project.pk}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    rows = (
        prediction_model.objects.filter(
            model_version__active=True, model_version__project=project, item__state__in=OPEN_STATES
        )
        .values_list("predicted_class_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = dict(rows)
    cache.set(key, counts, 30)
    return counts
