"""API: a project's jobs (list, detail, download of a finished export's file) and starting a dataset export.
An annotator sees kind, status and progress only: parameters, results and messages can hold server paths."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.base import (
    JOB_START_RESPONSES,
    FiniteFloatField,
    Gone,
    IdCursorPagination,
    JobOutputSerializer,
    ProjectView,
    job_limit_refused,
    job_started_response,
    object_or_404,
)
from labeling.models import (
    Job,
    JobKind,
    JobStatus,
)
from labeling.permissions import Capability
from labeling.selectors.exports import FORMATS, MIN_ANNOTATORS_HELP, ExportFilters
from labeling.services import exports as export_services
from labeling.services.job_limits import JobLimitReached


class JobFilterSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=JobKind.choices, required=False)
    status = serializers.ChoiceField(choices=JobStatus.choices, required=False)


class JobListApi(ProjectView, generics.ListAPIView):
    """The project's jobs (imports, exports, training, scoring, quality checks), filterable by kind and status.
    Annotators see kind, status and progress only."""

    serializer_class = JobOutputSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        filters = JobFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        qs = Job.objects.filter(project=self.project).select_related("project")
        for key, value in filters.validated_data.items():
            qs = qs.filter(**{key: value})
        return qs

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "role": self.role}

    @extend_schema(parameters=[JobFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class JobDetailApi(ProjectView, APIView):
    """One job's status and progress; `download_url` is set once an export or inference job has succeeded."""

    @extend_schema(responses={200: JobOutputSerializer})
    def get(self, request, slug: str, job_id: int):
        job = object_or_404(Job.objects.select_related("project"), project=self.project, pk=job_id)
        return Response(JobOutputSerializer(job, context={"request": request, "role": self.role}).data)


class JobDownloadApi(ProjectView, APIView):
    """The file a finished export or inference job produced (zip or CSV)."""

    capability = Capability.EXPORT

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 404: None})
    def get(self, request, slug: str, job_id: int):
        job = object_or_404(
            Job, project=self.project, pk=job_id, kind__in=[JobKind.EXPORT_DATASET, JobKind.EXPORT_MODEL,
                                                            JobKind.INFERENCE]
        )  # fmt: skip
        try:
            handle, name = export_services.export_job_file(job=job)
        except export_services.ExportExpired as exc:
            raise Gone(str(exc)) from exc
        except FileNotFoundError as exc:
            # The service's own "no file" says why; the storage's names the file's place on the server's disk.
            gone = exc.filename is not None
            raise NotFound("This job's file is no longer on the server." if gone else str(exc)) from exc
        response = FileResponse(handle, as_attachment=True, filename=name)
        response["Cache-Control"] = "private, no-store"
        return response


class DatasetExportStartApi(ProjectView, APIView):
    """Start a dataset export job; poll its `url` (also the Location header), then fetch `download_url`."""

    capability = Capability.EXPORT

    class InputSerializer(serializers.Serializer):
        format = serializers.ChoiceField(choices=FORMATS)
        only_reviewed = serializers.BooleanField(default=False)
        only_agreed = serializers.BooleanField(default=False)
        min_annotators = serializers.IntegerField(default=0, min_value=0, max_value=1000, help_text=MIN_ANNOTATORS_HELP)
        classes = serializers.ListField(
            child=serializers.CharField(max_length=500), default=list, max_length=1000,
            help_text="Class names or paths (a/b, a / b, /a/b/), each standing for itself and every class under "
            "it; empty = all.",
        )  # fmt: skip
        val_fraction = FiniteFloatField(default=0.1, min_value=0.0, max_value=0.9)

    @extend_schema(request=InputSerializer, responses={**JOB_START_RESPONSES, 400: OpenApiResponse()})
    def post(self, request, slug: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        filters = ExportFilters.from_dict({k: v for k, v in values.items() if k != "format"})
        try:
            job = export_services.dataset_export_start(
                project=self.project, user=request.user, fmt=values["format"], filters=filters
            )
        except DjangoValidationError as exc:
            raise ApiValidationError({"detail": exc.messages}) from exc
        except JobLimitReached as exc:
            raise job_limit_refused(exc) from exc
        return job_started_response(job, request)
