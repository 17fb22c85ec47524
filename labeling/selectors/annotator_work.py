"""Which annotation rows are an annotator's work: the counts, the quality report and "undo my last label" use it."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from labeling.models import Annotation, Review


def annotator_work(annotations: QuerySet[Annotation]) -> QuerySet[Annotation]:
    """Without the rows a reviewer's verdict on an imported label creates in the reviewer's name
    (labeling.services.reviews.verdicts): they record the reviewer's own verdict, not a label anyone gave, so they
    count as no one's label and the labeling page's undo never withdraws them."""
    return annotations.filter(~Exists(Review.objects.filter(annotation=OuterRef("pk"), reviewer=OuterRef("user"))))
