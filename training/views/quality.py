"""Model quality pages: per-version holdout metrics, confusion matrix with item drill-down, reliability diagram,
learning curve, side-by-side comparison of two versions, and the buttons that start the label-error search and
the per-item holdout predictions. These live in training because labeling never imports training.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from labeling import charts
from labeling.constants import id_from_text
from labeling.models import JobStatus
from labeling.permissions import Capability, may_search_label_errors, project_view
from labeling.selectors.classes import DISPLAY_SEPARATOR
from labeling.selectors.training_seam import explanation_url
from labeling.services.dispatch import BROKER_DOWN
from training.models import ModelVersion
from training.selectors import quality
from training.services.quality import (
    confusion_item_review_open,
    holdout_predictions_request,
    label_errors_job_enqueue,
)

# With many classes a bar chart has a card to itself: room for the names of a deep taxonomy.
WIDE_BARS = {"width": 760, "max_label_width": 380}


def _context(request: HttpRequest, **extra) -> dict:
    return {"project": request.project, "role": request.role, "capabilities": request.capabilities, **extra}


def _version(request: HttpRequest, param: str, default: ModelVersion | None) -> ModelVersion | None:
    raw = request.GET.get(param)
    if not raw:
        return default
    try:
        number = int(raw)
    except ValueError as exc:
        raise Http404("No such version.") from exc
    version = ModelVersion.objects.filter(project=request.project, number=number).first()
    if version is None:
        raise Http404("No such version.")
    return version


def _learning_chart(project) -> dict | None:
    curve = quality.learning_curve(project)
    if not any(p.accuracy is not None and p.accuracy.value is not None for p in curve):
        return None

    def line(key: str) -> list[tuple[int, float | None]]:
        return [(p.labels, getattr(p, key).value if getattr(p, key) else None) for p in curve]

    # A multi-label version's accuracy is its subset accuracy (every class of the item right).
    accuracy = "holdout subset accuracy" if project.is_multi_label else "holdout accuracy"
    return charts.line_chart(
        [(accuracy, line("accuracy"), "#4c78a8"), ("macro-F1", line("macro_f1"), "#f58518")],
        x_label="labels used for training",
        y_label="holdout score",
        x_integer=True,
        # The accuracy's 95 % interval: on a small holdout the band is what tells progress from a lucky draw.
        bands=[
            (
                f"{accuracy}, 95 % interval",
                [(p.labels, p.accuracy.low, p.accuracy.high) if p.accuracy else (p.labels, None, None) for p in curve],
                "#4c78a8",
            )
        ],
    )


def _split_path(path: str) -> dict:
    """A class path as (parents, leaf): tables show the leaf first and its parents small beneath."""
    parents, _, leaf = path.rpartition(DISPLAY_SEPARATOR)
    return {"full": path, "leaf": leaf, "parents": parents}


def _cell_href(slug: str, version: ModelVersion):
    base = reverse("training:model_confusion_items", args=[slug])
    return lambda i, j: f"{base}?v={version.number}&t={i}&p={j}"


def _confusion_rows(slug: str, version: ModelVersion, pairs: list[quality.Confusion]) -> list:
    """Confused pairs of the holdout (quality.confusions: largest first) as the tables show them."""
    href = _cell_href(slug, version)
    return [
        {
            "c": c,
            "href": href(c.true_index, c.pred_index),
            "true": _split_path(c.true_name),
            "pred": _split_path(c.pred_name),
        }
        for c in pairs
    ]


def _many(m: quality.VersionMetrics) -> bool:
    return max(len(m.names), len(m.per_class)) > quality.MANY_CLASSES


def _heatmap(slug: str, version: ModelVersion, m: quality.VersionMetrics) -> dict:
    if _many(m):
        return charts.heatmap(
            m.confusion, m.names, href=_cell_href(slug, version), cell=14, label_width=230, font_size=10, values=False
        )
    return charts.heatmap(m.confusion, m.names, href=_cell_href(slug, version))


@require_GET
@project_view(Capability.VIEW_METRICS)
def model_quality(request: HttpRequest, slug: str) -> HttpResponse:
    project = request.project
    versions = quality.versions_of(project)
    default = next((v for v in versions if v.active), versions[-1] if versions else None)
    version = _version(request, "v", default)
    context = _context(request, versions=versions, version=version, learning_chart=_learning_chart(project))
    if version is not None:
        m = quality.version_metrics(version)
        context["cross_validated"] = (
            quality.cross_validated_estimate(project=project, version=version) if m.small_holdout else None
        )
        context["small_holdout"] = quality.SMALL_HOLDOUT
        many = _many(m)
        pairs = quality.confusions(m.confusion, m.names) if m.confusion and many else []
        f1_rows = quality.lowest_f1(m.per_class, quality.WORST_CLASSES) if many else m.per_class
        context.update(
            m=m,
            many=many,
            top_confusions=_confusion_rows(slug, version, pairs[: quality.TOP_CONFUSIONS]),
            # With many classes the full list and the matrix are fetched when opened (model_quality_part).
            confused_pairs=len(pairs),
            heatmap=_heatmap(slug, version, m) if m.confusion and not many else None,
            reliability=charts.reliability_diagram(m.reliability) if m.reliability else None,
            f1_chart=charts.bar_chart(
                [(c.name, c.f1) for c in f1_rows],
                title=f"{len(f1_rows)} lowest F1 of {len(m.per_class)} classes" if many else "F1 per class",
                **WIDE_BARS if many else {},
            )
            if m.per_class
            else None,
            holdout_predictions=quality.holdout_prediction_count(version),
            holdout_labeled=quality.items_labeled_in_holdout(project),
            can_train=Capability.TRAIN in request.capabilities,
        )
    return render(request, "training/quality.html", context)


@require_GET
@project_view(Capability.VIEW_METRICS)
def model_quality_part(request: HttpRequest, slug: str) -> HttpResponse:
    """What a many-class quality page fetches when it is opened: every confused pair (`part=confusions`), the full
    confusion matrix (`part=matrix`) or every class's figures (`part=classes`) of version `v`."""
    version = _version(request, "v", None)
    part = request.GET.get("part", "")
    if version is None or part not in ("confusions", "matrix", "classes"):
        raise Http404("Pick a version and a part.")
    m = quality.version_metrics(version)
    if part == "classes":
        return render(request, "training/quality.html#per-class-table", _context(request, m=m))
    if not m.confusion:
        raise Http404("This version has no confusion matrix.")
    if part == "confusions":
        context = _context(
            request, all_confusions=_confusion_rows(slug, version, quality.confusions(m.confusion, m.names))
        )
        return render(request, "training/quality.html#all-confusions-table", context)
    context = _context(request, heatmap=_heatmap(slug, version, m))
    return render(request, "training/quality.html#full-matrix-chart", context)


