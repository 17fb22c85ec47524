"""Labeling data: projects, members, taxonomies, items, annotations, reviews, resolved labels, jobs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q

from labeling.constants import DEFAULT_BACKBONE, DEFAULT_TRAINING_MODE, TRAINING_MODE_CHOICES
from labeling.selectors.classes import class_path_display


class TaskType(models.TextChoices):
    SINGLE = "single", "Single-label"
    MULTI = "multi", "Multi-label"


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"
    MANAGER = "manager", "Manager"
    ML_ENGINEER = "ml_engineer", "ML engineer"


class Project(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    task_type = models.CharField(max_length=10, choices=TaskType.choices, default=TaskType.SINGLE)
    instructions = models.TextField(blank=True)
    annotations_per_item = models.PositiveSmallIntegerField(default=1)
    review_sample_rate = models.FloatField(default=0.05)
    gold_rate = models.FloatField(default=0.0, help_text="Share of served items that are gold items.")
    holdout_fraction = models.FloatField(default=0.10)
    # Active learning settings.
    al_strategy = models.CharField(max_length=40, default="diverse_margin")
    retrain_every = models.PositiveIntegerField(default=20, help_text="Queue a run after this many new labels.")
    min_labels_to_train = models.PositiveIntegerField(default=20)
    backbone = models.CharField(max_length=100, default=DEFAULT_BACKBONE)
    backbone_weights = models.CharField(max_length=300, default="bundled")
    image_size = models.PositiveSmallIntegerField(default=128)
    flip_average = models.BooleanField(
        "Mirror-averaged embeddings",
        default=True,
        help_text="Embed each image together with its left-right mirror and average the two: better features for "
        "the model in the loop (CIFAR-10 benchmark: +0.7 points of full-data accuracy) at twice the embedding time. "
        "Turn it off when a mirrored image means something else (text, left/right classes).",
    )
    training_mode = models.CharField(max_length=10, default=DEFAULT_TRAINING_MODE, choices=TRAINING_MODE_CHOICES)
    gpus = models.PositiveSmallIntegerField(default=1)
    preselect_suggestion = models.BooleanField(default=False)
    # Set by staff in the admin only (no form or API writes it): see labeling.permissions.server_folder_roots.
    granted_import_roots = models.JSONField(
        "Granted server folders",
        default=list,
        blank=True,
        help_text="Server folders (each inside LABELLOOP_IMPORT_ROOTS) that this project's managers may import from "
        "and ML engineers may run batch inference on. Staff may use every LABELLOOP_IMPORT_ROOTS folder anyway.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(annotations_per_item__gte=1), name="project_overlap_positive"),
            models.CheckConstraint(
                condition=Q(holdout_fraction__gte=0) & Q(holdout_fraction__lt=1), name="project_holdout_fraction_range"
            ),
            models.CheckConstraint(
                condition=Q(review_sample_rate__gte=0) & Q(review_sample_rate__lte=1), name="project_review_rate_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_multi_label(self) -> bool:
        return self.task_type == TaskType.MULTI


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "project"], name="membership_unique_user_project")]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"


class LabelClass(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="classes")
    name = models.CharField(max_length=200)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    hotkey = models.CharField(max_length=1, blank=True)
    color = models.CharField(max_length=7, default="#4c78a8")
    order = models.PositiveIntegerField(default=0)
    archived = models.BooleanField(default=False)

    class Meta:
        ordering = ["order", "id"]
        verbose_name = "label class"
        verbose_name_plural = "label classes"
        constraints = [
            models.UniqueConstraint(fields=["project", "parent", "name"], name="labelclass_unique_name_per_parent"),
            models.UniqueConstraint(
                fields=["project", "name"], condition=Q(parent__isnull=True), name="labelclass_unique_root_name"
            ),
            models.UniqueConstraint(
                fields=["project", "hotkey"], condition=~Q(hotkey=""), name="labelclass_unique_hotkey"
            ),
        ]

    def __str__(self) -> str:
        return self.path

    @property
    def path(self) -> str:
        """The display path ("animal / cat"), walking the cached parents; the stored form and the rule are in
        labeling.selectors.classes; labeling.selectors.classes.paths_attached works out many at once."""
        if attached := self.__dict__.get("attached_path"):
            return attached
        names, node, seen = [], self, set()
        while node is not None and node.pk not in seen:
            seen.add(node.pk)
            names.append(node.name)
            node = node.parent
        return class_path_display(reversed(names))


class Split(models.TextChoices):
    TRAIN = "train", "Train"
    HOLDOUT = "holdout", "Holdout"


class ItemState(models.TextChoices):
    UNLABELED = "unlabeled", "Unlabeled"
    PARTIAL = "partial", "Partially annotated"
    LABELED = "labeled", "Labeled"
    REVIEW = "review", "Needs review"


def item_upload_to(instance: Item, filename: str) -> str:
    return f"projects/{instance.project_id}/originals/{instance.sha256[:2]}/{instance.sha256}{_suffix(filename)}"


def thumb_upload_to(instance: Item, filename: str) -> str:
    return f"projects/{instance.project_id}/thumbs/{instance.sha256[:2]}/{instance.sha256}.webp"


def _suffix(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot != -1 else ""


class Item(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="items")
    file = models.FileField(upload_to=item_upload_to, max_length=300)
    thumbnail = models.FileField(upload_to=thumb_upload_to, max_length=300)
    sha256 = models.CharField(max_length=64)
    phash = models.CharField(max_length=16, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=10)
    original_name = models.CharField(max_length=500)
    split = models.CharField(max_length=10, choices=Split.choices, default=Split.TRAIN)
    state = models.CharField(max_length=10, choices=ItemState.choices, default=ItemState.UNLABELED)
    priority = models.FloatField(default=0.0)
    annotation_count = models.PositiveIntegerField(default=0)
    lease_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    is_gold = models.BooleanField(default=False)
    gold_classes = models.ManyToManyField(LabelClass, blank=True, related_name="gold_items")
    picked_at_random = models.BooleanField(
        default=False,
        help_text="The last scoring put this item in the top batch as a uniform random draw (a share of each batch "
        "after the cold start, default strategy only), not as the strategy's pick. Rewritten with the priorities.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "sha256"], name="item_unique_sha256_per_project"),
        ]
        indexes = [
            # The queue's hot path: open items of a project by priority.
            models.Index(fields=["project", "state", "split", "-priority", "id"], name="item_queue_idx"),
            # Gold items are mixed into the queue at gold_rate; few rows, so a partial index.
            models.Index(
                fields=["project", "state", "-priority", "id"], condition=Q(is_gold=True), name="item_gold_queue_idx"
            ),
            models.Index(fields=["project", "original_name"], name="item_name_idx"),
            # A batch's import looks up the split of each new image's phash (near-duplicates share one); with
            # split in it the lookup reads the index alone, however many copies of one picture the project holds.
            models.Index(fields=["project", "phash", "split"], name="item_phash_idx"),
            # "Which item do I hold?" on every claim: few rows hold a lease, so a partial index stays tiny
            # (the plain FK index on lease_user is mostly NULLs, and SQLite's planner then scans the table).
            models.Index(
                fields=["lease_user", "lease_expires_at"], condition=Q(lease_user__isnull=False), name="item_lease_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.project_id})"


class AnnotationQuerySet(models.QuerySet):
    def standing(self) -> AnnotationQuerySet:
        """Labels and skips that stand: not an undo row, and not withdrawn by one."""
        return self.filter(undoes__isnull=True).filter(~Exists(Annotation.objects.filter(undoes=OuterRef("pk"))))

    def answers(self) -> AnnotationQuerySet:
        """Standing labels (skips left out): what each annotator says an item is, before any review."""
        return self.standing().filter(skipped=False)


class Annotation(models.Model):
    """Append-only: a correction or undo is a new row; rows are never updated."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="annotations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="annotations")
    classes = models.ManyToManyField(LabelClass, blank=True, related_name="annotations")
    skipped = models.BooleanField(default=False)
    # An undo row points at the annotation it withdraws.
    undoes = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="undone_by")
    seconds_spent = models.FloatField(default=0.0)
    shown_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the item's image was shown to the annotator (as the client reports it; empty when it did not "
        "say). A label may only apply to an image that was on screen when its key was pressed, so shown_at <= "
        "created_at. A time up to a minute ahead of the server's clock (client clock skew) is "
        "stored as the server's now; further ahead is rejected.",
    )
    picked_at_random = models.BooleanField(
        default=False,
        help_text="The item was a random draw of the queue (Item.picked_at_random) when this label was made: labels "
        "on random draws estimate the model's accuracy on the pool without the strategy's bias.",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AnnotationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(shown_at__isnull=True) | Q(shown_at__lte=models.F("created_at")),
                name="annotation_shown_before_created",
            ),
        ]
        indexes = [
            models.Index(fields=["item", "user"], name="annotation_item_user_idx"),
            models.Index(fields=["user", "created_at"], name="annotation_user_created_idx"),
            # A user's skips, oldest first: the queue serves them again once nothing else is left for the user.
            models.Index(
                fields=["user", "created_at", "id"], condition=Q(skipped=True), name="annotation_user_skip_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"annotation {self.pk} of item {self.item_id} by {self.user_id}"


class Verdict(models.TextChoices):
    ACCEPT = "accept", "Accept"
    REJECT = "reject", "Reject"
    CORRECT = "correct", "Correct"


class Review(models.Model):
    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews")
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    corrected_classes = models.ManyToManyField(LabelClass, blank=True, related_name="+")
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.verdict} of annotation {self.annotation_id}"


class ReviewTaskReason(models.TextChoices):
    SAMPLE = "sample", "Audit sample"
    DISAGREEMENT = "disagreement", "Annotators disagree"
    MODEL = "model", "Model contradicts"
    GOLD = "gold", "Gold check"
    LABEL_ERROR = "label_error", "Suspected label error"


class ReviewTask(models.Model):
    """An item waiting for a reviewer, with why it is there."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="review_tasks")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="review_tasks")
    annotation = models.ForeignKey(Annotation, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=20, choices=ReviewTaskReason.choices)
    score = models.FloatField(default=0.0)
    done = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "reason"], condition=Q(done=False), name="reviewtask_one_open_per_item_reason"
            )
        ]
        indexes = [models.Index(fields=["project", "done", "reason", "-score"], name="reviewtask_queue_idx")]

    def __str__(self) -> str:
        return f"{self.reason} review of item {self.item_id}"


class LabelSource(models.TextChoices):
    SINGLE = "single", "Single annotator"
    CONSENSUS = "consensus", "Consensus"
    REVIEW = "review", "Review"
    IMPORT = "import", "Imported"


class ResolvedLabel(models.Model):
    """The one label set per item that training and export use."""

    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="resolved")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="resolved_labels")
    classes = models.ManyToManyField(LabelClass, related_name="resolved_labels")
    source = models.CharField(max_length=10, choices=LabelSource.choices)
    annotator_count = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["project", "updated_at"], name="resolved_project_updated_idx")]

    def __str__(self) -> str:
        return f"resolved label of item {self.item_id} ({self.source})"


class JobKind(models.TextChoices):
    IMPORT = "import", "Import"
    EXPORT_DATASET = "export_dataset", "Dataset export"
    EXPORT_MODEL = "export_model", "Model export"
    EMBED = "embed", "Embeddings"
    TRAIN = "train", "Training"
    SCORE = "score", "Scoring"
    INFERENCE = "inference", "Batch inference"
    LABEL_ERRORS = "label_errors", "Label-error search"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Job(models.Model):
    """A long operation a person waits for; the UI polls its progress."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="jobs")
    number = models.PositiveIntegerField(editable=False, help_text="The job's number within its project: 1, 2, 3 ...")
    kind = models.CharField(max_length=20, choices=JobKind.choices)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=500, blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["project", "kind", "-created_at"], name="job_project_kind_idx")]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="job_unique_number_per_project")]

    def __str__(self) -> str:
        return f"{self.kind} job #{self.number} ({self.status})"

    def save(self, *args, **kwargs) -> None:  # a new job: its project's next number, under job_create's lock
        self.number = self.number or 1 + (self.project.jobs.aggregate(n=models.Max("number"))["n"] or 0)
        super().save(*args, **kwargs)

    @property
    def percent(self) -> int:
        if self.status == JobStatus.SUCCEEDED:
            return 100
        return int(100 * self.done / self.total) if self.total else 0

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)
