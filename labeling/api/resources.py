"""REST API resources for ML staff: projects, classes, items, annotations, reviews, jobs, dataset exports, tokens.

Every endpoint goes through labeling.permissions.ProjectCapability (another project's objects -> 404, a role
without the capability -> 403, anonymous -> 401). Big lists use keyset (cursor) pagination ordered by id, so
page 1,000 of 100k items costs what page 1 costs. One APIView per write; generics for read-only listings.

What a role sees: an annotator gets what labeling needs (items without their labels, state or gold flag; jobs without
parameters, results or messages, which can hold server paths); resolved labels, gold items and job details are for
roles with Capability.VIEW_METRICS (reviewer, manager, ML engineer). Token answers are never cached, and the
password exchange is throttled (REST_FRAMEWORK's DEFAULT_THROTTLE_RATES, scope "token").
"""

from __future__ import annotations

import math

from django.apps import apps
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Exists, OuterRef, Prefetch, Q
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import APIException, NotFound, Throttled
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from labeling.api.tokens import token_get, token_get_or_replace, token_replace
from labeling.constants import BUNDLED_BACKBONE, STRATEGY_CHOICES
from labeling.models import (
    Annotation,
    Item,
    ItemState,
    Job,
    JobKind,
    JobStatus,
    LabelClass,
    Membership,
    Project,
    Review,
    Split,
)
from labeling.permissions import CAPABILITIES, Capability, ProjectCapability, role_can
from labeling.selectors.exports import FORMATS, ExportFilters
from labeling.services import exports as export_services
from labeling.services import projects as project_services
from labeling.services.job_limits import JobLimitReached

MAX_ID = 2**63 - 1
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
    """get_object_or_404 that answers 404 (not a database overflow) for ids no row can have."""
    for value in lookup.values():
        if isinstance(value, int) and not 0 < value <= MAX_ID:
            raise NotFound
    return get_object_or_404(queryset, **lookup)


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
    `InputSerializer` / `OutputSerializer` gets its own OpenAPI component instead of colliding."""

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


# --------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------


def no_store(response):
    """A token must not stay in a browser's or proxy's cache."""
    response["Cache-Control"] = "no-store"
    return response


class TokenObtainApi(ObtainAuthToken):
    """Exchange a username and password for the user's API token (made on first use, and anew after a password
    change). Throttled per client address (429 with Retry-After)."""

    schema = NestedNameAutoSchema()
    permission_classes = []
    authentication_classes = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token"

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()

    @extend_schema(request=ObtainAuthToken.serializer_class, responses={200: OutputSerializer}, auth=[])
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token = token_get_or_replace(user=serializer.validated_data["user"])
        return no_store(Response({"token": token.key}))


class MyTokenApi(APIView):
    """Show the signed-in user's token (GET; null when there is none, GET never makes one) or replace it with a new
    one (POST)."""

    schema = NestedNameAutoSchema()
    permission_classes = [IsAuthenticated]
    throttle_scope = "token"

    def get_throttles(self):
        # Only making tokens is throttled; reading yours is not.
        return [ScopedRateThrottle()] if self.request.method == "POST" else []

    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        token = serializers.CharField(allow_null=True)
        header = serializers.CharField(allow_null=True, help_text="What to send in the Authorization header.")

    def _answer(self, request, key: str | None) -> Response:
        data = {"username": request.user.get_username(), "token": key, "header": f"Token {key}" if key else None}
        return no_store(Response(self.OutputSerializer(data).data))

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request):
        token = token_get(user=request.user)
        return self._answer(request, token.key if token else None)

    @extend_schema(request=None, responses={200: OutputSerializer})
    def post(self, request):
        return self._answer(request, token_replace(user=request.user).key)


# --------------------------------------------------------------------------------------------
# Projects and classes
# --------------------------------------------------------------------------------------------


class ProjectOutputSerializer(serializers.ModelSerializer):
    al_strategy = serializers.ChoiceField(
        choices=STRATEGY_CHOICES,
        read_only=True,
        help_text="Active-learning strategy that orders the queue: "
        + "; ".join(f"{value}: {label}" for value, label in STRATEGY_CHOICES),
    )
    backbone = serializers.CharField(
        read_only=True,
        help_text=f"Pretrained timm backbone; {BUNDLED_BACKBONE} runs offline with bundled weights, others need "
        "hub or checkpoint weights.",
    )
    role = serializers.SerializerMethodField()
    capabilities = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "slug", "name", "task_type", "instructions", "annotations_per_item", "review_sample_rate",
                  "holdout_fraction", "al_strategy", "retrain_every", "min_labels_to_train", "backbone", "image_size",
                  "flip_average", "training_mode", "created_at", "role", "capabilities"]  # fmt: skip

    def _role(self, obj) -> str:
        roles = self.context.get("roles") or {}
        return roles.get(obj.pk, "")

    def get_role(self, obj) -> str:
        return self._role(obj)

    def get_capabilities(self, obj) -> list[str]:
        return sorted(CAPABILITIES.get(self._role(obj), frozenset()))


class ProjectListApi(generics.ListAPIView):
    """Projects the user belongs to, with their role in each."""

    permission_classes = PROJECT_PERMISSIONS
    serializer_class = ProjectOutputSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        return Project.objects.filter(memberships__user=self.request.user).order_by("id")

    def get_serializer_context(self):
        roles = dict(Membership.objects.filter(user=self.request.user).values_list("project_id", "role"))
        return {**super().get_serializer_context(), "roles": roles}


class ProjectDetailApi(ProjectView, APIView):
    """One project: its settings, your role in it and what that role may do."""

    @extend_schema(responses={200: ProjectOutputSerializer})
    def get(self, request, slug: str):
        context = {"roles": {self.project.pk: self.role}}
        return Response(ProjectOutputSerializer(self.project, context=context).data)


class ClassOutputSerializer(serializers.ModelSerializer):
    path = serializers.CharField(read_only=True)

    class Meta:
        model = LabelClass
        fields = ["id", "name", "path", "parent", "hotkey", "color", "order", "archived"]


class ClassListApi(ProjectView, generics.ListAPIView):
    """The project's label taxonomy (archived classes included, flagged)."""

    serializer_class = ClassOutputSerializer
    pagination_class = None

    def get_queryset(self):
        return LabelClass.objects.filter(project=self.project).select_related("parent__parent__parent")


