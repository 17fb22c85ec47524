"""Heatmaps on the pages: an htmx fragment per (item, class) that asks for the explanation and polls until it is
ready, and the PNG overlay behind a membership check (a non-member, or another project's item, version or
explanation, gets 404 like labeling/views/media.py). The work is a worker's (training/services/explanations.py).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.views.decorators.http import require_GET

from labeling.constants import id_from_text
from labeling.models import Item
from labeling.permissions import Capability, project_view
from labeling.selectors.training_seam import explanation_url
from training.models import Explanation, ExplanationStatus, ModelVersion
from training.selectors.explanation_evidence import explanation_is_empty
from training.selectors.explanation_wait import explanation_wait
from training.services.explanations import class_index_of, explanation_request, explanations_prefetch

PENDING = (ExplanationStatus.QUEUED, ExplanationStatus.RUNNING)


def _ids(raw: str, limit: int) -> list[int]:
    """The first `limit` item ids of a comma-separated list; parts that name no row are left out."""
    return [i for part in raw.split(",") if (i := id_from_text(part.strip())) is not None][:limit]


def _version(request: HttpRequest) -> ModelVersion:
    raw = request.GET.get("version") or ""
    versions = ModelVersion.objects.filter(project=request.project).defer("metrics")  # MBs at 1,000 classes; unused
    if not raw:
        version = versions.filter(active=True).first()
    else:
        number = id_from_text(raw)
        version = versions.filter(number=number).first() if number is not None else None
    if version is None:
        raise Http404("No such model version.")
    return version


@require_GET
@project_view(Capability.VIEW)
def explanation(request: HttpRequest, slug: str, item_id: int, class_id: int) -> HttpResponse:
    """The heatmap fragment of `item_id` for LabelClass `class_id` under the active version (or ?version=N).

    The first view queues the work and answers a spinner that polls every second; later views answer the same
    row: the overlay when done, the reason when it failed. ?ahead=1,2 requests the top class of those items
    (the next ones in the user's queue) as well. A poll (?poll=1) only reads: a row failed because the broker
    was down is sent again by the next view, not by every poll. A queued row's pill says what it waits for in its
    tooltip, and in a hidden line (.explain-wait) a page may show: the project's running training run, else the gpu
    worker."""
    item = get_object_or_404(Item.objects.only("pk", "project_id"), project=request.project, pk=item_id)
    version = _version(request)
    try:
        index = class_index_of(version=version, class_id=class_id)
    except ValidationError as exc:
        raise Http404(exc.messages[0]) from exc
    polling = request.GET.get("poll") == "1"
    row = explanation_request(version=version, item=item, class_index=index, resend=not polling)
    ahead = _ids(request.GET.get("ahead", ""), 5)
    if ahead:
        explanations_prefetch(project=request.project, item_ids=[i for i in ahead if i != item.pk])
    poll = explanation_url(slug=slug, item_id=item.pk, class_id=class_id, version=version.number) + "&poll=1"
    return render(
        request,
        "training/_explanation.html",
        {
            "project": request.project,
            "explanation": row,
            "version": version,
            "pending": row.status in PENDING,
            "failed": row.status == ExplanationStatus.FAILED,
            "empty": explanation_is_empty(explanation=row),  # done, but no evidence: the overlay would draw nothing
            "poll_url": poll,
            # A queued row: what it waits for (the project's running training run, else the gpu worker); one query.
            "wait": explanation_wait(explanation=row, project=request.project),
        },
    )


@require_GET
@project_view(Capability.VIEW)
def explanation_png(request: HttpRequest, slug: str, explanation_id: int) -> HttpResponse:
    """The overlay PNG of a finished explanation of this project (404 for any other)."""
    row = get_object_or_404(
        Explanation.objects.only("png", "status"),
        pk=explanation_id,
        item__project=request.project,
        model_version__project=request.project,
        status=ExplanationStatus.DONE,
    )
    try:
        with default_storage.open(row.png, "rb") as fh:
            data = fh.read()
    except (FileNotFoundError, ValueError) as exc:
        raise Http404 from exc
    response = HttpResponse(data, content_type="image/png")
    # A row's PNG never changes (one row per version, item and class), but it is private.
    response["Cache-Control"] = "private, max-age=86400, immutable"
    response["X-Content-Type-Options"] = "nosniff"
    return response


urlpatterns = [
    path("p/<slug:slug>/explain/<int:item_id>/<int:class_id>/", explanation, name="explanation"),
    path("p/<slug:slug>/explain/png/<int:explanation_id>/", explanation_png, name="explanation_png"),
]
