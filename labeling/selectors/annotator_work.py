"""Which annotation rows are an annotator's work: the counts, the quality report and "undo my last label" use it."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from labeling.models import Annotation, Project, Review


def annotator_work(annotations: QuerySet[Annotation]) -> QuerySet[Annotation]:
    """Without the rows a reviewer's verdict on an imported label creates in the reviewer's name
    (labeling.services.reviews.verdicts): they record the reviewer's own verdict, not a label anyone gave, so they
    count as no one's label and the labeling page's undo never withdraws them."""
    return annotations.filter(~Exists(Review.objects.filter(annotation=OuterRef("pk"), reviewer=OuterRef("user"))))


def annotations_undoable(*, user, project: Project, now: datetime) -> QuerySet[Annotation]:
    """The user's labels and skips in the project that undo may withdraw: within the grace period, not undone.
    Latest first: labeling.services.annotations.annotation_undo withdraws the first."""
    grace = timedelta(seconds=settings.LABELLOOP_UNDO_GRACE_SECONDS)
    # A reviewer's verdict on an imported label is no label of theirs to withdraw here (annotator_work).
    mine = Annotation.objects.filter(user=user, item__project=project, created_at__gte=now - grace).standing()
    return annotator_work(mine).order_by("-created_at", "-id")


def annotation_undo_target(*, user, project: Project) -> int | None:
    """The id of the annotation that annotation_undo would withdraw now, or None: the labeling page names it in its
    undo request, so that a press repeated after a lost answer cannot withdraw the label before it too."""
    return annotations_undoable(user=user, project=project, now=timezone.now()).values_list("pk", flat=True).first()
