"""Project API keys for the prediction service, each project's serving settings, and the prediction log."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q

from labeling.models import Project

DEFAULT_KEEP_IMAGES_DAYS = 30


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

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name}) of {self.project_id}"

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class ServingSettings(models.Model):
    """Per-project serving settings: how long the prediction log keeps the images (0 = metadata only)."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="serving_settings")
    keep_images_days = models.PositiveIntegerField(
        default=DEFAULT_KEEP_IMAGES_DAYS, validators=[MaxValueValidator(3650)]
    )

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
    top_class = models.CharField(max_length=500)  # stored class path ("a/b")
    confidence = models.FloatField()
    margin = models.FloatField()  # top-1 minus top-2 probability
    embedding = models.BinaryField(null=True, blank=True)  # float16, as the feature store keeps embeddings
    image = models.CharField(max_length=500, blank=True)  # storage key; "" = not kept
    api_key = models.ForeignKey(ApiKey, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["project", "-created_at"], name="predlog_project_time_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(confidence__gte=0) & Q(confidence__lte=1), name="predlog_confidence_0_1"
            ),
        ]

    def __str__(self) -> str:
        return f"prediction {self.uid} of {self.project_id}"
