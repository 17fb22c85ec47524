"""Which production predictions to send to the labeling queue: the filters a person (page, API, command) or the
drift check chooses, and the order they are picked in. A class stands for itself and every class under it, as in a
dataset export's filter, and is matched by every name the prediction log may hold for each of them
(serving.selectors.monitoring.class_ids_by_logged_name)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef

from labeling.models import Project
from labeling.selectors.classes import class_paths, class_tree
from labeling.selectors.exports import class_ids_with_descendants
from serving.models import PredictedLabel, PredictionLog
from serving.selectors.monitoring import MAX_SEND, class_ids_by_logged_name

# Random sampling draws from at most this many of the window's newest candidates (ids only).
RANDOM_POOL = 200_000


class Order:
    LOWEST_CONFIDENCE = "lowest_confidence"
    RANDOM = "random"
    NEWEST = "newest"
    MOST_DRIFTED = "most_drifted"  # least like the project's images (serving.services.drift_outliers)
    CHOICES = (LOWEST_CONFIDENCE, RANDOM, NEWEST, MOST_DRIFTED)


@dataclass(frozen=True)
class Selection:
    """Which production predictions to send to the labeling queue. Only predictions whose image is still kept and
    that were not sent before are candidates."""

    order: str = Order.LOWEST_CONFIDENCE
    limit: int = 50
    # stored class path (class_path_normalize of what someone typed), standing for its subtree; "" = any class
    top_class: str = ""
    since: datetime | None = None
    until: datetime | None = None
    version_number: int | None = None
    seed: int | None = None


def logged_names_of(*, project: Project, path: str) -> list[str]:
    """Every name the prediction log may hold for the class whose stored path is `path` or for a class under it
    (the display path and the stored path of each: class_ids_by_logged_name); `path` itself when no class of the
    project has it. A model predicts leaves, so a parent class finds its leaves' predictions."""
    tree = class_tree(project=project)
    class_id = {stored: pk for pk, stored in class_paths(tree).items()}.get(path)
    if class_id is None:
        return [path]
    wanted = class_ids_with_descendants([class_id], tree)
    return [name for name, pk in class_ids_by_logged_name(tree).items() if pk in wanted]


def predictions_matching(*, project: Project, selection: Selection):
    """The queryset of the project's predictions that match the selection's filters (class, time, version), sent or
    not, image kept or not."""
    rows = PredictionLog.objects.filter(project=project)
    if selection.top_class:  # a multi-label prediction matches when one of the classes it predicted is wanted
        names = logged_names_of(project=project, path=selection.top_class)
        if project.is_multi_label:  # a prediction of two classes would otherwise come twice
            rows = rows.filter(Exists(PredictedLabel.objects.filter(log=OuterRef("pk"), path__in=names)))
        else:
            rows = rows.filter(top_class__in=names)
    if selection.since is not None:
        rows = rows.filter(created_at__gte=selection.since)
    if selection.until is not None:
        rows = rows.filter(created_at__lt=selection.until)
    if selection.version_number is not None:
        rows = rows.filter(version_number=selection.version_number)
    return rows


def send_candidates(*, project: Project, selection: Selection):
    """The queryset of candidate predictions (image kept, not yet sent) that match the selection's filters."""
    return predictions_matching(project=project, selection=selection).filter(queued_at=None).exclude(image="")


def predictions_select(*, project: Project, selection: Selection) -> list[PredictionLog]:
    """The predictions a selection picks, at most selection.limit: the least confident first, a uniform random
    sample (an unbiased estimate of live accuracy), or the newest."""
    rows = send_candidates(project=project, selection=selection)
    limit = min(max(0, selection.limit), MAX_SEND)
    if selection.order == Order.RANDOM:
        pool = list(rows.order_by("-created_at").values_list("pk", flat=True)[:RANDOM_POOL])
        picked = random.Random(selection.seed).sample(pool, min(limit, len(pool)))
        return list(PredictionLog.objects.filter(pk__in=picked).order_by("confidence", "pk"))
    order = ("confidence", "pk") if selection.order == Order.LOWEST_CONFIDENCE else ("-created_at", "-pk")
    return list(rows.order_by(*order)[:limit])
