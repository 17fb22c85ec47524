"""Shared test helpers for the training suites: resolved labels without going through the UI, digit images."""

from __future__ import annotations

import hashlib
import io

import numpy as np
from django.core.files.base import ContentFile
from PIL import Image

from labeling.models import Item, ItemState, LabelSource, ResolvedLabel


def resolve(item, *classes, source: str = LabelSource.SINGLE) -> ResolvedLabel:
    """Give an item a resolved label (what the annotation service ends with) and mark it labeled."""
    row, _ = ResolvedLabel.objects.update_or_create(item=item, defaults={"project": item.project, "source": source})
    row.classes.set(classes)
    row.save()  # bumps updated_at, as a recompute does
    type(item).objects.filter(pk=item.pk).update(state=ItemState.LABELED)
    return row


def digit_png(pixels: np.ndarray) -> bytes:
    """One of scikit-learn's 8x8 digits as a 32 px RGB PNG."""
    image = Image.fromarray((pixels * 255 / 16).astype(np.uint8)).resize((32, 32), Image.NEAREST).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def digit_items(project, count: int) -> list[tuple[Item, int]]:
    """The first `count` digits as items of `project` (exact duplicates skipped), with their true digit."""
    from sklearn.datasets import load_digits

    images, truth = load_digits(return_X_y=True)
    out, seen = [], set()
    for pixels, digit in zip(images[:count], truth[:count], strict=True):
        data = digit_png(pixels.reshape(8, 8))
        sha = hashlib.sha256(data).hexdigest()
        if sha in seen:
            continue
        seen.add(sha)
        item = Item(project=project, sha256=sha, width=32, height=32, format="PNG", original_name=f"{sha[:8]}.png")
        item.file.save(f"{sha}.png", ContentFile(data), save=False)
        item.thumbnail.save("t.webp", ContentFile(data), save=False)
        item.save()
        out.append((item, int(digit)))
    return out
