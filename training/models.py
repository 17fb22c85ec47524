"""Training data: runs (a small state machine), model versions, predictions and registered backbone weights."""

from __future__ import annotations

from django.conf import settings
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


class RunTrigger(models.TextChoices):
    """Who asked for the run."""

    SCHEDULER = "scheduler", "Scheduler"
    MANUAL = "manual", "Manual"  # "Train now" on the model page
    API = "api", "API"
    COMMAND = "command", "Command"  # manage.py train


class RunMode(models.TextChoices):
    """How the run trains: a head on cached embeddings, a fine-tune, or a cold start (no model: typicality order).

    AUTO is what a run asks for until its worker resolves it (fine-tune with CUDA, else head; mode_reason says
    which and why): a queued run may show it, a finished one never does."""

    AUTO = "auto", "Auto"
    HEAD = "head", "Head"
    FINETUNE = "finetune", "Fine-tune"
    COLD_START = "coldstart", "Cold start"


class TrainingRun(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_runs")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    trigger = models.CharField(max_length=20, choices=RunTrigger.choices, default=RunTrigger.SCHEDULER)
    mode = models.CharField(max_length=10, choices=RunMode.choices, default=RunMode.HEAD)
    # Why the run trains in `mode` (the worker's resolution of "auto", the asked mode, or a cold start).
    mode_reason = models.CharField(max_length=200, blank=True)
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


class LabelErrorStatus(models.TextChoices):
    OK = "ok", "Searched"
    TOO_FEW = "too_few", "Too few labels"
    WEAK = "weak", "Model too weak"
    SKIPPED = "skipped", "Not applicable"


class LabelErrorSearch(models.Model):
    """The outcome of one label-error search: what the page headlines, and the out-of-sample view of each suspect.

    The open ReviewTask rows (reason label_error) are the suspects to work; `suspects` holds, per item id, the
    model that judged it (cross-validated, never the active version): [given class id, model's class id, model's
    probability for it, probability of the given class, shares of the item's nearest labeled neighbours that carry
    the model's class and the given class (searches from before December 2026 have neither)]; in a multi-label
    project {"decisions": [[class id, 1 given / 0 not given, probability the class is present, share of the nearest
    labeled neighbours with it], ...]} (training.services.label_errors_multi), and the estimated share is of the
    class decisions judged (labels x classes_judged).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="label_error_searches")
    status = models.CharField(max_length=10, choices=LabelErrorStatus.choices)
    reason = models.CharField(max_length=500, blank=True)
    labels = models.PositiveIntegerField(default=0)  # labels judged
    not_checked = models.JSONField(default=list, blank=True)  # [[class path, label count]] below the minimum
    min_per_class = models.PositiveIntegerField(default=0)
    agreement = models.FloatField(null=True, blank=True)  # out-of-sample top class == given label, share
    estimated_share = models.FloatField(null=True, blank=True)
    share_low = models.FloatField(null=True, blank=True)
    share_high = models.FloatField(null=True, blank=True)
    flagged = models.PositiveIntegerField(default=0)
    suspects = models.JSONField(default=dict, blank=True)
    classes_judged = models.PositiveIntegerField(default=0)  # multi-label: classes whose decisions were judged
    # multi-label: [[class path, balanced accuracy, agreement]] of the classes too weak to judge
    weak_classes = models.JSONField(default=list, blank=True)
    seconds = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["project", "-created_at"], name="labelerrorsearch_project_idx")]

    def __str__(self) -> str:
        return f"label-error search {self.pk} of {self.project_id} ({self.status})"


class BackboneWeights(models.Model):
    """A weights file an ML engineer registered for a timm architecture (manage.py weights_register or the admin).

    `path` is where every worker reads the file (a shared volume); `sha256` is what the file was when it was
    validated, and a worker refuses to train or score with it once the bytes differ. mean/std: the normalisation
    the weights were trained with (timm's default for the architecture unless given).
    """

    name = models.CharField(max_length=100, unique=True)
    architecture = models.CharField(max_length=100)
    path = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    mean = models.JSONField()
    std = models.JSONField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "backbone weights"

    def __str__(self) -> str:
        return f"{self.name} ({self.architecture}, sha256 {self.sha256[:12]})"


class ExplanationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Explanation(models.Model):
    """A class-activation heatmap of one model version's view of one item for one class, cached as an RGBA PNG
    overlay in the default storage (`png`: its key). One row per (version, item, class index); a worker computes it
    (training/services/explanations.py) and `error` says why a failed one failed."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="explanations")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="explanations")
    class_index = models.PositiveSmallIntegerField()  # position in model_version.class_ids
    class_name = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=ExplanationStatus.choices, default=ExplanationStatus.QUEUED)
    error = models.TextField(blank=True)
    png = models.CharField(max_length=300, blank=True)
    probability = models.FloatField(null=True, blank=True)  # the version's probability of the class for the item
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model_version", "item", "class_index"], name="explanation_unique"),
        ]

    def __str__(self) -> str:
        return f"explanation of item {self.item_id} class {self.class_index} by {self.model_version_id} ({self.status})"
