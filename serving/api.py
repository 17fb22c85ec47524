"""Serving REST API: the Monitoring page's figures as JSON, send-to-queue (an import job), its alert settings
(thresholds, webhook URL, a new webhook secret shown once), and the keys page's project API keys for the prediction
service (list, make: the secret shown once, revoke).

Same rules as labeling's API (labeling.api.base): ProjectCapability on every endpoint, one APIView per operation,
the same selectors and services as the page.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from labeling.api.base import JobStartedSerializer, ProjectView, job_started_response, no_store
from labeling.constants import MAX_ID
from labeling.permissions import Capability, role_can
from labeling.selectors.classes import class_path_normalize
from serving.models import ApiKey, ServingSettings
from serving.selectors.alerts import alert_settings_of
from serving.selectors.keys import api_keys_of
from serving.selectors.monitoring import DEFAULT_DAYS, MAX_DAYS, MAX_SEND, monitoring_of
from serving.selectors.send_selection import Order, Selection
from serving.services.alerts import ALERT_FIELDS, alert_settings_set, webhook_secret_rotate
from serving.services.keys import api_key_create, api_key_revoke
from serving.services.send_to_queue import predictions_send_to_queue


class MonitoringDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    count = serializers.IntegerField()
    median = serializers.FloatField(
        allow_null=True,
        help_text="Median confidence, approximate (20 bins): read from a 20-bin histogram, interpolated within its "
        "bin, so off by less than 0.05.",
    )
    p10 = serializers.FloatField(
        allow_null=True,
        help_text="10th percentile of the confidence, approximate (20 bins) as the median is: off by less than 0.05.",
    )
    low_share = serializers.FloatField(allow_null=True, help_text="Share below low_confidence_threshold (exact).")


class MonitoringLatencySerializer(serializers.Serializer):
    day = serializers.DateField()
    count = serializers.IntegerField(help_text="Predictions of the day with a measured latency.")
    p50 = serializers.FloatField(help_text="Median time of a request in the prediction service, ms.")
    p95 = serializers.FloatField(help_text="95th percentile, ms.")


class MonitoringVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    count = serializers.IntegerField()


class MonitoringClassSerializer(serializers.Serializer):
    path = serializers.CharField(
        help_text='Class path as the pages show it ("a / b / c", the spelling of the model\'s class names); a '
        "predicted name no class of the project has any more (renamed since), as logged."
    )
    class_id = serializers.IntegerField(
        allow_null=True, help_text="The class's id; null for a predicted name no class of the project has."
    )
    predicted = serializers.IntegerField()
    predicted_share = serializers.FloatField()
    labeled = serializers.IntegerField(help_text="Resolved labels with this class.")
    labeled_share = serializers.FloatField()


class MonitoringDriftSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    version = serializers.IntegerField(source="version_number")
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    n_production = serializers.IntegerField(help_text="Production predictions of the window compared.")
    n_reference = serializers.IntegerField(
        help_text="Size of the reference: a random sample of up to 1,000 of the project's own images, labeled or not "
        "(not the production images sent to the queue), embedded by the same ONNX file."
    )
    model_file = serializers.CharField(
        help_text="The export's ONNX file that answered the window's predictions and embedded the project's images "
        '(model.onnx, model.int8.onnx, model.int8.vnni.onnx); "" for checks made before it was recorded.'
    )
    statistic = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True)
    threshold = serializers.FloatField()
    drifted = serializers.BooleanField()
    low_confidence_share = serializers.FloatField(allow_null=True)
    status = serializers.CharField(help_text="running, done or failed.")
    error = serializers.CharField(help_text='Why a failed check failed ("" otherwise).')
    progress = serializers.FloatField()


class MonitoringAccuracySerializer(serializers.Serializer):
    version = serializers.IntegerField(source="version_number")
    n = serializers.IntegerField(
        help_text="Production images of this version that people labeled after they were sent to the queue: one per "
        "image (by content), however many times the version was asked about it. The interval is on these."
    )
    predictions = serializers.IntegerField(
        help_text="The version's sent predictions of those images: each request about one that was sent to the queue "
        "counts; a request that was not sent does not."
    )
    correct = serializers.IntegerField(
        help_text="Images whose top class is one of the labeled classes; multi-label: the predicted classes are the "
        "labeled ones."
    )
    accuracy = serializers.FloatField()
    low = serializers.FloatField(help_text="Lower end of the Wilson 95 % interval.")
    high = serializers.FloatField(help_text="Upper end of the Wilson 95 % interval.")


class MonitoringOutputSerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    total = serializers.IntegerField(help_text="Predictions in the window.")
    versions = serializers.SerializerMethodField()
    days = MonitoringDaySerializer(many=True, help_text="Days with predictions, oldest first.")
    classes = MonitoringClassSerializer(many=True)
    other_predicted = serializers.IntegerField(
        help_text="Predictions of classes not listed in `classes` (multi-label: predicted classes, each counts once)."
    )
    predicted_total = serializers.IntegerField(
        help_text="What the predicted shares divide by: the window's predictions; in a multi-label project, the "
        "classes they predicted (each class of each prediction counts once, as each class of each label does)."
    )
    labeled_total = serializers.IntegerField()
    drift = MonitoringDriftSerializer(many=True, help_text="The newest drift reports, oldest first.")
    drift_running = serializers.SerializerMethodField(help_text="True while a drift check runs.")
    live_accuracy = MonitoringAccuracySerializer(
        many=True,
        help_text="Per version, on the sent production images people labeled after they were sent (each image once).",
    )
    live_labeled_before = serializers.IntegerField(
        help_text="Sent images left out of live_accuracy: the project had labeled them before they were sent "
        "(copies of its own images, which a version may have trained on)."
    )
    sent_to_queue = serializers.IntegerField(
        help_text="Production images sent to the labeling queue (an image sent twice counts once); not those the "
        "project already had."
    )
    already_in_project = serializers.IntegerField(
        help_text="Sent predictions whose image the project already had: not queued again, and not offered again."
    )
    kept_images = serializers.IntegerField(help_text="Kept production images not sent yet.")
    keep_images_days = serializers.IntegerField()
    low_confidence_threshold = serializers.FloatField()
    auto_queue_per_day = serializers.IntegerField()
    latency = MonitoringLatencySerializer(
        many=True, help_text="Per day: the request time in the prediction service (days with a measurement)."
    )

    @extend_schema_field(MonitoringVersionSerializer(many=True))
    def get_versions(self, figures) -> list[dict]:
        return [{"version": v, "count": n} for v, n in figures.by_version.items()]

    def get_drift_running(self, figures) -> bool:
        return figures.drift_running is not None


class MonitoringApi(ProjectView, APIView):
    """The Monitoring page's figures: volume and confidence per day, the predicted-class mix against the labeled
    classes, drift reports, live accuracy of each version on production images people labeled."""

    capability = Capability.VIEW_METRICS

    class FilterSerializer(serializers.Serializer):
        days = serializers.IntegerField(min_value=1, max_value=MAX_DAYS, default=DEFAULT_DAYS)

    @extend_schema(parameters=[FilterSerializer], responses={200: MonitoringOutputSerializer})
    def get(self, request, slug: str):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        figures = monitoring_of(project=self.project, days=filters.validated_data["days"])
        return Response(MonitoringOutputSerializer(figures).data)


class RefusesUnknownFields:
    """A serializer mixin: a field it does not take is refused (400 "Unknown field(s): count. Accepted: ...", naming
    the fields it takes), not ignored: a misspelt field must not answer 200 or 202 and do the default."""

    # Sent by a browser form posting with a session; not a field.
    IGNORED = frozenset({"csrfmiddlewaretoken"})

    def to_internal_value(self, data):
        accepted = [name for name, field in self.fields.items() if not field.read_only]
        known = {*accepted, *self.IGNORED}
        unknown = sorted(str(key) for key in data if key not in known) if isinstance(data, Mapping) else []
        if unknown:
            shown = ", ".join(key if key.isidentifier() else repr(key[:60]) for key in unknown)  # "", "a b": quoted
            raise serializers.ValidationError(
                {api_settings.NON_FIELD_ERRORS_KEY: [f"Unknown field(s): {shown}. Accepted: {', '.join(accepted)}."]}
            )
        return super().to_internal_value(data)


class SendToQueueApi(ProjectView, APIView):
    """Send production predictions (with kept images, not sent before) to the front of the labeling queue: an import
    job that validates and deduplicates them. Poll /jobs/<id>/. The job's `params.send_counts` say how many images
    it sends (`sent`) and how many the project already had (`already_in_project`: not sent again, and no longer
    offered). 400 when the filters are invalid or match nothing, or a field is not one of them (nothing is sent)."""

    capability = Capability.MANAGE

    class InputSerializer(RefusesUnknownFields, serializers.Serializer):
        order = serializers.ChoiceField(choices=Order.CHOICES, default=Order.LOWEST_CONFIDENCE)
        limit = serializers.IntegerField(min_value=1, max_value=MAX_SEND, default=50)
        top_class = serializers.CharField(
            required=False,
            max_length=500,
            help_text='Predicted class path, either spelling ("a/b/c" or "a / b / c"), standing for itself and every '
            "class under it; multi-label: one of the classes predicted. An unknown class is a 400 naming it.",
        )
        since = serializers.DateTimeField(required=False)
        until = serializers.DateTimeField(required=False)
        version = serializers.IntegerField(required=False, min_value=1)
        seed = serializers.IntegerField(required=False, help_text="Seed of the random sample (order=random).")

    @extend_schema(request=InputSerializer, responses={202: JobStartedSerializer, 400: OpenApiResponse()})
    def post(self, request, slug: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        selection = Selection(
            order=values["order"],
            limit=values["limit"],
            top_class=class_path_normalize(values["top_class"]) if values.get("top_class") else "",
            since=values.get("since"),
            until=values.get("until"),
            version_number=values.get("version"),
            seed=values.get("seed"),
        )
        try:
            job = predictions_send_to_queue(project=self.project, user=request.user, selection=selection)
        except DjangoValidationError as exc:
            raise ApiValidationError({"detail": exc.messages}) from exc
        return job_started_response(job, request)


class ServingKeyOutputSerializer(serializers.ModelSerializer):
    prefix = serializers.CharField(read_only=True, help_text="The key's first characters, to tell keys apart.")
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True, default=None)
    revoked_by = serializers.CharField(source="revoked_by.username", read_only=True, allow_null=True, default=None)
    active = serializers.BooleanField(read_only=True, help_text="False once revoked: the service refuses it (401).")

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "active", "created_at", "created_by", "revoked_at", "revoked_by"]


class ServingKeyCreatedSerializer(ServingKeyOutputSerializer):
    key = serializers.CharField(
        read_only=True, help_text="The secret: `Authorization: Bearer <key>` on the prediction service. Shown in "
        "this answer only (stored hashed): keep it now.",
    )  # fmt: skip

    class Meta(ServingKeyOutputSerializer.Meta):
        fields = [*ServingKeyOutputSerializer.Meta.fields, "key"]


class ServingKeyListApi(ProjectView, APIView):
    """The project's API keys for the prediction service, newest first, revoked ones included (managers and ML
    engineers, as the keys page). POST makes one: its secret is in that answer only."""

    capability = Capability.EXPORT

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100, help_text='What will use it, e.g. "mobile app".')

    @extend_schema(responses={200: ServingKeyOutputSerializer(many=True)})
    def get(self, request, slug: str):
        return Response(ServingKeyOutputSerializer(api_keys_of(project=self.project), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: ServingKeyCreatedSerializer, 400: OpenApiResponse()})
    def post(self, request, slug: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            key, token = api_key_create(project=self.project, user=request.user, name=data.validated_data["name"])
        except DjangoValidationError as exc:
            raise ApiValidationError({"name": exc.messages}) from exc
        answer = {**ServingKeyOutputSerializer(key).data, "key": token}
        return no_store(Response(answer, status=status.HTTP_201_CREATED))


class ServingKeyRevokeApi(ProjectView, APIView):
    """Revoke a key of this project: the prediction service refuses it from the next request on. Revoking a
    revoked key changes nothing; another project's key is 404."""

    capability = Capability.EXPORT

    @extend_schema(responses={200: ServingKeyOutputSerializer, 404: OpenApiResponse()})
    def delete(self, request, slug: str, key_id: int):
        # In the product's words: get_object_or_404 would name the model ("No ApiKey matches the given query.").
        missing = NotFound("No such serving key in this project.")
        if not 0 < key_id <= MAX_ID:  # an id no row can have: 404, not a database overflow
            raise missing
        try:
            key = api_key_revoke(project=self.project, key_id=key_id, user=request.user)
        except ApiKey.DoesNotExist:
            raise missing from None
        return Response(ServingKeyOutputSerializer(key).data)


