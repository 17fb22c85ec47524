"""Training data: runs (a small state machine), model versions and predictions."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from labeling.models import Item, LabelClass, Project


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


IN_FLIGHT = (RunStatus.QUEUED, RunStatus.RUNNING)


class TrainingRun(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_runs")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    trigger = models.CharField(max_length=20, default="scheduler")  # scheduler | manual | command
    mode = models.CharField(max_length=10, default="head")
    label_count = models.PositiveIntegerField(default=0)
    # Newest ResolvedLabel.updated_at the run saw; the scheduler counts labels after it.
    labels_seen_at = models.DateTimeField(null=True, blank=True)
    dataset_hash = models.CharField(max_length=64, blank=True)
    progress = models.FloatField(default=0.0)
    stage = models.CharField(max_length=40, blank=True)
    device = models.CharField(max_length=40, blank=True)
    # Processes that trained the round: project.gpus for a fine-tune under torchrun (clamped to the devices the
    # worker sees), else 1.
    world_size = models.PositiveSmallIntegerField(default=1)
    worker = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    timings = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one run in flight per project, held by the database.
            models.UniqueConstraint(
                fields=["project"], condition=Q(status__in=["queued", "running"]), name="trainingrun_one_in_flight"
            )
        ]
        indexes = [models.Index(fields=["project", "status", "-created_at"], name="trainingrun_project_status_idx")]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.project_id} ({self.status})"


class ModelVersion(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    run = models.OneToOneField(TrainingRun, null=True, on_delete=models.SET_NULL, related_name="model_version")
    number = models.PositiveIntegerField()
    artifact_path = models.CharField(max_length=500)  # storage key of the checkpoint folder
    architecture = models.CharField(max_length=100)
    class_ids = models.JSONField(default=list)  # LabelClass ids in output order
    metrics = models.JSONField(default=dict, blank=True)
    label_count = models.PositiveIntegerField(default=0)
    dataset_hash = models.CharField(max_length=64, blank=True)
    active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="modelversion_unique_number"),
            models.UniqueConstraint(fields=["project"], condition=Q(active=True), name="modelversion_one_active"),
        ]

    def __str__(self) -> str:
        return f"v{self.number} of {self.project_id}"


class Prediction(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="predictions")
    probabilities = models.JSONField()  # in model_version.class_ids order
    predicted_class = models.ForeignKey(LabelClass, null=True, on_delete=models.SET_NULL, related_name="+")
    confidence = models.FloatField()
    uncertainty = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "model_version"], name="prediction_unique_item_version")]
        indexes = [
            models.Index(fields=["model_version", "predicted_class", "-confidence"], name="prediction_class_conf_idx"),
        ]

    def __str__(self) -> str:
        return f"prediction of item {self.item_id} by {self.model_version_id}"