class ClassCreateApi(ProjectView, APIView):
    """Add a label class (managers); `parent` nests it in the taxonomy; without `hotkey` a free one is chosen."""

    capability = Capability.MANAGE

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        parent = IdField(required=False, allow_null=True)
        hotkey = serializers.CharField(max_length=1, required=False, allow_blank=True)
        color = serializers.RegexField(r"^#[0-9a-fA-F]{6}$", required=False)

    @extend_schema(request=InputSerializer, responses={201: ClassOutputSerializer})
    def post(self, request, slug: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        parent = None
        if values.get("parent"):
            parent = LabelClass.objects.filter(project=self.project, pk=values["parent"]).first()
            if parent is None:
                raise ApiValidationError({"parent": "No such class in this project."})
        try:
            label_class = project_services.label_class_create(
                project=self.project,
                name=values["name"],
                parent=parent,
                hotkey=values.get("hotkey") or None,
                color=values.get("color", ""),
            )
        except DjangoValidationError as exc:
            raise ApiValidationError({"detail": exc.messages}) from exc
        return Response(ClassOutputSerializer(label_class).data, status=status.HTTP_201_CREATED)


# --------------------------------------------------------------------------------------------
# Items
# --------------------------------------------------------------------------------------------


class ItemOutputSerializer(RoleFieldsSerializer):
    detail_fields = ("state", "priority", "annotation_count", "is_gold", "labels", "label_source")
    labels = serializers.SerializerMethodField(
        help_text="Class ids of the resolved label (empty when unlabeled). This and state, priority, annotation_count, "
        "is_gold and label_source are left out for annotators."
    )
    label_source = serializers.SerializerMethodField()
    original_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Item
        fields = ["id", "original_name", "sha256", "phash", "width", "height", "format", "split", "state",
                  "priority", "annotation_count", "is_gold", "created_at", "labels", "label_source", "original_url",
                  "thumbnail_url"]  # fmt: skip

    def _resolved(self, obj):
        try:
            return obj.resolved
        except Item.resolved.RelatedObjectDoesNotExist:
            return None

    def get_labels(self, obj) -> list[int]:
        resolved = self._resolved(obj)
        return sorted(c.pk for c in resolved.classes.all()) if resolved else []

    def get_label_source(self, obj) -> str:
        resolved = self._resolved(obj)
        return resolved.source if resolved else ""

    def _url(self, obj, kind: str) -> str:
        url = reverse("labeling:item_media", args=[self.context["slug"], obj.pk, kind])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url

    def get_original_url(self, obj) -> str:
        return self._url(obj, "original")

    def get_thumbnail_url(self, obj) -> str:
        return self._url(obj, "thumb")


class ItemFilterSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=ItemState.choices, required=False)
    split = serializers.ChoiceField(choices=Split.choices, required=False)
    label_class = IdField(required=False, help_text="Items whose resolved label includes this class id.")
    priority_min = FiniteFloatField(required=False)
    priority_max = FiniteFloatField(required=False)
    has_prediction = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="Has a prediction from the active model."
    )
    confidence_min = FiniteFloatField(required=False, help_text="Active model's confidence, inclusive.")
    confidence_max = FiniteFloatField(required=False)
    is_gold = serializers.BooleanField(required=False, allow_null=True, default=None)


