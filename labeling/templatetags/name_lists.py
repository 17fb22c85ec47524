"""Long lists of classes on one line: the first few names, then how many more (pages with 100+ classes)."""

from __future__ import annotations

from django import template

register = template.Library()

SHOWN = 30


@register.filter
def first_names(names, shown: int = SHOWN) -> str:
    """The names joined ("a, b, c") or, past `shown`, the first `shown` then "… and N more"; a (name, count) pair
    reads "name (count)". Plain text: the template escapes it."""
    names = list(names or ())
    words = [f"{n[0]} ({n[1]})" if isinstance(n, list | tuple) else str(n) for n in names[:shown]]
    more = len(names) - shown
    return ", ".join(words) + (f" … and {more} more" if more > 0 else "")
