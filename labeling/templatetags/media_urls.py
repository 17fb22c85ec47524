"""`{% item_media_url slug item "thumb" %}`: an item's image URL that names its content (labeling.views.media)."""

from __future__ import annotations

from django import template

from labeling.selectors.media import item_media_url as _item_media_url

register = template.Library()


@register.simple_tag
def item_media_url(slug: str, item, kind: str) -> str:
    return _item_media_url(slug=slug, item_id=item.pk, sha256=item.sha256, kind=kind)
