"""Thumbnails made again from the stored originals, under today's pixel rule (imaging.pixels).

Imports before that rule laid every transparent image on white: white drawings meant for dark backgrounds showed
as blank tiles in the grid, while the model now sees them on black. JPEG files have no transparency and 8-bit
channels, so their thumbnails are unchanged and skipped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from labeling.models import Item, Project
from labeling.services.imports.validation import ImportRejected, Limits, image_inspect


def thumbnails_refresh(*, project: Project, progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Re-make the thumbnail of each of the project's non-JPEG items. A new file name each time (thumbnails are
    cached by name); the old file is deleted after the row points at the new one. Returns counts."""
    limits = Limits.from_settings()
    items = list(project.items.exclude(format="JPEG").only("pk", "file", "thumbnail").order_by("pk"))
    counts = {"refreshed": 0, "unreadable": 0, "skipped_jpeg": project.items.filter(format="JPEG").count()}
    for done, item in enumerate(items, start=1):
        try:
            with item.file.open("rb") as fh:
                info = image_inspect(fh.read(), limits=limits)
        except (OSError, ImportRejected):
            counts["unreadable"] += 1  # a missing or now-refused original keeps its old thumbnail
        else:
            old = item.thumbnail.name
            item.thumbnail.save("thumb.webp", ContentFile(info.thumbnail), save=False)
            Item.objects.filter(pk=item.pk).update(thumbnail=item.thumbnail.name)
            if old and old != item.thumbnail.name:
                with contextlib.suppress(Exception):
                    default_storage.delete(old)
            counts["refreshed"] += 1
        if progress:
            progress(done, len(items))
    return counts
