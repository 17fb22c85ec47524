"""Model export and batch inference pages: start jobs, watch their progress, download through the checked view."""

from __future__ import annotations

from pathlib import Path

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from labeling.models import Job, JobKind
from labeling.permissions import Capability, project_view, server_folder_roots
from labeling.selectors.exports import export_ttl
from labeling.services.job_limits import JOB_LIMIT_RETRY_AFTER_SECONDS, JobLimitReached
from training.ml.export_files import MULTI_LABEL_THRESHOLD
from training.models import ModelVersion
from training.selectors.model_exports import model_exports_finished
from training.services import exports, inference
from training.services.export_formats import format_promises


class InferenceForm(forms.Form):
    """A zip upload, or a server folder for those who may read one here (no folder field for anyone else)."""

    file = forms.FileField(required=False, help_text="A .zip of images.")
    folder = forms.CharField(required=False, max_length=1000, help_text="Or a folder on the server.")
    version = forms.IntegerField(required=False, min_value=1, help_text="Model version; empty = the active one.")

    def __init__(self, *args, folder_roots: list[Path], **kwargs):
        super().__init__(*args, **kwargs)
        if folder_roots:
            self.fields["folder"].help_text = "Or a folder on the server, inside " + ", ".join(map(str, folder_roots))
        else:
            del self.fields["folder"]


PAGE_KINDS = (JobKind.EXPORT_MODEL, JobKind.INFERENCE)  # the jobs this page lists


def _context(request: HttpRequest, **extra) -> dict:
    ttl = export_ttl()  # said as the dataset export page says it
    return {"project": request.project, "role": request.role, "capabilities": request.capabilities,
            "multi_label_threshold": MULTI_LABEL_THRESHOLD,
            "export_ttl_hours": f"{ttl.total_seconds() / 3600:g}" if ttl else "", **extra}  # fmt: skip


@project_view(Capability.EXPORT)
def model_exports(request: HttpRequest, slug: str) -> HttpResponse:
    project = request.project
    roots = server_folder_roots(user=request.user, project=project)
    form = InferenceForm(request.POST or None, request.FILES or None, folder_roots=roots)
    limited = False
    if request.method == "POST" and form.is_valid():
        try:
            job = inference.inference_start(
                project=project,
                user=request.user,
                upload=form.cleaned_data["file"],
                # Without the field a posted folder is still refused: the service checks the same rule.
                folder=(form.cleaned_data.get("folder") or request.POST.get("folder", "")).strip(),
                number=form.cleaned_data["version"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        except JobLimitReached as exc:
            form.add_error(None, str(exc))
            limited = True
        else:
            if job.coalesced:
                state = job.get_status_display().lower()
                messages.info(request, f"The same inference is already {state}: #{job.number}.")
            else:
                messages.success(request, f"Batch inference #{job.number} started.")
            return redirect("training:model_exports", slug=slug)
    versions = list(ModelVersion.objects.filter(project=project).order_by("-number")[:50])
    finished = model_exports_finished(project=project, versions=versions)
    for version in versions:
        version.export_job = finished.get(version.pk)  # its download offered, "Export again" to build a new one
    jobs = Job.objects.filter(project=project, kind__in=PAGE_KINDS)[:20]
    status = (429 if limited else 400) if request.method == "POST" else 200
    formats = format_promises(project.is_multi_label)
    context = _context(request, form=form, versions=versions, jobs=jobs, formats=formats)
    response = render(request, "training/exports.html", context, status=status)
    if limited:
        response["Retry-After"] = str(JOB_LIMIT_RETRY_AFTER_SECONDS)
    return response


@require_POST
@project_view(Capability.EXPORT)
def model_export_start(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    """Export a version; a finished export with the same inputs is offered instead (nothing is built) unless the
    POST says force (the "Export again" button)."""
    force = request.POST.get("force") == "1"
    try:
        job = exports.model_export_start(project=request.project, user=request.user, number=number, force=force)
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    except JobLimitReached as exc:
        messages.error(request, str(exc))
    else:
        if getattr(job, "reused", False):
            messages.info(
                request,
                f"v{number} already has an export with the same labels, images, classes and code (job #{job.number}): "
                f"nothing was started. Download it from v{number}'s row, or press Export again to build a new one.",
            )
        elif job.coalesced:
            state = job.get_status_display().lower()
            messages.info(request, f"The export of v{number} is already {state} (job #{job.number}).")
        else:
            messages.success(request, f"Export of v{number} started (job #{job.number}).")
    return redirect("training:model_exports", slug=slug)


@require_GET
@project_view(Capability.EXPORT)
def model_export_job_row(request: HttpRequest, slug: str, job_id: int) -> HttpResponse:
    """One model export or inference job as the page shows it (status, download, the measured formats), re-rendered
    when its progress fragment reports the end, so the measurements appear without a reload."""
    job = get_object_or_404(Job, project=request.project, pk=job_id, kind__in=PAGE_KINDS)
    return render(request, "training/exports.html#model-export-job", _context(request, job=job))


urlpatterns = [
    path("p/<slug:slug>/model/exports/", model_exports, name="model_exports"),
    path("p/<slug:slug>/model/exports/jobs/<int:job_id>/", model_export_job_row, name="model_export_job_row"),
    path("p/<slug:slug>/model/exports/v<int:number>/", model_export_start, name="model_export_start"),
]