@require_GET
@project_view(Capability.VIEW_METRICS)
def model_compare(request: HttpRequest, slug: str) -> HttpResponse:
    project = request.project
    versions = quality.versions_of(project)
    a = _version(request, "a", versions[-2] if len(versions) >= 2 else (versions[0] if versions else None))
    b = _version(request, "b", versions[-1] if versions else None)
    context = _context(request, versions=versions, a=a, b=b)
    if a is not None and b is not None:
        ma, mb = quality.version_metrics(a), quality.version_metrics(b)
        fa = {c.name: c for c in ma.per_class}
        fb = {c.name: c for c in mb.per_class}
        rows = []
        for name in list(dict.fromkeys([*fa, *fb])):
            ca, cb = fa.get(name), fb.get(name)
            f1a, f1b = (ca.f1 if ca else None), (cb.f1 if cb else None)
            rows.append(
                {
                    "name": name,
                    "a": ca,
                    "b": cb,
                    "delta": (f1b - f1a) if f1a is not None and f1b is not None else None,
                }
            )
        summary = []
        for label, key in (("Accuracy", "accuracy"), ("Macro-F1", "macro_f1"), ("ROC-AUC", "roc_auc"), ("ECE", "ece")):
            va, vb = getattr(ma, key), getattr(mb, key)
            summary.append(
                {
                    "label": label,
                    "a": va,
                    "b": vb,
                    "fa": ma.figure(key),
                    "fb": mb.figure(key),
                    "delta": (vb - va) if va is not None and vb is not None else None,
                }
            )
        many = len(rows) > quality.MANY_CLASSES
        # With many classes the chart shows the largest changes either way; the table below has them all.
        chart_rows = (
            sorted((r for r in rows if r["delta"] is not None), key=lambda r: (-abs(r["delta"]), r["name"]))[
                : quality.WORST_CLASSES
            ]
            if many
            else rows
        )
        context.update(
            ma=ma,
            mb=mb,
            rows=rows,
            many=many,
            summary=summary,
            delta_chart=charts.bar_chart(
                [(r["name"], r["delta"]) for r in chart_rows],
                lo=-1.0,
                hi=1.0,
                title=f"{len(chart_rows)} largest F1 changes of {len(rows)} classes" if many else "F1 change per class",
                **WIDE_BARS if many else {},
            )
            if chart_rows
            else None,
        )
    return render(request, "training/quality_compare.html", context)


