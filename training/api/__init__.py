"""Training REST API: runs, model versions, predictions; model export and batch inference jobs.

Same rules as labeling's API (labeling.api.base): ProjectCapability on every endpoint, keyset pagination for big lists,
one APIView per write. Exports and inference run as Jobs on a worker; poll /jobs/<id>/ and fetch download_url.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.base import (
    JOB_START_RESPONSES,
    FiniteFloatField,
    IdCursorPagination,
    IdField,
    JobStartedSerializer,
    ProjectView,
    job_limit_refused,
    job_started_response,
    object_or_404,
)
from labeling.permissions import Capability
from labeling.selectors.classes import class_tree
from labeling.services.job_limits import JobLimitReached
from training import services
from training.api import label_errors, versions
from training.ml.intervals import headline
from training.models import ModelVersion, Prediction, RunMode, RunTrigger, TrainingRun
from training.selectors.classes import class_names_stored, metrics_class_names, metrics_spelled
from training.selectors.runs import metrics_summary
from training.services import exports, inference
from training.services.promotion import HELD_BACK_BY_ROUND, NOT_MADE_ACTIVE
from training.services.runs import RunSameModel


class RunOutputSerializer(serializers.ModelSerializer):
    model_version = serializers.SerializerMethodField()
    not_made_active = serializers.SerializerMethodField()

    class Meta:
        model = TrainingRun
        fields = ["id", "status", "trigger", "mode", "label_count", "dataset_hash", "progress", "stage", "device",
                  "world_size", "worker", "error", "created_at", "started_at", "finished_at", "timings",
                  "model_version", "not_made_active"]  # fmt: skip

    def get_model_version(self, run) -> int | None:
        version = getattr(run, "model_version", None)
        return version.number if version else None

    def get_not_made_active(self, run) -> str | None:
        """Why the run kept its version without making it active (clearly worse on the holdout, or another version
        made active by hand during the run); null when it made it active. Where it stands now: the version's."""
        version = getattr(run, "model_version", None)
        metrics = version.metrics if version is not None and isinstance(version.metrics, dict) else {}
        return metrics.get(NOT_MADE_ACTIVE) or metrics.get(HELD_BACK_BY_ROUND) or None


class RunListApi(ProjectView, generics.ListAPIView):
    """Training runs of the project, oldest first: status, progress, device, timings and the version each made."""

    capability = Capability.VIEW_METRICS
    serializer_class = RunOutputSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        return TrainingRun.objects.filter(project=self.project).select_related("model_version")


class RunDetailApi(ProjectView, APIView):
    """One training run: status, progress, error if it failed, and the model version it produced."""

    capability = Capability.VIEW_METRICS

    @extend_schema(responses={200: RunOutputSerializer})
    def get(self, request, slug: str, run_id: int):
        run = object_or_404(TrainingRun.objects.select_related("model_version"), project=self.project, pk=run_id)
        return Response(RunOutputSerializer(run).data)


