"""Dataset export pages: start an export (a Job with progress), list recent ones, download through a checked view.

The download view serves any job's stored file (dataset exports, model exports, batch inference results):
the file lives in the export storage, never under a public URL.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseGone
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_GET

from labeling.models import Job, JobKind, JobStatus
from labeling.permissions import Capability, project_view
from labeling.selectors.exports import FILE_JOB_KINDS, FORMATS, MIN_ANNOTATORS_HELP, ExportFilters, export_ttl
from labeling.services import exports as export_services
from labeling.services.job_limits import JOB_LIMIT_RETRY_AFTER_SECONDS, JobLimitReached

DOWNLOADABLE_KINDS = FILE_JOB_KINDS


class DatasetExportForm(forms.Form):
    format = forms.ChoiceField(
        choices=[
            ("imagefolder", "ImageFolder zip (train / val / test folders per class)"),
            ("hf", "Hugging Face imagefolder (metadata.jsonl per split)"),
            ("csv", "CSV manifest"),
            ("jsonl", "JSONL manifest"),
        ]
    )
    only_reviewed = forms.BooleanField(required=False, help_text="Only labels a reviewer accepted or corrected.")
    only_agreed = forms.BooleanField(required=False, help_text="Only items where every annotator chose the label.")
    min_annotators = forms.IntegerField(
        required=False, min_value=0, max_value=100, initial=0, help_text=MIN_ANNOTATORS_HELP
    )
    classes = forms.CharField(required=False, help_text="Comma-separated class names or paths (a/b); empty = all.")
    val_fraction = forms.FloatField(initial=0.1, min_value=0.0, max_value=0.9, help_text="Share of train for val.")

    def __init__(self, *args, multi_label: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if multi_label:
            # One class per image: the export refuses it for a multi-label project, so the form does not offer it.
            field = self.fields["format"]
            field.choices = [(k, v) for k, v in field.choices if k != "imagefolder"]
            field.help_text = "No ImageFolder: it holds one class per image, and this project is multi-label."

    def filters(self) -> ExportFilters:
        data = self.cleaned_data
        return ExportFilters(
            only_reviewed=data["only_reviewed"],
            only_agreed=data["only_agreed"],
            min_annotators=data["min_annotators"] or 0,
            classes=tuple(c.strip() for c in data["classes"].split(",") if c.strip()),
            val_fraction=data["val_fraction"] if data["val_fraction"] is not None else 0.1,
        )


def _context(request: HttpRequest, **extra) -> dict:
    ttl = export_ttl()
    return {
        "project": request.project,
        "role": request.role,
        "capabilities": request.capabilities,
        "export_ttl_hours": f"{ttl.total_seconds() / 3600:g}" if ttl else "",
        **extra,
    }


@project_view(Capability.EXPORT)
def exports(request: HttpRequest, slug: str) -> HttpResponse:
    project = request.project
    multi = project.is_multi_label
    form = DatasetExportForm(
        request.POST or None, initial={"format": "csv" if multi else "imagefolder"}, multi_label=multi
    )
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            job = export_services.dataset_export_start(
                project=project, user=request.user, fmt=form.cleaned_data["format"], filters=form.filters()
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        except JobLimitReached as exc:
            form.add_error(None, str(exc))
            status = 429
        else:
            if job.coalesced:
                messages.info(
                    request, f"The same export is already {job.get_status_display().lower()}: export #{job.number}."
                )
            else:
                messages.success(request, f"Export #{job.number} started.")
            return redirect("labeling:exports", slug=slug)
    jobs = Job.objects.filter(project=project, kind=JobKind.EXPORT_DATASET).order_by("-created_at")[:20]
    if request.method == "POST" and status == 200:
        status = 400
    response = render(
        request, "labeling/exports.html", _context(request, form=form, jobs=jobs, formats=FORMATS), status=status
    )
    if status == 429:
        response["Retry-After"] = str(JOB_LIMIT_RETRY_AFTER_SECONDS)
    return response


@require_GET
@project_view(Capability.EXPORT)
def export_job_row(request: HttpRequest, slug: str, job_id: int) -> HttpResponse:
    """One export row (status + download link), re-rendered when its progress fragment reports the end."""
    job = get_object_or_404(Job, project=request.project, pk=job_id, kind__in=DOWNLOADABLE_KINDS)
    return render(request, "labeling/exports.html#export-job", _context(request, job=job))


@require_GET
@project_view(Capability.EXPORT)
def export_download(request: HttpRequest, slug: str, job_id: int) -> HttpResponse:
    job = get_object_or_404(Job, project=request.project, pk=job_id, kind__in=DOWNLOADABLE_KINDS)
    if job.status != JobStatus.SUCCEEDED:
        raise Http404("This job has not produced a file.")
    try:
        handle, name = export_services.export_job_file(job=job)
    except export_services.ExportExpired as exc:
        return HttpResponseGone(str(exc), content_type="text/plain; charset=utf-8")
    except FileNotFoundError as exc:
        raise Http404("The file is gone from storage.") from exc
    response = FileResponse(handle, as_attachment=True, filename=name)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


urlpatterns = [
    path("p/<slug:slug>/exports/", exports, name="exports"),
    path("p/<slug:slug>/exports/<int:job_id>/row/", export_job_row, name="export_job_row"),
    path("p/<slug:slug>/exports/<int:job_id>/download/", export_download, name="export_download"),
]
