"""The Monitoring page: production volume, confidence over time, predicted-class mix against the labeled classes,
drift reports (with a progress indicator while a check runs), live accuracy on production images people labeled,
and "send to queue" (managers) with its daily automatic setting. Charts are server-side SVG (labeling.charts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from labeling import charts
from labeling.constants import MULTI_LABEL_THRESHOLD, id_from_text
from labeling.models import Job, JobKind
from labeling.permissions import Capability, project_view
from labeling.selectors.classes import class_path_normalize
from serving.charts import time_chart
from serving.forms import AlertSettingsForm
from serving.selectors.alerts import alert_settings_of
from serving.selectors.monitoring import CONFIDENCE_BINS, DEFAULT_DAYS, MAX_DAYS, MAX_SEND, Monitoring, monitoring_of
from serving.selectors.send_selection import Order, Selection
from serving.selectors.sent import send_outcome
from serving.services.drift import DriftCheckError, drift_check_request
from serving.services.drift_reference import REFERENCE_MAX
from serving.services.send_to_queue import auto_queue_set, predictions_send_to_queue

DAY_CHOICES = (7, 30, 90)
ORDER_LABELS = {
    Order.LOWEST_CONFIDENCE: "Lowest confidence first",
    Order.RANDOM: "Random sample (unbiased live accuracy)",
    Order.NEWEST: "Newest first",
    Order.MOST_DRIFTED: "Most drifted (least like the project's images; after a drift check)",
}


class SendForm(forms.Form):
    order = forms.ChoiceField(choices=list(ORDER_LABELS.items()), initial=Order.LOWEST_CONFIDENCE)
    limit = forms.IntegerField(min_value=1, max_value=MAX_SEND, initial=50, label="How many")
    top_class = forms.CharField(
        required=False,
        max_length=500,
        label="Predicted class",
        help_text="Empty: any. A class stands for itself and every class under it. Multi-label: one of the "
        "classes predicted.",
        widget=forms.TextInput(attrs={"list": "class-paths", "autocomplete": "off"}),  # the page's datalist
    )
    since = forms.DateTimeField(required=False, help_text="From (UTC), e.g. 2026-12-01 00:00. Empty: any time.")
    until = forms.DateTimeField(required=False, help_text="Until (UTC). Empty: now.")
    version = forms.IntegerField(required=False, min_value=1, label="Model version", help_text="Empty: any.")

    def selection(self) -> Selection:
        data = self.cleaned_data
        return Selection(
            order=data["order"],
            limit=data["limit"],
            top_class=class_path_normalize(data["top_class"]) if data["top_class"].strip() else "",
            since=data["since"],
            until=data["until"],
            version_number=data["version"],
        )


class AutoQueueForm(forms.Form):
    per_day = forms.IntegerField(
        min_value=0, max_value=10_000, label="Least-confident images per day", help_text="0 = off."
    )


def _days(request: HttpRequest) -> tuple[int, str]:
    """The window's days from ?days=, and what the page says about a value it could not use ("" when fine): a
    value that is not a whole number from 1 to MAX_DAYS shows the default window, and the page says so."""
    given = request.GET.get("days")
    if given is None:
        return DEFAULT_DAYS, ""
    try:
        days = int(given)
    except ValueError:
        days = 0
    if 1 <= days <= MAX_DAYS:
        return days, ""
    return (
        DEFAULT_DAYS,
        f"Days must be a whole number from 1 to {MAX_DAYS}, not “{given[:20]}”: showing {DEFAULT_DAYS}.",
    )


def _slots(figures: Monitoring) -> list:
    start = figures.since.date()
    return [start + timedelta(days=k) for k in range((figures.until.date() - start).days + 1)]


def monitoring_charts(figures: Monitoring) -> dict:
    """The page's chart geometry from the figures (labeling.charts)."""
    slots = _slots(figures)
    by_day = {d.day: d for d in figures.days}
    names = [f"{d:%m-%d}" for d in slots]
    volume = time_chart(
        names,
        y_label="predictions",
        bars=[by_day[d].count if d in by_day else None for d in slots],
        bar_name="per day",
        counts=True,
    )
    by_latency = {d.day: d for d in figures.latency}
    latency = (
        time_chart(
            names,
            y_label="ms",
            lines=[
                ("p50", [by_latency[d].p50 if d in by_latency else None for d in slots], "#4c78a8"),
                ("p95", [by_latency[d].p95 if d in by_latency else None for d in slots], "#e45756"),
            ],
            notes=[f"{by_latency[d].count} predictions" if d in by_latency else "" for d in slots],
        )
        if figures.latency
        else None
    )
    confidence = time_chart(
        names,
        y_label="confidence",
        y_range=(0.0, 1.0),
        lines=[
            ("median", [by_day[d].median if d in by_day else None for d in slots], "#4c78a8"),
            ("10th percentile", [by_day[d].p10 if d in by_day else None for d in slots], "#f58518"),
            (
                f"share < {figures.low_confidence_threshold:g}",
                [by_day[d].low_share if d in by_day else None for d in slots],
                "#e45756",
            ),
        ],
        notes=[f"{by_day[d].count} predictions" if d in by_day else "" for d in slots],
    )
    done = [r for r in figures.drift if r.p_value is not None]
    drift = None
    if done:
        drift = time_chart(
            [f"{r.window_end:%m-%d %H:%M}" for r in done],
            y_label="p-value",
            y_range=(0.0, 1.0),
            lines=[("p-value", [r.p_value for r in done], "#4c78a8")],
            threshold=("threshold", done[-1].threshold),
            marks=[r.drifted for r in done],
            notes=[f"v{r.version_number}, {r.n_production} production vs {r.n_reference} reference" for r in done],
        )
    display = [c.path for c in figures.classes]  # display paths already (serving.selectors.monitoring.class_mix)
    predicted = charts.bar_chart(
        [(name, c.predicted_share) for name, c in zip(display, figures.classes, strict=True)], title="predicted"
    )
    labeled = charts.bar_chart(
        [(name, c.labeled_share) for name, c in zip(display, figures.classes, strict=True)], title="labeled"
    )
    return {
        "volume": volume,
        "latency": latency,
        "confidence": confidence,
        "drift": drift,
        "predicted": predicted,
        "labeled": labeled,
    }