class AlertSettingsSerializer(RefusesUnknownFields, serializers.ModelSerializer):
    """The alert settings; the thresholds' ranges are ServingSettings' own validators. A field that is not a setting
    is a 400 naming it and the settings: a misspelt "drift_p_value" must not answer 200 and change nothing."""

    secret_hint = serializers.CharField(
        read_only=True, help_text="The webhook secret's last 4 characters (POST .../secret/ makes a new one)."
    )
    webhook_set = serializers.SerializerMethodField(help_text="True when a webhook URL is set.")

    class Meta:
        model = ServingSettings
        fields = (*ALERT_FIELDS, "secret_hint", "webhook_set")
        extra_kwargs = {
            "webhook_url": {"help_text": "http:// or https:// address that gets a signed JSON POST for each new "
                            "alert; empty: no webhook."},
            "drift_p_threshold": {"help_text": "Drift when a check's p-value is below this."},
            "low_confidence_threshold": {"help_text": "A prediction below this confidence is unsure."},
            "low_confidence_alert_share": {"help_text": "Alert when this share of a window is unsure."},
        }  # fmt: skip

    def get_webhook_set(self, settings) -> bool:
        return bool(settings.webhook_url)


class AlertThresholdsSerializer(AlertSettingsSerializer):
    """What a reviewer or ML engineer sees: the thresholds and whether a webhook is set, not its URL or secret."""

    class Meta(AlertSettingsSerializer.Meta):
        fields = ("drift_p_threshold", "low_confidence_threshold", "low_confidence_alert_share", "webhook_set")