class RunCreateApi(ProjectView, APIView):
    """Queue a training run now. 409 when one is already queued or running, or (`code` "same_model", `version`)
    when no label changed since that version and the settings are the ones it was trained with, so the run would
    train the same model again: the request conflicts with the project's state, and `force: true` queues it anyway."""

    capability = Capability.TRAIN

    class InputSerializer(serializers.Serializer):
        mode = serializers.ChoiceField(choices=[RunMode.HEAD, RunMode.FINETUNE], required=False)
        force = serializers.BooleanField(
            required=False, default=False, help_text="Train even if the run would train an existing version again."
        )

    @extend_schema(
        request=InputSerializer,
        responses={
            201: RunOutputSerializer,
            400: OpenApiResponse(description="No run can be queued as the project is set up (detail says why)."),
            409: OpenApiResponse(
                description="A run is already in flight, or (code same_model) it would train version `version` again."
            ),
        },
    )
    def post(self, request, slug: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            run = services.training_run_enqueue(
                project=self.project,
                trigger=RunTrigger.API,
                mode=data.validated_data.get("mode"),
                force=data.validated_data["force"],
            )
        except RunSameModel as exc:
            detail = f"{exc} Send force=true to train anyway."
            body = {"detail": detail, "code": "same_model", "version": exc.version.number}
            return Response(body, status=status.HTTP_409_CONFLICT)
        except services.RunRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        if run is None:
            return Response({"detail": "A run is already queued or running."}, status=status.HTTP_409_CONFLICT)
        return Response(RunOutputSerializer(run).data, status=status.HTTP_201_CREATED)


class MetricFigureSerializer(serializers.Serializer):
    metric = serializers.CharField(source="key", help_text="Key of the figure in `metrics`.")
    label = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField(allow_null=True, help_text="Holdout items the figure rests on.")
    low = serializers.FloatField(allow_null=True, help_text="Lower end of the 95 % interval.")
    high = serializers.FloatField(allow_null=True, help_text="Upper end of the 95 % interval.")
    method = serializers.CharField(
        allow_null=True, help_text="wilson or bootstrap; null: no interval (see interval_recorded)."
    )
    level = serializers.FloatField(allow_null=True)


class ModelVersionOutputSerializer(serializers.ModelSerializer):
    run = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)  # null once its run is deleted
    headline = serializers.SerializerMethodField(
        help_text="Headline holdout figures, each with its n and 95 % interval (Wilson for accuracy, a bootstrap "
        "over holdout items for the rest)."
    )
    interval_recorded = serializers.SerializerMethodField(
        help_text="False for a version evaluated before intervals were recorded: its figures have no interval."
    )
    no_support = serializers.SerializerMethodField(
        help_text='Classes with no holdout item, left out of the macro averages, by stored path ("a/b/c").'
    )

    class Meta:
        model = ModelVersion
        fields = ["id", "number", "run", "architecture", "class_ids", "metrics", "headline", "interval_recorded",
                  "no_support", "label_count", "dataset_hash", "active", "created_at"]  # fmt: skip

    @staticmethod
    def _metrics(version) -> dict:
        """The metrics, or in the list their summary (annotated by metrics_summary, metrics deferred)."""
        metrics = version.summary if hasattr(version, "summary") else version.metrics
        return metrics if isinstance(metrics, dict) else {}

    @extend_schema_field(MetricFigureSerializer(many=True))
    def get_headline(self, version) -> list:
        return MetricFigureSerializer(headline(self._metrics(version)), many=True).data

    def get_interval_recorded(self, version) -> bool:
        return isinstance(self._metrics(version).get("intervals"), dict)

    def get_no_support(self, version) -> list[str]:
        value = self._metrics(version).get("no_support")
        return [str(v) for v in value] if isinstance(value, list) else []

    def to_representation(self, version):
        """Class names as every machine-facing answer spells them, stored paths ("a/b/c"): the metrics carry the
        checkpoint's display paths ("a / b / c"). The project's class tree is read once per answer and kept in the
        context, which a list's versions share; a flat project's answer is unchanged."""
        data = super().to_representation(version)
        metrics = data.get("metrics")
        names = [*metrics_class_names(metrics), *data["no_support"]]
        if not names:
            return data
        context = self.context  # the root serializer's: one dict for every version of a list
        if "class_tree" not in context:
            context["class_tree"] = class_tree(project=getattr(context.get("view"), "project", None) or version.project)
        spelled = class_names_stored(names, tree=context["class_tree"], class_ids=version.class_ids)
        if isinstance(metrics, dict):
            data["metrics"] = metrics_spelled(metrics, spelled)
        data["no_support"] = [spelled.get(name, name) for name in data["no_support"]]
        return data


class ModelVersionListSerializer(ModelVersionOutputSerializer):
    metrics = serializers.JSONField(
        source="summary",
        read_only=True,
        help_text="Holdout metrics without `confusion_matrix` and `per_class`, which grow with the classes (3 MB "
        "at 1,000 classes): GET .../models/<number>/ has them. Classes (macro_classes, no_support) by stored path.",
    )


class ModelVersionListApi(ProjectView, generics.ListAPIView):
    """Trained model versions with their holdout metrics (without the per-class parts: the detail has those);
    `active` marks the one that scores the queue."""

    capability = Capability.VIEW_METRICS
    serializer_class = ModelVersionListSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        return ModelVersion.objects.filter(project=self.project).defer("metrics").annotate(summary=metrics_summary())


class ModelVersionDetailApi(ProjectView, APIView):
    """One model version by number: architecture, class order, holdout metrics and the labels it was trained on.
    Classes in the metrics (per_class keys, macro_classes, no_support) are named by stored path ("a/b/c")."""

    capability = Capability.VIEW_METRICS

    @extend_schema(responses={200: ModelVersionOutputSerializer})
    def get(self, request, slug: str, number: int):
        version = object_or_404(ModelVersion, project=self.project, number=number)
        context = {"class_tree": class_tree(project=self.project)}
        return Response(ModelVersionOutputSerializer(version, context=context).data)


class PredictionOutputSerializer(serializers.ModelSerializer):
    model_version = serializers.IntegerField(source="model_version.number")

    class Meta:
        model = Prediction
        fields = ["id", "item", "model_version", "probabilities", "predicted_class", "confidence", "uncertainty",
                  "created_at"]  # fmt: skip


class PredictionFilterSerializer(serializers.Serializer):
    version = IdField(required=False, help_text="Model version number; default: the active version.")
    item = IdField(required=False)
    predicted_class = IdField(required=False)
    confidence_min = FiniteFloatField(required=False)
    confidence_max = FiniteFloatField(required=False)