def monitoring_page(request: HttpRequest, *, send_form: SendForm | None = None, auto_form: AutoQueueForm | None = None,
                    alerts_form: AlertSettingsForm | None = None, new_secret: str = "", job: Job | None = None,
                    status: int = 200) -> HttpResponse:  # fmt: skip
    """The whole page; a view that refuses a form passes it back (with its errors) and a 400."""
    days, days_note = _days(request)
    figures = monitoring_of(project=request.project, days=days)
    alerts = alert_settings_of(project_id=request.project.pk)
    context = {
        "project": request.project,
        "role": request.role,
        "capabilities": request.capabilities,
        "figures": figures,
        "charts": monitoring_charts(figures),
        "days": days,
        "days_note": days_note,
        "day_choices": DAY_CHOICES,
        "send_form": send_form or SendForm(),
        "auto_form": auto_form or AutoQueueForm(initial={"per_day": figures.auto_queue_per_day}),
        "job": job,
        "can_send": Capability.MANAGE in request.capabilities,
        "alert_settings": alerts,
        "alerts_form": alerts_form or AlertSettingsForm.of(alerts),
        "new_secret": new_secret,
        "drift_requested": _drift_waiting(request, figures),
        "multi_label_threshold": MULTI_LABEL_THRESHOLD,
        "reference_max": REFERENCE_MAX,
        "confidence_bins": CONFIDENCE_BINS,
        "confidence_bin_width": 1 / CONFIDENCE_BINS,
    }
    return render(request, "serving/monitoring.html", context, status=status)


@require_GET
@project_view(Capability.VIEW_METRICS)
def monitoring(request: HttpRequest, slug: str) -> HttpResponse:
    job = None
    if (job_id := id_from_text(request.GET.get("job"))) is not None:
        job = Job.objects.filter(project=request.project, kind=JobKind.IMPORT, pk=job_id).first()
    return monitoring_page(request, job=job)