class AlertSettingsApi(ProjectView, APIView):
    """The project's alert settings, as the Monitoring page's Alerts card: the drift and low-confidence thresholds
    and the webhook URL. Managers read and PATCH them (any of webhook_url, drift_p_threshold,
    low_confidence_threshold, low_confidence_alert_share; a refused value or an unknown field is 400 and changes
    nothing); reviewers and ML engineers read the thresholds and webhook_set (not the URL or the secret's hint)."""

    @property
    def capability(self) -> Capability:
        return Capability.VIEW_METRICS if self.request.method in SAFE_METHODS else Capability.MANAGE

    @extend_schema(responses={200: AlertSettingsSerializer})
    def get(self, request, slug: str):
        shown = AlertSettingsSerializer if role_can(self.role, Capability.MANAGE) else AlertThresholdsSerializer
        return Response(shown(alert_settings_of(project_id=self.project.pk)).data)

    @extend_schema(request=AlertSettingsSerializer, responses={200: AlertSettingsSerializer, 400: OpenApiResponse()})
    def patch(self, request, slug: str):
        data = AlertSettingsSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        try:
            alert_settings_set(project=self.project, **data.validated_data)
        except DjangoValidationError as exc:
            raise ApiValidationError(getattr(exc, "message_dict", {"detail": exc.messages})) from exc
        return Response(AlertSettingsSerializer(alert_settings_of(project_id=self.project.pk)).data)


