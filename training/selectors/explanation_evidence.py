"""Whether a finished heatmap shows anything: a class with no positive evidence anywhere in the image (Grad-CAM
zero everywhere) gives a fully transparent overlay, which a page cannot tell from one that did not load; the
fragment says so in words instead (templates/training/_explanation.html). Read from the stored PNG, so rows
computed before this rule are covered too; a web process needs Pillow only."""

from __future__ import annotations

from django.core.files.storage import default_storage
from PIL import Image, UnidentifiedImageError

from training.models import Explanation, ExplanationStatus


def explanation_is_empty(*, explanation: Explanation) -> bool:
    """True when the row is done and its overlay's alpha is zero everywhere (nothing would be drawn). A PNG that
    cannot be read counts as not empty: the overlay's own request then fails visibly."""
    if explanation.status != ExplanationStatus.DONE or not explanation.png:
        return False
    try:
        with default_storage.open(explanation.png, "rb") as fh, Image.open(fh) as image:
            if image.mode != "RGBA":
                return False
            return image.getchannel("A").getextrema()[1] == 0
    except (OSError, ValueError, UnidentifiedImageError):
        return False