class PredictionListApi(ProjectView, generics.ListAPIView):
    """Predictions of one model version (probabilities in the version's class_ids order)."""

    capability = Capability.VIEW_METRICS
    serializer_class = PredictionOutputSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self):
        filters = PredictionFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        qs = Prediction.objects.filter(model_version__project=self.project).select_related("model_version")
        qs = qs.filter(model_version__number=f["version"]) if "version" in f else qs.filter(model_version__active=True)
        if "item" in f:
            qs = qs.filter(item_id=f["item"])
        if "predicted_class" in f:
            qs = qs.filter(predicted_class_id=f["predicted_class"])
        if "confidence_min" in f:
            qs = qs.filter(confidence__gte=f["confidence_min"])
        if "confidence_max" in f:
            qs = qs.filter(confidence__lte=f["confidence_max"])
        return qs

    @extend_schema(parameters=[PredictionFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ModelExportStartedSerializer(JobStartedSerializer):
    reused = serializers.SerializerMethodField(
        help_text="True (HTTP 200): this version already has a finished export with the same inputs (labels, items, "
        "classes, code) whose zip is stored; this is that job, with its download_url. Nothing was built again. POST "
        "with force=true to build a new one."
    )

    class Meta(JobStartedSerializer.Meta):
        fields = [*JobStartedSerializer.Meta.fields, "reused"]

    def get_reused(self, job) -> bool:
        return bool(getattr(job, "reused", False))


class ModelExportStartApi(ProjectView, APIView):
    """Export a model version as a job: safetensors + config, FP32 ONNX checked against PyTorch, FP16 and INT8 ONNX
    (outputs `logits` and `embedding`), manifest.json and a model card. The finished job's `result.measured` holds
    each format's accuracy (with `accuracy_n`, the labeled images it rests on, and its Wilson 95 % interval
    `accuracy_low`..`accuracy_high`), macro-F1, agreement and largest probability difference vs FP32, size, ms per
    image and images/s, measured on the project's labeled holdout by the worker that built it (agreement, probability
    difference and speed also on unlabeled items while the holdout has fewer than 256 labels: `images` in all,
    `labeled_images` of them with labels).

    202: a new export job. 200: an export of the same version with the same inputs is already queued or running
    (`coalesced`), or finished with its zip still stored (`reused`, with `download_url`): nothing new was started,
    so the answer is the existing job, not 202 Accepted. `force: true` builds a new export even then."""

    capability = Capability.EXPORT

    class InputSerializer(serializers.Serializer):
        force = serializers.BooleanField(
            required=False, default=False, help_text="Build a new export even if a finished one has the same inputs."
        )

    @extend_schema(
        request=InputSerializer,
        responses={202: ModelExportStartedSerializer, 200: ModelExportStartedSerializer,
                   429: JOB_START_RESPONSES[429], 404: OpenApiResponse()},
    )  # fmt: skip
    def post(self, request, slug: str, number: int):
        version = object_or_404(ModelVersion, project=self.project, number=number)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job = exports.model_export_start(
                project=self.project, user=request.user, number=version.number, force=data.validated_data["force"]
            )
        except JobLimitReached as exc:
            raise job_limit_refused(exc) from exc
        code = status.HTTP_200_OK if getattr(job, "coalesced", False) else status.HTTP_202_ACCEPTED
        answer = ModelExportStartedSerializer(job, context={"request": request}).data
        return Response(answer, status=code, headers={"Location": answer["url"]})


class InferenceStartApi(ProjectView, APIView):
    """Run a model version (default: active) over an uploaded zip or a server folder; results as CSV."""

    capability = Capability.EXPORT
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(required=False, help_text="A .zip of images.")
        folder = serializers.CharField(
            required=False,
            max_length=1000,
            help_text="A server folder: staff may name any folder under LABELLOOP_IMPORT_ROOTS, others only the "
            "folders staff granted to the project. Anything else is refused with one message, whether it exists "
            "or not.",
        )
        version = IdField(required=False)

    @extend_schema(
        request={"multipart/form-data": InputSerializer, "application/json": InputSerializer},
        responses={**JOB_START_RESPONSES, 400: OpenApiResponse()},
    )
    def post(self, request, slug: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            job = inference.inference_start(
                project=self.project,
                user=request.user,
                upload=values.get("file"),
                folder=values.get("folder", ""),
                number=values.get("version"),
            )
        except DjangoValidationError as exc:
            raise ApiValidationError({"detail": exc.messages}) from exc
        except JobLimitReached as exc:
            raise job_limit_refused(exc) from exc
        return job_started_response(job, request)


urlpatterns = [
    path("projects/<slug:slug>/runs/", RunListApi.as_view(), name="api-runs"),
    path("projects/<slug:slug>/runs/create/", RunCreateApi.as_view(), name="api-run-create"),
    path("projects/<slug:slug>/runs/<int:run_id>/", RunDetailApi.as_view(), name="api-run"),
    path("projects/<slug:slug>/models/", ModelVersionListApi.as_view(), name="api-models"),
    path("projects/<slug:slug>/models/<int:number>/", ModelVersionDetailApi.as_view(), name="api-model"),
    path("projects/<slug:slug>/models/<int:number>/export/", ModelExportStartApi.as_view(), name="api-model-export"),
    path(
        "projects/<slug:slug>/models/<int:number>/activate/",
        versions.ModelVersionActivateApi.as_view(),
        name="api-model-activate",
    ),
    path("projects/<slug:slug>/predictions/", PredictionListApi.as_view(), name="api-predictions"),
    path("projects/<slug:slug>/label-errors/", label_errors.LabelErrorsApi.as_view(), name="api-label-errors"),
    path("projects/<slug:slug>/inference/", InferenceStartApi.as_view(), name="api-inference"),
]
