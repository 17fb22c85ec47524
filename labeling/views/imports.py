"""Import page (managers): browser uploads (files, zips, label CSVs), server folders, job progress.

Server folders are offered only to staff and in projects that staff granted folders to
(labeling.permissions.server_folder_roots); to anyone else the option does not exist.

Browser uploads arrive in batches (static/js/import.js) into a per-user staging folder named by a
token, then one request turns the folder into a queued import job; it names the folder dropped or picked, if one
was (labeling.services.imports.folder_classes). Without JavaScript the same form posts every file at once and gets
the same job.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from labeling.models import Job, JobKind, JobStatus
from labeling.permissions import Capability, project_view, server_folder_resolve, server_folder_roots
from labeling.services import imports as import_services
from labeling.services.imports.submit import staged_job_get
from labeling.services.imports.validation import binary_size

UPLOAD_BATCH_FILES = 200
UPLOAD_BATCH_BYTES = 64 * 1024 * 1024


def _context(request: HttpRequest, **extra) -> dict:
    project = request.project
    return {
        "project": project,
        "role": request.role,
        "capabilities": request.capabilities,
        "jobs": Job.objects.filter(project=project, kind=JobKind.IMPORT).order_by("-created_at")[:5],
        "import_roots": [str(root) for root in server_folder_roots(user=request.user, project=project)],
        "max_upload_bytes": settings.LABELLOOP_MAX_UPLOAD_BYTES,
        "max_zip_bytes": settings.LABELLOOP_MAX_ZIP_BYTES,
        # in the binary units the limits are set in, as the job's refusals say them (not filesizeformat's "50.0 MB")
        "max_upload_size": binary_size(settings.LABELLOOP_MAX_UPLOAD_BYTES),
        "max_zip_size": binary_size(settings.LABELLOOP_MAX_ZIP_BYTES),
        "batch_files": UPLOAD_BATCH_FILES,
        "batch_bytes": UPLOAD_BATCH_BYTES,
        **extra,
    }


def _queue(request: HttpRequest, job: Job) -> Job:
    """Enqueue after commit; tell the user when the broker is down (the job is then marked failed)."""
    import_services.import_job_enqueue(job=job)
    job.refresh_from_db()
    if job.status == JobStatus.FAILED:
        messages.error(request, job.message)
    return job


@project_view(Capability.MANAGE)
def import_page(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the page. POST action=upload (no-JS fallback) or action=folder: create and queue a job."""
    project = request.project
    if request.method == "POST":
        action = request.POST.get("action")
        labels_from_folders = request.POST.get("labels_from_folders") == "on"
        try:
            if action == "folder":
                folder = server_folder_resolve(
                    user=request.user, project=project, path=request.POST.get("path", "").strip()
                )
                job = import_services.import_job_create(
                    project=project,
                    created_by=request.user,
                    sources=[{"type": "folder", "path": str(folder), "name": str(folder)}],
                    labels_from_folders=labels_from_folders,
                )
            elif action == "upload":
                uploads = request.FILES.getlist("files") + request.FILES.getlist("csv")
                if not uploads:
                    raise ValidationError("Choose at least one file.")
                directory = import_services.staging_dir_create(project=project, user=request.user)
                import_services.staged_uploads_add(directory=directory, uploads=uploads)
                job = import_services.import_job_from_staging(
                    project=project, user=request.user, directory=directory, labels_from_folders=labels_from_folders
                )
            else:
                raise ValidationError("Unknown action.")
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
            # The form comes back as the user left it: their ticks and folder path, not the defaults.
            chosen = {"action": action, "labels_from_folders": labels_from_folders,
                      "path": request.POST.get("path", "")}  # fmt: skip
            return render(request, "labeling/import.html", _context(request, chosen=chosen), status=400)
        job = _queue(request, job)
        if job.status != JobStatus.FAILED:
            messages.success(request, f"Import #{job.number} queued.")
        return redirect("labeling:import", slug=slug)
    return render(request, "labeling/import.html", _context(request))


@require_POST
@project_view(Capability.MANAGE)
def import_upload(request: HttpRequest, slug: str) -> JsonResponse:
    """One batch of browser uploads into the staging folder named by `token` (a new one if absent). The page retries
    a batch lost to the network under the same `batch` key, which stages it once (staged_uploads_add)."""
    project = request.project
    try:
        token = request.POST.get("token", "")
        if token:
            directory = import_services.staging_dir_get(project=project, user=request.user, token=token)
        else:
            directory = import_services.staging_dir_create(project=project, user=request.user)
        staged = import_services.staged_uploads_add(
            directory=directory,
            uploads=request.FILES.getlist("files"),
            names=request.POST.getlist("names"),
            oversized=request.POST.getlist("oversized"),
            oversized_sizes=request.POST.getlist("oversized_size"),
            batch=request.POST.get("batch", ""),
        )
    except ValidationError as exc:
        return JsonResponse({"error": "; ".join(exc.messages)}, status=400)
    return JsonResponse({"token": directory.name, "staged": staged})


@require_POST
@project_view(Capability.MANAGE)
def import_start(request: HttpRequest, slug: str) -> HttpResponse:
    """Turn a finished staging folder into a queued job; answers with the job's progress fragment. The page's retry
    (`retry`: its first try's answer was lost) gets the job that try made, if it made one; a token used once is
    refused otherwise."""
    project = request.project
    made = request.POST.get("retry") and staged_job_get(project=project, user=request.user,
                                                         token=request.POST.get("token", ""))  # fmt: skip
    if made:
        return render(request, "labeling/_job_status.html", {"project": project, "job": made}, status=200)
    try:
        directory = import_services.staging_dir_get(
            project=project, user=request.user, token=request.POST.get("token", "")
        )
        job = import_services.import_job_from_staging(
            project=project,
            user=request.user,
            directory=directory,
            labels_from_folders=request.POST.get("labels_from_folders") in ("on", "true", "1"),
            # the folder the page saw dropped or picked: the browser put its name before every path
            dropped_folder=request.POST.get("dropped_folder", "")[:255] or None,
        )
    except ValidationError as exc:
        return JsonResponse({"error": "; ".join(exc.messages)}, status=400)
    import_services.import_job_enqueue(job=job)
    job.refresh_from_db()
    return render(request, "labeling/_job_status.html", {"project": project, "job": job}, status=201)


urlpatterns = [
    path("p/<slug:slug>/import/", import_page, name="import"),
    path("p/<slug:slug>/import/upload/", import_upload, name="import_upload"),
    path("p/<slug:slug>/import/start/", import_start, name="import_start"),
]
