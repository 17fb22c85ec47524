"""The label-error search as data (REST API, manage.py label_errors): the latest search with the suspects nobody has
settled, and the cross-validated estimate the model pages show. Classes are named by stored path ("a/b/c"), as every
machine-facing answer names them; the search recorded display paths ("a / b / c"), which pages keep."""

from __future__ import annotations

from collections import namedtuple
from dataclasses import astuple, dataclass

from django.db.models import Q

from labeling.models import Job, JobKind, JobStatus, Project, ReviewTask, ReviewTaskReason
from labeling.selectors.classes import class_tree
from labeling.selectors.training_seam import suspect_decisions
from training.models import LabelErrorSearch
from training.selectors.classes import class_names_stored
from training.selectors.quality import CrossValidated, cross_validated_estimate

# LabelErrorSearch.suspects rows, in order.
SUSPECT_KEYS = ("given_class", "suggested_class", "p_suggested", "p_given", "neighbours_suggested", "neighbours_given")
# A multi-label suspect's decisions (labeling.selectors.training_seam.SuspectDecision), as the API names them.
DECISION_KEYS = namedtuple("Decision", ("class_id", "given", "p_present", "neighbours_present"))
SEARCH_FIELDS = ("status", "reason", "labels", "min_per_class", "agreement", "estimated_share", "share_low",
                 "share_high", "not_checked", "classes_judged", "weak_classes", "seconds", "created_at")  # fmt: skip


@dataclass(frozen=True)
class SuspectPosition:
    """Where a page of suspects ends: the last row's score and item id (the list runs by score down, then item id)."""

    score: float
    item_id: int


def label_errors_report(
    *, project: Project, limit: int | None = None, after: SuspectPosition | None = None, display: bool = False
) -> dict:
    """{"search": the latest search or None, "cross_validated": the latest estimate or None}. The search lists its
    open suspects after `after`, at most `limit` of them (all when None); `suspects_open` counts them all and
    `more_after` is the position to ask from for the next page (None on the last). Class names (not_checked,
    weak_classes, the estimate's no_support) are stored paths; `display`: as the search recorded them, display paths,
    for a table people read. Suspects and decisions name classes by id."""
    search = LabelErrorSearch.objects.filter(project=project).order_by("-created_at", "-pk").first()
    report = {
        "search": _search_data(search, limit, after),
        "cross_validated": _cv_data(cross_validated_estimate(project=project)),
    }
    return report if display else _paths_stored(report, project)


def label_error_search_pending(*, project: Project) -> Job | None:
    """The newest label-error search job still queued or running, or None: while it is, the figures it makes
    (suspects, the cross-validated estimate) are the previous search's, or missing on a project's first."""
    return (
        Job.objects.filter(project=project, kind=JobKind.LABEL_ERRORS, status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
        .order_by("-created_at", "-pk")
        .first()
    )


def _paths_stored(report: dict, project: Project) -> dict:
    """`report` with each class name a row or list carries spelled as its stored path (class_names_stored)."""
    search, cv = report["search"], report["cross_validated"]
    rows = [] if search is None else [row for key in ("not_checked", "weak_classes") for row in search[key] or []]
    names = [row[0] for row in rows if isinstance(row, list) and row and isinstance(row[0], str)]
    names += [] if cv is None else cv["no_support"]
    if not names:
        return report
    spelled = class_names_stored(names, tree=class_tree(project=project))

    def row_spelled(row):
        if isinstance(row, list) and row and isinstance(row[0], str):
            return [spelled.get(row[0], row[0]), *row[1:]]
        return row

    for key in ("not_checked", "weak_classes"):
        if search is not None and isinstance(search[key], list):
            search[key] = [row_spelled(row) for row in search[key]]
    if cv is not None:
        cv["no_support"] = [spelled.get(name, name) for name in cv["no_support"]]
    return report


def _search_data(search: LabelErrorSearch | None, limit: int | None, after: SuspectPosition | None) -> dict | None:
    if search is None:
        return None
    open_tasks = ReviewTask.objects.filter(project=search.project, reason=ReviewTaskReason.LABEL_ERROR, done=False)
    total = open_tasks.count()
    if after is not None:
        open_tasks = open_tasks.filter(Q(score__lt=after.score) | Q(score=after.score, item_id__gt=after.item_id))
    rows = list(
        open_tasks.order_by("-score", "item_id").values_list("item_id", "item__original_name", "score")[
            : None if limit is None else limit + 1
        ]
    )
    more_after = None
    if limit is not None and len(rows) > limit:
        rows = rows[:limit]
        more_after = SuspectPosition(score=rows[-1][2], item_id=rows[-1][0]) if rows else None
    details = search.suspects if isinstance(search.suspects, dict) else {}
    suspects = []
    for item_id, name, score in rows:
        row = details.get(str(item_id))
        detail = dict(zip(SUSPECT_KEYS, row, strict=False)) if isinstance(row, list) else {}
        decisions = suspect_decisions(row)
        suspects.append(
            {
                "item": item_id,
                "name": name,
                "score": round(score, 6),
                **{k: detail.get(k) for k in SUSPECT_KEYS},
                # multi-label: the class decisions the search contradicts (None in a single-label project)
                "decisions": None if decisions is None else [DECISION_KEYS(*astuple(d))._asdict() for d in decisions],
            }
        )
    return {
        "id": search.pk,
        **{f: getattr(search, f) for f in SEARCH_FIELDS},
        "suspects_open": total,
        "suspects": suspects,
        "more_after": more_after,
    }


def _figure(f) -> dict | None:
    return None if f is None else {"value": f.value, "n": f.n, "low": f.low, "high": f.high, "method": f.method}


def _cv_data(cv: CrossValidated | None) -> dict | None:
    if cv is None:
        return None
    opened = None
    if cv.open_accuracy is not None:
        opened = {"accuracy": _figure(cv.open_accuracy), "scored": cv.open_scored, "open": cv.open_total}
    return {
        "n": cv.n,
        "multi_label": cv.multi_label,
        # accuracy is the subset accuracy in a multi-label project, which adds its Hamming accuracy and micro-F1
        "accuracy": _figure(cv.accuracy),
        **{f.key: _figure(f) for f in cv.headline if f is not cv.accuracy},
        "no_support": cv.no_support,
        "folds": cv.folds,
        "pool": cv.pool,
        "open_images": opened,
        "searched_at": cv.searched_at,
    }