@require_GET
@project_view(Capability.VIEW_METRICS)
def drift_status(request: HttpRequest, slug: str) -> HttpResponse:
    """The drift section alone: polled (htmx) while a drift check runs, so its progress moves."""
    figures = monitoring_of(project=request.project, days=_days(request)[0])
    context = {"project": request.project, "figures": figures, "charts": monitoring_charts(figures),
               "drift_requested": _drift_waiting(request, figures), "reference_max": REFERENCE_MAX}  # fmt: skip
    return render(request, "serving/monitoring.html#drift", context)


def _now_ts() -> int:
    return int(timezone.now().timestamp())


def _drift_waiting(request: HttpRequest, figures: Monitoring) -> bool:
    """A check asked for (?since=<when>) that no worker has started yet: the drift card polls until its report
    appears, for a minute at most."""
    requested = id_from_text(request.GET.get("since"))
    if requested is None or figures.drift_running or not 0 <= _now_ts() - requested < 60:
        return False
    since = datetime.fromtimestamp(requested, tz=UTC)
    return not any(report.created_at >= since for report in figures.drift)  # the newest reports, loaded already


@require_POST
@project_view(Capability.VIEW_METRICS)
def drift_check_now(request: HttpRequest, slug: str) -> HttpResponse:
    """The Monitoring page's "Check drift now": a worker checks the latest predictions (the hourly check's path)."""
    try:
        drift_check_request(project=request.project)
    except DriftCheckError as exc:
        messages.error(request, f"No drift check: {str(exc).rstrip('.')}.")  # some reasons end with a full stop
        return redirect(reverse("serving:monitoring", args=[slug]) + "#drift")
    messages.success(request, "Drift check asked for: a worker runs it now, and its report appears below.")
    return redirect(reverse("serving:monitoring", args=[slug]) + f"?drift=requested&since={_now_ts()}#drift")


@require_POST
@project_view(Capability.VIEW_METRICS)
def send_to_queue(request: HttpRequest, slug: str) -> HttpResponse:
    if Capability.MANAGE not in request.capabilities:
        raise PermissionDenied("Only a manager sends production images to the labeling queue.")
    form = SendForm(request.POST)
    if not form.is_valid():
        return monitoring_page(request, send_form=form, status=400)
    try:
        job = predictions_send_to_queue(project=request.project, user=request.user, selection=form.selection())
    except ValidationError as exc:
        form.add_error(None, exc)
        return monitoring_page(request, send_form=form, status=400)
    sent, note = send_outcome(job)
    messages.success(
        request,
        f"{sent} production image{pluralize(sent)} sent to the labeling queue (import job {job.number})"
        + (f"; {note}." if note else "."),
    )
    return redirect(f"{reverse('serving:monitoring', args=[slug])}?job={job.pk}")


@require_POST
@project_view(Capability.MANAGE)
def auto_queue(request: HttpRequest, slug: str) -> HttpResponse:
    form = AutoQueueForm(request.POST)
    if not form.is_valid():
        return monitoring_page(request, auto_form=form, status=400)
    per_day = form.cleaned_data["per_day"]
    auto_queue_set(project=request.project, per_day=per_day)
    messages.success(
        request,
        f"Each day the {per_day} least-confident production images enter the queue." if per_day
        else "Production images no longer enter the queue by themselves.",
    )  # fmt: skip
    return redirect("serving:monitoring", slug=slug)


urlpatterns = [
    path("p/<slug:slug>/serving/monitoring/", monitoring, name="monitoring"),
    path("p/<slug:slug>/serving/monitoring/drift/", drift_status, name="monitoring_drift"),
    path("p/<slug:slug>/serving/monitoring/drift/check/", drift_check_now, name="monitoring_drift_check"),
    path("p/<slug:slug>/serving/monitoring/send/", send_to_queue, name="send_to_queue"),
    path("p/<slug:slug>/serving/monitoring/auto-queue/", auto_queue, name="auto_queue"),
]
