"""The one place where labeling reads the training app's tables (predictions, model versions, runs, searches).

The dependency runs training -> labeling: labeling never imports training, so its models are looked up by name
in the app registry, here and nowhere else in labeling/ (tests/labeling/test_training_seam.py holds that). An
absent training app means no model: every accessor returns None and every read its empty answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.apps import apps
from django.db.models import Model, OuterRef, QuerySet
from django.db.models.functions import Coalesce
from django.urls import NoReverseMatch, reverse

from labeling.models import Job, JobKind, JobStatus, Project


def training_model(name: str) -> type[Model] | None:
    """The training app's model class `name`, or None when the training app is not installed."""
    try:
        return apps.get_model("training", name)
    except LookupError:
        return None


def prediction_model() -> type[Model] | None:
    """training.Prediction (a model version's scores for one item), or None."""
    return training_model("Prediction")


def model_version_model() -> type[Model] | None:
    """training.ModelVersion (a trained checkpoint; one per project is active), or None."""
    return training_model("ModelVersion")


def training_run_model() -> type[Model] | None:
    """training.TrainingRun (one queued or running training of a project), or None."""
    return training_model("TrainingRun")


def active_model_version(project: Project | int) -> Model | None:
    """The project's (a Project or its id) active ModelVersion, or None (no active version, or no training app).

    Without its metrics, which labeling never reads: with 1,000 classes the confusion matrix in them is 3 MB of
    JSON, and decoding it cost each review verdict about 90 ms per call (reading `.metrics` still loads them).
    """
    version_model = model_version_model()
    if version_model is None:
        return None
    return version_model.objects.filter(project=project, active=True).defer("metrics").first()


def active_predictions_of_outer_item() -> QuerySet | None:
    """The active model's predictions of the item of the enclosing Item query (OuterRef("pk")): for Exists().

    None without a training app (then no item has a prediction).
    """
    model = prediction_model()
    if model is None:
        return None
    return model.objects.filter(item_id=OuterRef("pk"), model_version__active=True)


def latest_label_error_search(*, project_id: int) -> Model | None:
    """The project's latest training.LabelErrorSearch (whatever its status), or None: the newest by when it started
    (label_error_search_starts), not the last to end. It is the search whose suspects are the open label-error review
    tasks (a search that ends after a newer one leaves them to it, training.services.label_errors), and the one the
    model page and GET /api/projects/<slug>/label-errors/ give while the newest version is the active one."""
    search_model = training_model("LabelErrorSearch")
    if search_model is None:
        return None
    searches = search_model.objects.filter(project_id=project_id)
    jobs = label_error_search_jobs(project_id=project_id)
    newest_job = jobs.order_by("-began").values_list("began", flat=True).first()
    if newest_job is None:  # no search has a finished Job (stored by hand, or before Jobs): the last stored
        return searches.order_by("-created_at", "-id").first()
    # Only a search that ended after the newest Job's start can have started after it.
    starts = label_error_search_starts(project_id=project_id, ended_since=newest_job)
    newest = max(starts.items(), key=lambda pk_began: (pk_began[1], pk_began[0]), default=None)
    found = searches.filter(pk=newest[0]).first() if newest is not None else None
    return found or searches.order_by("-created_at", "-id").first()


def label_error_search_starts(*, project_id: int, ended_since: datetime) -> dict[int, datetime]:
    """When each training.LabelErrorSearch of the project stored from `ended_since` on started ({search id: start}):
    its Job's start (as the model page's estimate and the label-error API date a search; when the Job was asked for if
    it has no start), else, for a search run without a Job or whose Job has not finished yet, its end less its
    duration. {} without the training app."""
    search_model = training_model("LabelErrorSearch")
    if search_model is None:
        return {}
    ended = {
        pk: created_at - timedelta(seconds=seconds or 0)
        for pk, created_at, seconds in search_model.objects.filter(
            project_id=project_id, created_at__gte=ended_since
        ).values_list("id", "created_at", "seconds")
    }
    if not ended:
        return {}
    jobs = label_error_search_jobs(project_id=project_id).filter(result__search__in=list(ended))
    begun = {int(pk): began for pk, began in jobs.values_list("result__search", "began")}
    return {pk: begun.get(pk, end_less_duration) for pk, end_less_duration in ended.items()}