class WebhookSecretSerializer(serializers.Serializer):
    webhook_secret = serializers.CharField(
        help_text="The new secret that signs each webhook POST (X-Labelloop-Signature). In this answer only."
    )


class WebhookSecretApi(ProjectView, APIView):
    """A new webhook secret (managers): the old one stops signing at once; the new one is in this answer only."""

    capability = Capability.MANAGE

    @extend_schema(request=None, responses={201: WebhookSecretSerializer})
    def post(self, request, slug: str):
        secret = webhook_secret_rotate(project=self.project)
        return no_store(Response({"webhook_secret": secret}, status=status.HTTP_201_CREATED))


urlpatterns = [
    path("projects/<slug:slug>/monitoring/", MonitoringApi.as_view(), name="api-monitoring"),
    path("projects/<slug:slug>/monitoring/send-to-queue/", SendToQueueApi.as_view(), name="api-send-to-queue"),
    path("projects/<slug:slug>/monitoring/alert-settings/", AlertSettingsApi.as_view(), name="api-alert-settings"),
    path(
        "projects/<slug:slug>/monitoring/alert-settings/secret/", WebhookSecretApi.as_view(), name="api-webhook-secret"
    ),
    path("projects/<slug:slug>/serving-keys/", ServingKeyListApi.as_view(), name="api-serving-keys"),
    path("projects/<slug:slug>/serving-keys/<int:key_id>/", ServingKeyRevokeApi.as_view(), name="api-serving-key"),
]