def _active_predictions():
    # Looked up by name: labeling never imports training (the dependency runs the other way).
    prediction = apps.get_model("training", "Prediction")
    return prediction.objects.filter(item_id=OuterRef("pk"), model_version__active=True)


def items_filter(*, project: Project, filters: dict):
    """Items of a project narrowed by the API's filters (indexed columns; predictions by EXISTS)."""
    qs = Item.objects.filter(project=project)
    if filters.get("state"):
        qs = qs.filter(state=filters["state"])
    if filters.get("split"):
        qs = qs.filter(split=filters["split"])
    if filters.get("label_class"):
        qs = qs.filter(resolved__classes=filters["label_class"])
    if filters.get("priority_min") is not None:
        qs = qs.filter(priority__gte=filters["priority_min"])
    if filters.get("priority_max") is not None:
        qs = qs.filter(priority__lte=filters["priority_max"])
    if filters.get("is_gold") is not None:
        qs = qs.filter(is_gold=filters["is_gold"])
    confidence = Q()
    if filters.get("confidence_min") is not None:
        confidence &= Q(confidence__gte=filters["confidence_min"])
    if filters.get("confidence_max") is not None:
        confidence &= Q(confidence__lte=filters["confidence_max"])
    if confidence:
        qs = qs.filter(Exists(_active_predictions().filter(confidence)))
    if filters.get("has_prediction") is not None:
        exists = Exists(_active_predictions())
        qs = qs.filter(exists if filters["has_prediction"] else ~exists)
    return qs