def label_error_search_jobs(*, project_id: int, result_key: str = "search") -> QuerySet[Job]:
    """The project's finished label-error searches' Jobs whose result has `result_key`, each with `began`: its start,
    else when it was asked for. This is when a search started wherever one is dated (the open suspects here, the
    model page's cross-validated estimate and the label-error API in training.selectors): the newest search is the
    newest started, not the last to end (two searches run at once after two quick rounds, and the older can end
    last), nor the last asked for (a search queued before a version and started after it judged with it)."""
    return Job.objects.filter(
        project_id=project_id, kind=JobKind.LABEL_ERRORS, status=JobStatus.SUCCEEDED, result__has_key=result_key
    ).annotate(began=Coalesce("started_at", "created_at"))


@dataclass(frozen=True)
class SuspectDecision:
    """One class decision a multi-label label-error search contradicts: the class was given (True) or not, the
    probability it is present by a model that never saw the label, and the share of the item's most similar labeled
    images that carry it."""

    class_id: int
    given: bool
    p_present: float
    near_present: float | None


def suspect_decisions(row) -> list[SuspectDecision] | None:
    """The decisions of a multi-label search's suspect row (LabelErrorSearch.suspects: {"decisions": [[class id,
    1 / 0 given, probability present, neighbours' share], ...]}), most suspicious first; None for a single-label row
    ([given class, model's class, ...])."""
    if not isinstance(row, dict):
        return None
    out = []
    for d in row.get("decisions") or []:
        if isinstance(d, list) and len(d) >= 3:
            near = float(d[3]) if len(d) > 3 and d[3] is not None else None
            out.append(SuspectDecision(int(d[0]), bool(d[1]), float(d[2]), near))
    return out


def still_contested(decisions: list[SuspectDecision], given: set[int], known: set[int]) -> list[SuspectDecision]:
    """The decisions the item's label still makes as the search saw it (a class still given, or still missing), on
    classes that still exist."""
    return [d for d in decisions if d.class_id in known and (d.class_id in given) == d.given]


def weak_class_note(row) -> str:
    """A class the multi-label search left out as too weak (a LabelErrorSearch.weak_classes row: [name, balanced
    accuracy, agreement], or, for a class that passed the balanced gate and failed the plain one, [..., agreement
    needed, share of the class's more common state, "absent" or "present"]) as the page and the command name it.
    Its figures are rounded down to 0.1 % and the one needed up, so that a class just under a gate never reads as at
    it."""
    name, balanced = row[0], _down_percent(row[1])
    if len(row) < 6:
        return f"{name} ({balanced} %)"
    return (
        f"{name} ({balanced} % on balance, but {_down_percent(row[2])} % in all, where answering “{row[5]}” "
        f"every time gets {_down_percent(row[4])} % and the search needs {_up_percent(row[3])} %)"
    )


def _down_percent(share: float) -> str:
    return f"{math.floor(float(share) * 1000) / 10:.1f}"


def _up_percent(share: float) -> str:
    return f"{math.ceil(float(share) * 1000) / 10:.1f}"


def registered_backbone_weights() -> list[dict]:
    """Backbone weights an ML engineer registered (training.BackboneWeights), by name: dicts with id, name,
    architecture and sha256. [] without the training app."""
    weights_model = training_model("BackboneWeights")
    if weights_model is None:
        return []
    return list(weights_model.objects.order_by("name").values("id", "name", "architecture", "sha256"))


def explanation_url(
    *, slug: str, item_id: int, class_id: int, version: int | None = None, ahead: list[int] | None = None
) -> str:
    """The URL of the heatmap fragment (training.views.explanations) of an item for a class: the active version's,
    or version number `version`'s; `ahead`: item ids whose top class is computed ahead. "" without the training app.
    """
    if not apps.is_installed("training"):
        return ""
    try:
        url = reverse("training:explanation", args=[slug, item_id, class_id])
    except NoReverseMatch:
        return ""
    params = {k: v for k, v in (("version", version or ""), ("ahead", ",".join(map(str, ahead or [])))) if v}
    return f"{url}?{urlencode(params)}" if params else url
