"""Image URLs that name their content, for pages, the API and the labeling queue (served by views/media.py)."""

from __future__ import annotations

from django.urls import reverse

VERSION_CHARS = 16  # of the sha256 in `?v=`: 64 bits, unique among any project's images


def item_media_url(*, slug: str, item_id: int, sha256: str, kind: str) -> str:
    """`/p/<slug>/media/<item id>/<kind>/?v=<start of the file's sha256>`; without a sha256, the bare URL (which
    the view revalidates on every use instead of letting the browser keep it)."""
    return reverse("labeling:item_media", args=[slug, item_id, kind]) + media_query(sha256)


def media_query(sha256: str) -> str:
    """The query that names an image's content (`?v=...`), for code that builds many media URLs from a prefix."""
    return f"?v={sha256[:VERSION_CHARS]}" if sha256 else ""