class ItemListApi(ProjectView, generics.ListAPIView):
    """Items with filters; keyset-paginated by id (follow `next`). Annotators may filter by split only (others: 403)."""

    serializer_class = ItemOutputSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        filters = ItemFilterSerializer(data=self.request.query_params)
        if not sees_details(self.role):
            refused = sorted(set(filters.fields) & set(self.request.query_params) - {"split"})
            if refused:
                raise PermissionDenied(f"Your role may not filter items by {', '.join(refused)}.")
        filters.is_valid(raise_exception=True)
        return items_filter(project=self.project, filters=filters.validated_data).prefetch_related(
            Prefetch("resolved__classes", queryset=LabelClass.objects.only("id"))
        )

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "slug": self.project.slug, "role": self.role}

    @extend_schema(parameters=[ItemFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ItemDetailApi(ProjectView, APIView):
    """One item: file metadata, split, state, queue priority, resolved label and media URLs."""

    @extend_schema(responses={200: ItemOutputSerializer})
    def get(self, request, slug: str, item_id: int):
        item = object_or_404(Item.objects.select_related("resolved"), project=self.project, pk=item_id)
        context = {"request": request, "slug": slug, "role": self.role}
        return Response(ItemOutputSerializer(item, context=context).data)


# --------------------------------------------------------------------------------------------
# Annotations and reviews (read-only here; writes are the queue API's)
# --------------------------------------------------------------------------------------------


class AnnotationOutputSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username")
    classes = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Annotation
        fields = ["id", "item", "user", "classes", "skipped", "undoes", "seconds_spent", "created_at"]


class AnnotationFilterSerializer(serializers.Serializer):
    item = IdField(required=False)
    user = serializers.CharField(required=False, max_length=150, help_text="username")
    created_after = serializers.DateTimeField(required=False)


class AnnotationListApi(ProjectView, generics.ListAPIView):
    """Every annotation row (append-only history: undo rows point at what they withdraw)."""

    capability = Capability.VIEW_METRICS
    serializer_class = AnnotationOutputSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        filters = AnnotationFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        qs = Annotation.objects.filter(item__project=self.project).select_related("user").prefetch_related("classes")
        if f.get("item"):
            qs = qs.filter(item_id=f["item"])
        if f.get("user"):
            qs = qs.filter(user__username=f["user"])
        if f.get("created_after"):
            qs = qs.filter(created_at__gt=f["created_after"])
        return qs

    @extend_schema(parameters=[AnnotationFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ReviewOutputSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.username")
    item = serializers.IntegerField(source="annotation.item_id")
    corrected_classes = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Review
        fields = ["id", "annotation", "item", "reviewer", "verdict", "corrected_classes", "comment", "created_at"]


class ReviewListApi(ProjectView, generics.ListAPIView):
    """Every review verdict (accept, reject, correct) with the reviewer and any corrected classes."""

    capability = Capability.VIEW_METRICS
    serializer_class = ReviewOutputSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        return (
            Review.objects.filter(annotation__item__project=self.project)
            .select_related("reviewer", "annotation")
            .prefetch_related("corrected_classes")
        )


# --------------------------------------------------------------------------------------------
# Jobs and dataset exports
# --------------------------------------------------------------------------------------------


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
    # Parameters, results, messages and errors can name server folders and files: not for annotators.
    detail_fields = ("message", "params", "result", "error_count", "errors", "download_url")
    percent = serializers.IntegerField(read_only=True)
    result = serializers.SerializerMethodField()
    error_count = serializers.SerializerMethodField()
    errors = serializers.SerializerMethodField(help_text="The first 100 rejected files with reasons.")
    download_url = DownloadUrlField(allow_null=True)

    class Meta:
        model = Job
        fields = ["id", "kind", "status", "done", "total", "percent", "message", "params", "result", "error_count",
                  "errors", "created_at", "started_at", "finished_at", "download_url"]  # fmt: skip

    def get_result(self, job) -> dict:
        return {k: v for k, v in (job.result or {}).items() if k != "manifest"}

    def get_error_count(self, job) -> int:
        return len(job.errors or [])

    def get_errors(self, job) -> list[dict]:
        return (job.errors or [])[:100]


class JobStartedSerializer(JobOutputSerializer):
    coalesced = serializers.BooleanField(
        read_only=True, help_text="True (HTTP 200): the same job was already queued or running; this is that job."
    )

    class Meta(JobOutputSerializer.Meta):
        fields = [*JobOutputSerializer.Meta.fields, "coalesced"]


# Export and inference endpoints: a new job (202), the identical one already in flight (200), or too many (429).
JOB_START_RESPONSES = {
    202: JobStartedSerializer,
    200: JobStartedSerializer,
    429: OpenApiResponse(description="Too many exports or inference jobs queued or running for you or the project."),
}


def job_started_response(job: Job, request) -> Response:
    code = status.HTTP_200_OK if getattr(job, "coalesced", False) else status.HTTP_202_ACCEPTED
    return Response(JobStartedSerializer(job, context={"request": request}).data, status=code)


def job_limit_refused(exc: JobLimitReached) -> Throttled:
    return Throttled(detail=str(exc))


class Gone(APIException):
    status_code = 410
    default_detail = "This file expired and was deleted."
    default_code = "gone"


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
            raise NotFound(str(exc)) from exc
        response = FileResponse(handle, as_attachment=True, filename=name)
        response["Cache-Control"] = "private, no-store"
        return response


class DatasetExportStartApi(ProjectView, APIView):
    """Start a dataset export job; poll the job, then fetch `download_url`."""

    capability = Capability.EXPORT

    class InputSerializer(serializers.Serializer):
        format = serializers.ChoiceField(choices=FORMATS)
        only_reviewed = serializers.BooleanField(default=False)
        only_agreed = serializers.BooleanField(default=False)
        min_annotators = serializers.IntegerField(default=0, min_value=0, max_value=1000)
        classes = serializers.ListField(
            child=serializers.CharField(max_length=500), default=list, max_length=1000,
            help_text="Class names or paths (a/b); empty = all.",
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


urlpatterns = [
    path("auth/token/", TokenObtainApi.as_view(), name="api-token-obtain"),
    path("me/token/", MyTokenApi.as_view(), name="api-my-token"),
    path("projects/", ProjectListApi.as_view(), name="api-projects"),
    path("projects/<slug:slug>/", ProjectDetailApi.as_view(), name="api-project"),
    path("projects/<slug:slug>/classes/", ClassListApi.as_view(), name="api-classes"),
    path("projects/<slug:slug>/classes/create/", ClassCreateApi.as_view(), name="api-class-create"),
    path("projects/<slug:slug>/items/", ItemListApi.as_view(), name="api-items"),
    path("projects/<slug:slug>/items/<int:item_id>/", ItemDetailApi.as_view(), name="api-item"),
    # POST projects/<slug>/annotations/ is the queue API's create; the history list sits beside it.
    path("projects/<slug:slug>/annotations/list/", AnnotationListApi.as_view(), name="api-annotations"),
    path("projects/<slug:slug>/reviews/", ReviewListApi.as_view(), name="api-reviews"),
    path("projects/<slug:slug>/jobs/", JobListApi.as_view(), name="api-jobs"),
    path("projects/<slug:slug>/jobs/<int:job_id>/", JobDetailApi.as_view(), name="api-job"),
    path("projects/<slug:slug>/jobs/<int:job_id>/download/", JobDownloadApi.as_view(), name="api-job-download"),
    path("projects/<slug:slug>/exports/dataset/", DatasetExportStartApi.as_view(), name="api-export-dataset"),
]
