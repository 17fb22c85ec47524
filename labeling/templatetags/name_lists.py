"""Long lists of classes on one line: the first few names, then how many more (pages with 100+ classes)."""

from __future__ import annotations

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

register = template.Library()

SHOWN = 30


@register.filter
def first_names(names, shown: int = SHOWN) -> SafeString:
    """The names joined ("a, b, c") or, past `shown`, the first `shown` then "… and N more"; a (name, count) pair
    reads "name (count)". Each name is escaped and isolated in a <bdi>: a right-to-left name, or one holding a
    direction override from before they were refused, cannot reorder the names after it."""
    names = list(names or ())
    pairs = [(n[0], f" ({n[1]})") if isinstance(n, list | tuple) else (n, "") for n in names[:shown]]
    joined = format_html_join(", ", "<bdi>{}</bdi>{}", pairs)
    more = len(names) - shown
    return format_html("{}{}", joined, f" … and {more} more" if more > 0 else "")
