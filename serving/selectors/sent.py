"""What a send to the labeling queue did with each prediction it took: queued its image, or found the image already
in the project.

A sent prediction (queued_at set, its image's sha256 kept) put an image in the queue only when the image was new to
the project. One whose image the project already had (an Item with that sha256 made before the send) is done, never
offered again, but nothing was queued for it: the import skips it as a duplicate. The rule is read from the items,
so it holds for predictions sent before it was written; images sent twice (two predictions of the same file) count
once.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Exists, OuterRef, Q

from labeling.models import Item, Job, Project
from serving.models import PredictionLog


def already_in_project() -> Exists:
    """For a PredictionLog query: True when the project had the prediction's image before it was sent."""
    return Exists(
        Item.objects.filter(
            project_id=OuterRef("project_id"), sha256=OuterRef("image_sha256"), created_at__lt=OuterRef("queued_at")
        )
    )


def send_counts(*, project: Project) -> dict[str, int]:
    """{"sent": images queued, "already_in_project": sent predictions whose image the project already had, "kept":
    predictions with a kept image not sent yet}. Two queries; only the sent rows look up their item."""
    logs = PredictionLog.objects.filter(project=project)
    counts = (
        logs.filter(queued_at__isnull=False)
        .exclude(image_sha256="")
        .annotate(had=already_in_project())
        .aggregate(
            sent=Count("image_sha256", distinct=True, filter=Q(had=False)),
            already_in_project=Count("id", filter=Q(had=True)),
        )
    )
    return {**counts, "kept": logs.filter(queued_at=None).exclude(image="").count()}


def shas_in_project(*, project: Project, shas: Iterable[str]) -> set[str]:
    """The sha256s among `shas` that an item of the project has (unique per project)."""
    return set(Item.objects.filter(project=project, sha256__in=set(shas)).values_list("sha256", flat=True))


def send_outcome(job: Job) -> tuple[int, str]:
    """What a send did: the images it sent to the queue, and a note on the predictions it took but did not queue
    ("7 were already in the project: not sent again"; "" when none). Jobs from before the counts: all sent."""
    predictions = job.params["send_to_queue"]["predictions"]
    counts = job.params.get("send_counts", {})
    sent = counts.get("sent", predictions)
    already = counts.get("already_in_project", 0)
    copies = predictions - sent - already  # the same file in two predictions
    notes = []
    if already:
        notes.append(f"{already} {'was' if already == 1 else 'were'} already in the project: not sent again")
    if copies > 0:
        notes.append(f"{copies} {'was a copy' if copies == 1 else 'were copies'} of another image sent")
    return sent, "; ".join(notes)
