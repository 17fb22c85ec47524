"""Project overview reads: items by state, queue depth, labels per class and (for managers) annotator throughput."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db.models import Avg, Count, Q
from django.utils import timezone

from labeling.models import Annotation, Item, ItemState, LabelClass, Project, ResolvedLabel
from labeling.selectors.annotator_work import annotator_work
from labeling.selectors.classes import ClassTree, class_ancestors, class_tree, paths_attached
from labeling.selectors.reviews import review_task_counts


def class_label_counts(*, project: Project, tree: ClassTree) -> tuple[dict[int, int], dict[int, int]]:
    """Resolved labels per class: (class id -> items labeled with the class itself, class id -> items labeled with
    it or any class under it, for the classes that have classes under them). One query: a single-label item has one
    class, so a branch's total is a sum; a multi-label item may carry two classes of a branch and counts once there,
    so those totals are read from the (label, class) pairs."""
    through = ResolvedLabel.classes.through
    rows = through.objects.filter(resolvedlabel__project=project)
    ancestors = {pk: class_ancestors(pk, tree) for pk in tree}
    parents = {a for chain in ancestors.values() for a in chain}
    in_all: dict[int, int] = dict.fromkeys(parents, 0)
    if not project.is_multi_label:
        own = dict(rows.values_list("labelclass_id").annotate(n=Count("id")).order_by())
        for pk, n in own.items():
            for a in [pk, *ancestors.get(pk, ())]:
                if a in in_all:
                    in_all[a] += n
        return own, in_all
    own, branches = {}, {}
    for label_id, pk in rows.values_list("resolvedlabel_id", "labelclass_id").iterator():
        own[pk] = own.get(pk, 0) + 1
        branches.setdefault(label_id, set()).update([pk, *ancestors.get(pk, ())])
    for branch in branches.values():
        for a in branch & parents:
            in_all[a] += 1
    return own, in_all


def dashboard_summary(*, project: Project, with_annotators: bool = True) -> dict:
    """Everything the project overview shows, in a handful of aggregate queries.

    Annotator figures count labels that stand: skips are counted apart and a label later undone counts nowhere
    (the undo rows themselves neither), nor does a reviewer's verdict on an imported label (annotator_work).
    `with_annotators=False` leaves them out (the page shows them to managers). `review_open` is the review page's
    "All" count: the open review tasks of every reason (review_task_counts).
    """
    now = timezone.now()
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    week = today - timedelta(days=today.weekday())

    by_state = dict(Item.objects.filter(project=project).values_list("state").annotate(n=Count("id")).order_by())
    total = sum(by_state.values())
    # Items on someone's card: one per annotator holding a live lease. The labeling page also leases the item the
    # annotator's next card will show (labeling.services.queue.item_reserve_next), which nobody is labeling yet.
    leased = (
        Item.objects.filter(
            project=project, state__in=(ItemState.UNLABELED, ItemState.PARTIAL), lease_expires_at__gt=now
        )
        .values("lease_user")
        .distinct()
        .count()
    )
    open_items = by_state.get(ItemState.UNLABELED, 0) + by_state.get(ItemState.PARTIAL, 0)

    tree = class_tree(project=project)
    own, in_all = class_label_counts(project=project, tree=tree)
    classes = [
        {
            "id": c.pk,
            "path": c.path,
            "color": c.color,
            "archived": c.archived,
            "count": own.get(c.pk, 0),
            "total": in_all.get(c.pk),
        }
        for c in paths_attached(LabelClass.objects.filter(project=project), project=project, tree=tree)
    ]
    max_count = max([c["count"] if c["total"] is None else c["total"] for c in classes] or [0])

    annotators, undone_week = [], 0
    if with_annotators:
        standing = annotator_work(Annotation.objects.filter(item__project=project, created_at__gte=week).standing())
        rows = list(
            standing.values("user_id")
            .annotate(
                week=Count("id", filter=Q(skipped=False)),
                today=Count("id", filter=Q(skipped=False, created_at__gte=today)),
                skips=Count("id", filter=Q(skipped=True)),
                avg_seconds=Avg("seconds_spent", filter=Q(skipped=False)),
            )
            .order_by("-week")
        )
        names = dict(get_user_model().objects.filter(pk__in=[r["user_id"] for r in rows]).values_list("pk", "username"))
        annotators = [{**r, "username": names.get(r["user_id"], "?")} for r in rows]
        undone_week = Annotation.objects.filter(
            item__project=project, undoes__isnull=False, created_at__gte=week
        ).count()
    return {
        "by_state": {state: by_state.get(state, 0) for state in ItemState.values},
        "total": total,
        "queue_depth": open_items,
        "leased": leased,
        "review_open": sum(review_task_counts(project=project).values()),
        "resolved": ResolvedLabel.objects.filter(project=project).count(),
        "classes": classes,
        "max_class_count": max_count,
        "class_branches": any(c["total"] is not None for c in classes),
        "annotators": annotators,
        "undone_week": undone_week,
    }
