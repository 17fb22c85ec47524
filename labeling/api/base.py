"""Shared plumbing of the REST API (labeling's and training's endpoints): keyset pagination, 404 for impossible ids,
finite floats, role-dependent fields, OpenAPI component names, the project-scoped view mixin, no-store answers, and
the job serializers and answers that every "start a job" endpoint shares."""

from __future__ import annotations

import math

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound, Throttled
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from labeling.constants import MAX_ID
from labeling.models import (
    Job,
    JobStatus,
    Project,
)
from labeling.permissions import Capability, ProjectCapability, role_can
from labeling.selectors.jobs import job_errors, job_params_shown
from labeling.services.job_limits import JOB_LIMIT_RETRY_AFTER_SECONDS, JobLimitReached

PROJECT_PERMISSIONS = [IsAuthenticated, ProjectCapability]


class IdCursorPagination(CursorPagination):
    """Keyset pagination on the primary key: constant cost per page, stable under inserts."""

    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def decode_cursor(self, request):
        """DRF's decoding; a crafted position that no row's id can be is an invalid cursor (404), not a 500."""
        cursor = super().decode_cursor(request)
        position = cursor.position if cursor is not None else None
        if position is not None and not (position.isascii() and position.isdigit() and int(position) <= MAX_ID):
            raise NotFound(self.invalid_cursor_message)
        return cursor


def object_or_404(queryset, **lookup):
    """The one row `lookup` finds, or a 404 that says "No such job in this project." in the words of the model's
    verbose name (Django's own names the class: "No Job matches the given query."); an id no row can have is that
    404 too, not a database overflow."""
    model = queryset if isinstance(queryset, type) else queryset.model
    where = " in this project" if "project" in lookup else ""
    missing = NotFound(f"No such {model._meta.verbose_name}{where}.")
    for value in lookup.values():
        if isinstance(value, int) and not 0 < value <= MAX_ID:
            raise missing
    try:
        return get_object_or_404(queryset, **lookup)
    except Http404 as exc:
        raise missing from exc


