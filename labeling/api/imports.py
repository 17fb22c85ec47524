"""API: import images into a project by upload (image files, zips, label CSVs): the import job the import page makes.

The same path as the page's upload (labeling.views.imports): the files are staged, one import job is created and
queued on the worker (Celery), and the answer (202) names the job to poll. The same limits and checks: an image over
LABELLOOP_MAX_UPLOAD_BYTES, a zip over LABELLOOP_MAX_ZIP_BYTES or a CSV over 50 MiB is not kept and is reported in
the job's errors, as is every file the worker refuses (not an image, corrupt, truncated, a decompression bomb, a zip
that escapes its root); a bad file never stops the rest. Managers only (Capability.MANAGE), as the page.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.base import JobOutputSerializer, JobUrlField, ProjectView
from labeling.models import JobStatus
from labeling.permissions import Capability
from labeling.services import imports as import_services


class ImportJobSerializer(JobOutputSerializer):
    url = JobUrlField(help_text="The job's API address: poll it until `status` is succeeded or failed.")

    class Meta(JobOutputSerializer.Meta):
        fields = ["url", *JobOutputSerializer.Meta.fields]


class ImportCreateApi(ProjectView, APIView):
    """Upload images to import (managers): image files and zips in `files`, label CSVs (filename,label) in `csv`.
    Answers 202 with the queued import job; poll its `url` (GET /api/projects/<slug>/jobs/<id>/) for progress and,
    once it has ended, the imported, duplicate and rejected counts and each rejected file with its reason."""

    capability = Capability.MANAGE
    parser_classes = [MultiPartParser]

    class InputSerializer(serializers.Serializer):
        files = serializers.ListField(
            child=serializers.FileField(allow_empty_file=True), required=False,
            help_text="Images (JPEG, PNG, WebP, GIF, BMP, TIFF) and .zip archives; repeat the field for each file.",
        )  # fmt: skip
        csv = serializers.ListField(
            child=serializers.FileField(allow_empty_file=True), required=False,
            help_text='Label CSVs: filename,label ("a/b" for a class under a, "a;b" for several in a multi-label '
            "project).",
        )  # fmt: skip
        names = serializers.ListField(
            child=serializers.CharField(max_length=500), required=False,
            help_text="The relative path of each of `files`, in order (cat/1.jpg), where it matters: multipart file "
            "names lose their folders, and with labels_from_folders every folder is a level of the class "
            "(animals/cat/1.jpg: animals / cat), a top folder all files share included. Folders are separated by /; "
            "a name with `..` (between / or \\), a leading / or drive letter, or a NUL refuses the request (400); "
            "a file whose name holds a backslash is not imported, and the job names it with the reason.",
        )  # fmt: skip
        labels_from_folders = serializers.BooleanField(
            default=False,
            help_text="Folder names are classes (cat/1.jpg), nested folders a hierarchy; in zips too, but for a zip's "
            "one top folder holding only folders (pets.zip holding pets/cat/1.jpg), unless the project has a root "
            "class of that name. The finished job's result.folder_classes says which folder became which class.",
        )

    @extend_schema(
        request={"multipart/form-data": InputSerializer},
        responses={
            202: ImportJobSerializer,
            400: OpenApiResponse(
                description="No file, names not matching files, or a name that leaves its folder (`..`, absolute, or "
                "a NUL; each named with its index); nothing was created."
            ),
            503: OpenApiResponse(ImportJobSerializer, description="The task queue is unreachable: the job failed."),
        },
    )
    def post(self, request, slug: str):
        # Before the serializer: it would refuse a NUL by index alone, and the refusal names each bad entry in full.
        # Files come as multipart only; another body (JSON) is left to the serializer, which says what is missing.
        try:
            if hasattr(request.data, "getlist"):
                import_services.upload_names_check(names=request.data.getlist("names"))
        except DjangoValidationError as exc:
            raise ApiValidationError({"names": exc.messages}) from exc
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        files = request.FILES.getlist("files")
        names = data.validated_data.get("names") or None
        if names is not None and len(names) != len(files):
            raise ApiValidationError({"names": [f"Give one name for each of the {len(files)} files, in order."]})
        uploads = files + request.FILES.getlist("csv")
        if not uploads:
            raise ApiValidationError({"files": ["Choose at least one file."]})
        if names is not None:
            names += [upload.name for upload in request.FILES.getlist("csv")]
        try:
            directory = import_services.staging_dir_create(project=self.project, user=request.user)
            import_services.staged_uploads_add(directory=directory, uploads=uploads, names=names)
            job = import_services.import_job_from_staging(
                project=self.project,
                user=request.user,
                directory=directory,
                labels_from_folders=data.validated_data["labels_from_folders"],
            )
        except DjangoValidationError as exc:
            raise ApiValidationError({"files": exc.messages}) from exc
        import_services.import_job_enqueue(job=job)
        job.refresh_from_db()
        # A job that failed before it started: the broker was unreachable (import_job_enqueue says so in its message).
        unqueued = job.status == JobStatus.FAILED and job.started_at is None
        code = status.HTTP_503_SERVICE_UNAVAILABLE if unqueued else status.HTTP_202_ACCEPTED
        answer = ImportJobSerializer(job, context={"request": request, "role": self.role}).data
        return Response(answer, status=code, headers={"Location": answer["url"]})
