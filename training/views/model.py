"""The project's model page: runs with live progress, model versions with headline metrics, "Train now"."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from labeling.models import Job, JobKind, JobStatus
from labeling.permissions import Capability, project_view
from labeling.selectors.jobs import training_run_waiting_behind
from training import selectors, services
from training.models import ModelVersion, RunMode, RunTrigger
from training.selectors import quality
from training.selectors.picks import picks_comparison
from training.services.activation import model_version_activate_rescored
from training.services.quality import pool_score_job_enqueue
from training.services.runs import RunSameModel

STRATEGY_HELP = {
    "random": "Random order (a baseline).",
    "least_confidence": "Images the model is least sure about first.",
    "margin": "Smallest gap between the two most likely classes first.",
    "entropy": "Highest predictive entropy first.",
    "bald": "Most disagreement between MC-dropout samples (BALD).",
    "kcenter": "Images farthest from everything labeled (k-center coverage).",
    "diverse_margin": (
        "Typical images of clusters nobody has labeled until there are {per_class} labels per class (or {max_labels} "
        "labels in all, whichever comes first); then the most "
        "uncertain by margin, never two near-duplicates in one batch. Once a model exists, {random_pct} % of each "
        "batch is drawn at random (compared below)."
    ),
}


def _decorate(run) -> object:
    """Display helpers: percent, duration, the numeric per-stage timings and, while queued, what it waits behind."""
    run.percent = round(100 * (run.progress or 0.0))
    run.waiting = training_run_waiting_behind(run=run)
    run.timing_rows = [
        (k, v) for k, v in (run.timings or {}).items() if k not in ("sends", "sent_at") and isinstance(v, int | float)
    ]
    end = run.finished_at
    run.duration = (end - run.started_at).total_seconds() if end and run.started_at else None
    return run


def _with_figures(version):
    """Headline figures with their intervals for the versions table (a multi-label version's accuracy is its
    subset accuracy)."""
    summary = version.summary  # its metrics without the per-class parts (selectors.model_versions)
    figs = {f.key: f for f in quality.figures(summary)}
    version.figure_accuracy = figs.get("accuracy") or figs.get("subset_accuracy")
    version.figure_macro_f1 = figs.get("macro_f1")
    version.figure_ece = figs.get("ece")
    version.intervals_recorded = quality.intervals_recorded(summary)
    no_support = summary.get("no_support") if isinstance(summary, dict) else None
    version.no_support = no_support if isinstance(no_support, list) else []
    return version


def _context(request: HttpRequest) -> dict:
    project = request.project
    in_flight = selectors.run_in_flight(project=project)
    # The headline needs no per-class part: at 1,080 classes decoding the confusion matrix cost about 90 ms a view.
    active = selectors.model_version_active(project=project, summary=True)
    active_metrics = quality.version_metrics(active, active.summary) if active is not None else None
    return {
        "project": project,
        "role": request.role,
        "capabilities": request.capabilities,
        "runs": [_decorate(r) for r in selectors.runs_recent(project=project)],
        "in_flight": in_flight,
        "versions": [_with_figures(v) for v in selectors.model_versions(project=project)],
        "active": active,
        "active_metrics": active_metrics,
        "cross_validated": quality.cross_validated_estimate(project=project, version=active)
        if active_metrics is not None and active_metrics.small_holdout
        else None,
        "small_holdout": quality.SMALL_HOLDOUT,
        "loop": selectors.loop_status(project=project),
        "strategy_help": STRATEGY_HELP.get(project.al_strategy, "").format(**services.default_strategy_figures()),
        "pseudo_threshold_percent": round(100 * services.head_pseudo_threshold()),
        "score_jobs": Job.objects.filter(project=project, kind=JobKind.SCORE).order_by("-created_at")[:3],
        "registered_weights": selectors.backbone_weights_of_project(project=project),
        "picks": picks_comparison(project=project),
    }


@require_GET
@project_view(Capability.VIEW_METRICS)
def model_page(request: HttpRequest, slug: str) -> HttpResponse:
    # The labels training leaves out are in the page's headline, not in the fragment polled every 2 s during a run.
    not_learned = selectors.labels_not_learned(project=request.project)
    return render(request, "training/model.html", {**_context(request), "not_learned": not_learned})


@require_GET
@project_view(Capability.VIEW_METRICS)
def model_live(request: HttpRequest, slug: str) -> HttpResponse:
    """The fragment htmx polls while a run is in flight (runs + versions)."""
    return render(request, "training/model.html#live", _context(request))


@require_POST
@project_view(Capability.TRAIN)
def train_now(request: HttpRequest, slug: str) -> HttpResponse:
    """Queue a run. One that would train an existing version again (no new labels, the same settings) is refused on
    a page that says so and offers "Train anyway" (force=1)."""
    mode = request.POST.get("mode") or None
    if mode not in (None, RunMode.HEAD, RunMode.FINETUNE):
        messages.error(request, f"Unknown training mode {mode!r}.")
        return redirect("training:model", slug=slug)
    force = request.POST.get("force") == "1"
    try:
        run = services.training_run_enqueue(project=request.project, trigger=RunTrigger.MANUAL, mode=mode, force=force)
    except RunSameModel as exc:
        context = {"project": request.project, "role": request.role, "capabilities": request.capabilities,
                   "message": str(exc), "version": exc.version, "mode": mode or ""}  # fmt: skip
        return render(request, "training/train_again.html", context, status=409)
    except services.RunRefused as exc:
        messages.error(request, str(exc))
        return redirect("training:model", slug=slug)
    if run is None:
        messages.error(request, "A run is already queued or running for this project; wait for it to finish.")
    else:
        messages.success(request, f"Run #{run.pk} queued.")
    return redirect("training:model", slug=slug)


@require_POST
@project_view(Capability.TRAIN)
def rescore(request: HttpRequest, slug: str) -> HttpResponse:
    """Re-score the pool with the active model (a Job the page polls)."""
    project = request.project
    if selectors.model_version_active(project=project) is None:
        messages.error(request, "There is no trained model to score with yet.")
        return redirect("training:model", slug=slug)
    job = pool_score_job_enqueue(project=project, created_by=request.user)
    job.refresh_from_db()  # the send ran on commit: a broker outage has failed the job by now
    if job.status == JobStatus.FAILED:
        messages.error(request, "The task queue is unavailable right now; try again later.")
    else:
        messages.success(request, "Scoring queued.")
    return redirect("training:model", slug=slug)


@require_POST
@project_view(Capability.TRAIN)
def version_activate(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    """Make a version active by hand: one a round held back as worse on the holdout, or an older one to go back to.
    The pool is re-scored with it (a Score job the page polls), so the labeling queue follows it."""
    version = ModelVersion.objects.filter(project=request.project, number=number).first()
    if version is None:
        messages.error(request, f"No model version v{number} in this project. Nothing changed.")
    elif version.active:
        messages.info(request, f"v{number} is already the active version.")
    else:
        job = model_version_activate_rescored(version=version, created_by=request.user)
        made = f"v{number} is now the active version: suggestions, exports and serving use it."
        if job.status == JobStatus.FAILED:
            messages.error(
                request,
                f"{made} The task queue is unavailable, so the labeling queue keeps its old order; press Re-score "
                "the pool once it is back.",
            )
        else:
            messages.success(
                request, f"{made} The labeling queue is being re-scored with it: Scoring #{job.number}, below."
            )
    return redirect("training:model", slug=slug)


urlpatterns = [
    path("p/<slug:slug>/model/", model_page, name="model"),
    path("p/<slug:slug>/model/live/", model_live, name="model_live"),
    path("p/<slug:slug>/model/train/", train_now, name="train_now"),
    path("p/<slug:slug>/model/rescore/", rescore, name="rescore"),
    path("p/<slug:slug>/model/versions/<int:number>/activate/", version_activate, name="version_activate"),
]