class FiniteFloatField(serializers.FloatField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            raise serializers.ValidationError("A finite number is required.")
        return value


def IdField(**kwargs):
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


def sees_details(role: str | None) -> bool:
    """Resolved labels, gold items and job details: reviewer and up (None: the caller already checked more)."""
    return role is None or role_can(role, Capability.VIEW_METRICS)


class RoleFieldsSerializer(serializers.ModelSerializer):
    """Leaves out `detail_fields` when the context's `role` may not see details (see `sees_details`)."""

    detail_fields: tuple[str, ...] = ()

    def get_fields(self):
        fields = super().get_fields()
        if not sees_details(self.context.get("role", None)):
            for name in self.detail_fields:
                fields.pop(name, None)
        return fields


class NestedNameAutoSchema(AutoSchema):
    """Names nested serializers after their view (`DatasetExportStartInput`), so that every view's
    `InputSerializer` / `OutputSerializer` gets its own OpenAPI component instead of colliding. A RoleFieldsSerializer's
    detail fields are documented as optional and for whom: an annotator's answer leaves them out."""

    def _map_basic_serializer(self, serializer, direction):
        result = super()._map_basic_serializer(serializer, direction)
        details = getattr(serializer, "detail_fields", ())
        if details and isinstance(result, dict):
            if "required" in result:
                result["required"] = [name for name in result["required"] if name not in details]
                if not result["required"]:
                    del result["required"]
            for name in details:
                field = result.get("properties", {}).get(name)
                if isinstance(field, dict) and "$ref" not in field:
                    field["description"] = (
                        field.get("description", "") + " Only for reviewers, managers and ML "
                        "engineers: an annotator's answer leaves it out."
                    ).strip()
        return result

    def _get_serializer_name(self, serializer, direction, bypass_extensions=False):
        name = super()._get_serializer_name(serializer, direction, bypass_extensions)
        cls = serializer if isinstance(serializer, type) else type(getattr(serializer, "child", serializer))
        outer, dot, _ = cls.__qualname__.partition(".")
        if dot and "<locals>" not in cls.__qualname__:
            name = outer.removesuffix("Api").removesuffix("View") + name
        return name


class ProjectView:
    # Mixin: ProjectCapability sets self.project / self.role from the URL's slug. A comment, not a docstring:
    # drf-spectacular shows the nearest docstring of a view's classes as its description on /api/docs/, so
    # every API view carries its own user-facing docstring and this mixin none.

    schema = NestedNameAutoSchema()
    permission_classes = PROJECT_PERMISSIONS
    capability = Capability.VIEW
    project: Project
    role: str


def no_store(response):
    """A token must not stay in a browser's or proxy's cache."""
    response["Cache-Control"] = "no-store"
    return response


@extend_schema_field(OpenApiTypes.URI)
class DownloadUrlField(serializers.Field):
    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, job: Job):
        if job.status != JobStatus.SUCCEEDED or not (job.result or {}).get("files"):
            return None
        url = reverse("api-job-download", args=[job.project.slug, job.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class JobOutputSerializer(RoleFieldsSerializer):
    # Parameters, results, messages and errors can name server folders and files: not for annotators. The params
    # shown are shaped by labeling.selectors.jobs (no staging folder or server path of an uploaded file).
    detail_fields = ("message", "params", "result", "error_count", "errors", "download_url")
    percent = serializers.IntegerField(read_only=True)
    params = serializers.SerializerMethodField(
        help_text="What the job was asked to do: sources by the names they were given, export format and filters, "
        "model version."
    )
    result = serializers.SerializerMethodField()
    error_count = serializers.SerializerMethodField(
        help_text="How many rejected files `errors` holds (files refused at upload count from the first answer)."
    )
    errors = serializers.SerializerMethodField(help_text="The first 100 rejected files with reasons.")
    download_url = DownloadUrlField(allow_null=True)
    number = serializers.IntegerField(
        read_only=True,
        help_text="The job's number within its project (1, 2, 3 ...): what the pages and messages call it "
        '("Import #3"); `id` names it in API paths.',
    )

    class Meta:
        model = Job
        fields = ["id", "number", "kind", "status", "done", "total", "percent", "message", "params", "result",
                  "error_count", "errors", "created_at", "started_at", "finished_at", "download_url"]  # fmt: skip

    def get_params(self, job) -> dict:
        return job_params_shown(job.params)

    def get_result(self, job) -> dict:
        return {k: v for k, v in (job.result or {}).items() if k != "manifest"}

    def get_error_count(self, job) -> int:
        return len(job_errors(job=job))

    def get_errors(self, job) -> list[dict]:
        return job_errors(job=job)[:100]


@extend_schema_field(OpenApiTypes.URI)
class JobUrlField(serializers.Field):
    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, job: Job) -> str:
        url = reverse("api-job", args=[job.project.slug, job.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class JobStartedSerializer(JobOutputSerializer):
    # The import's answer (labeling.api.imports.ImportJobSerializer) has the same `url` first, so that one poller
    # serves every job a POST starts.
    url = JobUrlField(help_text="The job's API address: poll it until `status` is succeeded or failed.")
    coalesced = serializers.SerializerMethodField(
        help_text="True (HTTP 200): the same job was already queued or running; this is that job."
    )

    class Meta(JobOutputSerializer.Meta):
        fields = ["url", *JobOutputSerializer.Meta.fields, "coalesced"]

    def get_coalesced(self, job: Job) -> bool:
        # Set by the start services that reuse a job; one that never reuses (send-to-queue) sets nothing: False.
        return bool(getattr(job, "coalesced", False))


# Export, inference and label-error endpoints: a new job (202), the identical one already in flight (200), or too many
# (429). Either answer is the job as an import's 202 gives it (`url` to poll, `status`), with a Location header too.
JOB_START_RESPONSES = {
    202: JobStartedSerializer,
    200: JobStartedSerializer,
    429: OpenApiResponse(description="Too many exports or inference jobs queued or running for you or the project."),
}


def job_started_response(job: Job, request) -> Response:
    code = status.HTTP_200_OK if getattr(job, "coalesced", False) else status.HTTP_202_ACCEPTED
    answer = JobStartedSerializer(job, context={"request": request}).data
    return Response(answer, status=code, headers={"Location": answer["url"]})


def job_limit_refused(exc: JobLimitReached) -> Throttled:
    refused = Throttled(detail=str(exc))
    # Set after construction: Throttled(wait=...) would append "Expected available in 60 seconds." to the message,
    # a promise the limit cannot keep. DRF's exception handler sends `wait` as the Retry-After header.
    refused.wait = JOB_LIMIT_RETRY_AFTER_SECONDS
    return refused


class Gone(APIException):
    status_code = 410
    default_detail = "This file expired and was deleted."
    default_code = "gone"
