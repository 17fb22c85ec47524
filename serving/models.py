"""Project API keys for the prediction service, each project's serving settings, and the prediction log."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from labeling.models import Project

DEFAULT_KEEP_IMAGES_DAYS = 30
DEFAULT_DRIFT_P_THRESHOLD = 0.01
DEFAULT_LOW_CONFIDENCE_THRESHOLD = 0.5
DEFAULT_LOW_CONFIDENCE_ALERT_SHARE = 0.3


def new_webhook_secret() -> str:
    return secrets.token_hex(32)


class ApiKey(models.Model):
    """A project-scoped key for `POST /v1/projects/<slug>/predict`. Only the sha256 of the token is stored; the
    token is shown once, when the key is made. `prefix` (the token's first characters) lets people tell keys
    apart on the page."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name}) of {self.project_id}"

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class ServingSettings(models.Model):
    """Per-project serving settings: how long the prediction log keeps the images (0 = metadata only), and when
    monitoring alerts: a drift p-value below drift_p_threshold, or a share of predictions with confidence below
    low_confidence_threshold above low_confidence_alert_share. Alerts are banners on the project's pages and, when
    webhook_url is set, a JSON POST signed with HMAC-SHA256(webhook_secret, body) in X-Labelloop-Signature."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="serving_settings")
    keep_images_days = models.PositiveIntegerField(
        default=DEFAULT_KEEP_IMAGES_DAYS, validators=[MaxValueValidator(3650)]
    )
    drift_p_threshold = models.FloatField(
        default=DEFAULT_DRIFT_P_THRESHOLD, validators=[MinValueValidator(0.0), MaxValueValidator(0.5)]
    )
    low_confidence_threshold = models.FloatField(
        default=DEFAULT_LOW_CONFIDENCE_THRESHOLD, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    low_confidence_alert_share = models.FloatField(
        default=DEFAULT_LOW_CONFIDENCE_ALERT_SHARE, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    webhook_url = models.URLField(max_length=500, blank=True)
    webhook_secret = models.CharField(max_length=64, default=new_webhook_secret)
    # Send to queue: this many of the day's least-confident production images (with a kept image) enter the
    # labeling queue each day (serving.tasks.predictions_auto_queue_task); 0 = off.
    auto_queue_per_day = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(10_000)])

    class Meta:
        verbose_name = "serving settings"
        verbose_name_plural = "serving settings"

    def __str__(self) -> str:
        return f"serving settings of {self.project_id}"


class PredictionLog(models.Model):
    """One image the prediction service answered for: what it said and with which version. `image` is the
    request's image (storage key) while the project keeps images; the prune task deletes it after the
    project's keep_images_days, and the row after LABELLOOP_PREDICTION_LOG_KEEP_DAYS."""

    uid = models.UUIDField(unique=True)  # the prediction id the service answered with
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prediction_logs")
    created_at = models.DateTimeField(db_index=True)
    version_number = models.PositiveIntegerField()
    # The model's class name as the service answered it: a display path ("a / b"; stored "a/b" from older
    # checkpoints). Matched to classes by serving.selectors.monitoring.class_ids_by_logged_name.
    top_class = models.CharField(max_length=500)
    confidence = models.FloatField()
    margin = models.FloatField()  # top-1 minus top-2 probability
    embedding = models.BinaryField(null=True, blank=True)  # float16, as the feature store keeps embeddings
    image = models.CharField(max_length=500, blank=True)  # storage key; "" = not kept
    api_key = models.ForeignKey(ApiKey, null=True, on_delete=models.SET_NULL, related_name="+")
    # The request's time in the service, from its first byte to its answer (decode, checks and inference; a batch's
    # images share it); null on rows logged before the service measured it.
    latency_ms = models.FloatField(null=True, blank=True)
    # The export's ONNX file that answered (model.onnx, model.int8.onnx, ...: LABELLOOP_SERVING_PRECISION and the
    # serving CPU choose it): drift checks embed their reference with the same file. "" on rows logged before.
    model_file = models.CharField(max_length=40, blank=True)
    # Sent to the labeling queue: when, and the sha256 of the image bytes sent. The project's Item with that
    # sha256 (unique per project) is the link to the prediction, also when the import found it a duplicate.
    queued_at = models.DateTimeField(null=True, blank=True)
    image_sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["project", "-created_at"], name="predlog_project_time_idx"),
            models.Index(
                fields=["project", "image_sha256"], condition=~Q(image_sha256=""), name="predlog_sent_sha_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(confidence__gte=0) & Q(confidence__lte=1), name="predlog_confidence_0_1"
            ),
        ]

    def __str__(self) -> str:
        return f"prediction {self.uid} of {self.project_id}"


class PredictedLabel(models.Model):
    """One class a multi-label model predicted for a logged image (probability >= MULTI_LABEL_THRESHOLD, the
    `labels` of its answer). A single-label prediction has none: its top_class is the prediction. Rows logged
    before December 2026 have none either (the log kept the top class only)."""

    log = models.ForeignKey(PredictionLog, on_delete=models.CASCADE, related_name="predicted_labels")
    path = models.CharField(max_length=500)  # the model's class name, as top_class is

    class Meta:
        constraints = [models.UniqueConstraint(fields=["log", "path"], name="predlabel_unique_log_path")]

    def __str__(self) -> str:
        return f"{self.path} predicted in {self.log_id}"


class DriftReport(models.Model):
    """One drift check of a project's production inputs: the window's prediction-log embeddings against the
    embeddings of a random sample of the project's images under the same model version, compared by MMD (RBF kernel,
    median heuristic) with a seeded permutation test. The row is made when the check starts (status "running",
    `progress` 0..1, statistic and p_value empty) and filled in when it ends, so the Monitoring page can show a
    progress indicator. `drifted` = p_value < threshold; `low_confidence_share` is the window's share of
    predictions with confidence below the project's low_confidence_threshold, `low_confidence_alert` whether it
    crossed low_confidence_alert_share."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="drift_reports")
    version_number = models.PositiveIntegerField()
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    n_production = models.PositiveIntegerField(default=0)
    n_reference = models.PositiveIntegerField(default=0)
    statistic = models.FloatField(null=True, blank=True)  # MMD^2 (biased estimate)
    p_value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField()  # the p-value threshold in force when the check ran
    drifted = models.BooleanField(default=False)
    low_confidence_share = models.FloatField(null=True, blank=True)
    low_confidence_alert = models.BooleanField(default=False)
    permutations = models.PositiveIntegerField(default=0)
    model_file = models.CharField(max_length=40, blank=True)  # the ONNX file of the window and of the reference
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    alerted_at = models.DateTimeField(null=True, blank=True)  # when the webhook for this report was queued

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["project", "-created_at"], name="driftreport_project_time_idx"),
        ]

    def __str__(self) -> str:
        return f"drift report {self.pk} of {self.project_id} (v{self.version_number}, {self.status})"

    @property
    def alerting(self) -> bool:
        return self.status == self.Status.DONE and (self.drifted or self.low_confidence_alert)