@require_GET
@project_view(Capability.VIEW_METRICS)
def model_confusion_items(request: HttpRequest, slug: str) -> HttpResponse:
    version = _version(request, "v", None)
    if version is None:
        raise Http404("Pick a version.")
    try:
        true_index, pred_index = int(request.GET.get("t", "")), int(request.GET.get("p", ""))
    except ValueError as exc:
        raise Http404("Pick a cell.") from exc
    names = quality.version_metrics(version).names
    if not (0 <= true_index < len(names) and 0 <= pred_index < len(names)):
        raise Http404("No such cell.")
    predictions, population = quality.confusion_items(version=version, true_index=true_index, pred_index=pred_index)
    m = quality.version_metrics(version)
    holdout_count = m.confusion[true_index][pred_index] if m.confusion else None
    # Over each item: where this version sees the class it predicted (its heatmap, computed by a worker).
    pred_class = version.class_ids[pred_index] if pred_index < len(version.class_ids) else None
    shown = list(predictions[:300])
    explained = [
        (p, explanation_url(slug=slug, item_id=p.item_id, class_id=pred_class, version=version.number))
        if pred_class is not None
        else (p, "")
        for p in shown
    ]
    # A reviewer opens each item's review card from its tile (its open task, else one the button opens).
    may_review = Capability.REVIEW in request.capabilities
    ids = [p.item_id for p in shown]
    tasks = quality.open_review_tasks(project=request.project, item_ids=ids) if may_review else {}
    return render(
        request,
        "training/quality_confusion_items.html",
        _context(
            request,
            version=version,
            true_name=names[true_index],
            pred_name=names[pred_index],
            explained=[(p, url, tasks.get(p.item_id)) for p, url in explained],
            may_review=may_review,
            total=predictions.count(),
            population=population,
            holdout_count=holdout_count,
        ),
    )


@require_POST
@project_view(Capability.REVIEW)
def confusion_item_review(request: HttpRequest, slug: str) -> HttpResponse:
    """Open the review card of one item picked from the confusion drill-down of version `v` (its open review task,
    else a new one: confusion_item_review_open)."""
    number, item_id = id_from_text(request.POST.get("v")), id_from_text(request.POST.get("item"))
    version = ModelVersion.objects.filter(project=request.project, number=number).first() if number else None
    if version is None or item_id is None:
        raise Http404("Pick a version and an item.")
    task = confusion_item_review_open(project=request.project, version=version, item_id=item_id)
    if task is None:
        raise Http404(f"v{version.number} has no prediction of item #{item_id} in this project.")
    return redirect(f"{reverse('labeling:review', args=[slug])}?reason={task.reason}&task={task.pk}")


@require_POST
@project_view(Capability.VIEW_METRICS)
def label_errors_find(request: HttpRequest, slug: str) -> HttpResponse:
    """Start the label-error search (reviewers, managers and ML engineers)."""
    if not may_search_label_errors(request.role):
        raise PermissionDenied("Your role in this project does not allow this.")
    job = label_errors_job_enqueue(project=request.project, created_by=request.user)
    job.refresh_from_db()
    if job.status == JobStatus.FAILED:
        messages.error(request, f"Label-error search #{job.number} could not start. {job.message}")
    else:
        messages.success(request, f"Label-error search #{job.number} queued.")
    return redirect("labeling:review_label_errors", slug=slug)


@require_POST
@project_view(Capability.TRAIN)
def holdout_predict(request: HttpRequest, slug: str) -> HttpResponse:
    """Store per-item holdout predictions of one version so confusion cells list exactly the holdout items."""
    try:
        number = int(request.POST.get("v", ""))
    except ValueError as exc:
        raise Http404("No such version.") from exc
    version = ModelVersion.objects.filter(project=request.project, number=number).first()
    if version is None:
        raise Http404("No such version.")
    if holdout_predictions_request(project=request.project, version=version):
        messages.success(request, f"Predicting the holdout with v{version.number}; reload in a moment.")
    else:
        messages.error(request, f"The holdout of v{version.number} is not being predicted. {BROKER_DOWN}")
    return redirect(f"{reverse('training:model_quality', args=[slug])}?v={version.number}")


urlpatterns = [
    path("p/<slug:slug>/model/quality/", model_quality, name="model_quality"),
    path("p/<slug:slug>/model/quality/part/", model_quality_part, name="model_quality_part"),
    path("p/<slug:slug>/model/compare/", model_compare, name="model_compare"),
    path("p/<slug:slug>/model/confusion/", model_confusion_items, name="model_confusion_items"),
    path("p/<slug:slug>/model/confusion/review/", confusion_item_review, name="confusion_item_review"),
    path("p/<slug:slug>/model/holdout-predict/", holdout_predict, name="holdout_predict"),
    path("p/<slug:slug>/label-errors/find/", label_errors_find, name="label_errors_find"),
]
