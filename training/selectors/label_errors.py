"""The label-error search as data (REST API, manage.py label_errors): the active model version's latest search with
the suspects nobody has settled, and the cross-validated estimate the model pages show for that version. Classes are
named by stored path ("a/b/c"), as every machine-facing answer names them; the search recorded display paths
("a / b / c"), which pages keep.

A search belongs to the version that was the newest when it started (its Job's start), as the model page's estimate
does (training.selectors.figures.cross_validated_estimate): "latest" is the newest search started in that version's
time, not the last one to finish (two searches run at once after two quick rounds, and the older can end last)."""

from __future__ import annotations

from collections import namedtuple
from dataclasses import astuple, dataclass
from datetime import datetime, timedelta

from django.db.models import Q

from labeling.models import Job, JobKind, JobStatus, Project, ReviewTask, ReviewTaskReason
from labeling.selectors.classes import class_tree
from labeling.selectors.training_seam import label_error_search_jobs, latest_label_error_search, suspect_decisions
from training.models import LabelErrorSearch, ModelVersion
from training.selectors.classes import class_names_stored
from training.selectors.figures import started_in_version
from training.selectors.quality import CrossValidated, cross_validated_estimate
from training.selectors.runs import model_version_active

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
    *,
    project: Project,
    limit: int | None = None,
    after: SuspectPosition | None = None,
    display: bool = False,
    search_id: int | None = None,
) -> dict:
    """{"version": the number of the model version the figures are for (the active one; None without one),
    "search": that version's latest search or None, "cross_validated": its estimate as the model page shows it or
    None, "note": what the answer lacks and why, or ""}. With `search_id` (the search manage.py label_errors just
    ran), that search and the estimate of the version it belongs to.

    The search lists the open suspects after `after`, at most `limit` of them (all when None); `suspects_open`
    counts them all and `more_after` is the position to ask from for the next page (None on the last). The open
    suspects are the review tasks the newest search started wrote, whichever version it ran for (a search that ends
    after a newer one leaves them to it): each is described by that search (`suspects_search`). Class names
    (not_checked, weak_classes, the estimate's no_support) are stored paths; `display`: as the search recorded them,
    display paths, for a table people read. Suspects and decisions name classes by id."""
    note = ""
    if search_id is not None:
        search = LabelErrorSearch.objects.filter(project=project, pk=search_id).first()
        version = _version_at(project, _search_began(search)) if search is not None else None
    else:
        version = model_version_active(project=project)
        search = _newest_search(project, version)
        if version is not None and search is None:
            # Never another version's figures without saying so: the estimate stays None, as on the model page.
            search = _newest_search(project, None)
            note = _no_search_note(project, version, search)
    report = {
        "version": None if version is None else version.number,
        "search": _search_data(project, search, limit, after),
        "cross_validated": _cv_data(cross_validated_estimate(project=project, version=version)),
        "note": note,
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


def _newest_search(project: Project, version: ModelVersion | None) -> LabelErrorSearch | None:
    """The newest search started while `version` was the newest version (any, with None); without a Job to say when
    a search started (none before any version's), the last one stored."""
    jobs = started_in_version(label_error_search_jobs(project_id=project.pk), version)
    search_pk = jobs.order_by("-began", "-pk").values_list("result__search", flat=True).first()
    searches = LabelErrorSearch.objects.filter(project=project)
    if search_pk is not None:
        return searches.filter(pk=search_pk).first()
    return searches.order_by("-created_at", "-pk").first() if version is None else None


def _search_began(search: LabelErrorSearch) -> datetime:
    """When `search` started: its Job's start, else its end (created_at) less its duration."""
    jobs = label_error_search_jobs(project_id=search.project_id).filter(result__search=search.pk)
    began = jobs.values_list("began", flat=True).first()
    return began if began is not None else search.created_at - timedelta(seconds=search.seconds or 0)


def _version_at(project: Project, when: datetime) -> ModelVersion | None:
    """The newest version made by `when`: the one a search started then belongs to."""
    versions = ModelVersion.objects.filter(project=project, created_at__lte=when).defer("metrics")
    return versions.order_by("-number").first()


def _no_search_note(project: Project, version: ModelVersion, shown: LabelErrorSearch | None) -> str:
    said = f"v{version.number}, the active version, has no finished label-error search yet"
    pending = label_error_search_pending(project=project)
    if pending is not None:
        said += f" (job {pending.pk} is {pending.status})"
    if shown is None:
        return f"{said}."
    of = _version_at(project, _search_began(shown))
    of = f"v{of.number}" if of is not None else "no model version (it ran before the first)"
    return f"{said}: `search` is the newest one, for {of}; v{version.number} has no cross-validated estimate yet."


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


def _search_data(
    project: Project, search: LabelErrorSearch | None, limit: int | None, after: SuspectPosition | None
) -> dict | None:
    if search is None:
        return None
    version = _version_at(project, _search_began(search))
    # The open tasks are the newest search started's (training.services.label_errors): it describes them.
    wrote = latest_label_error_search(project_id=project.pk) or search
    open_tasks = ReviewTask.objects.filter(project=project, reason=ReviewTaskReason.LABEL_ERROR, done=False)
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
    details = wrote.suspects if isinstance(wrote.suspects, dict) else {}
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
        "version": None if version is None else version.number,
        **{f: getattr(search, f) for f in SEARCH_FIELDS},
        "suspects_search": wrote.pk,
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
