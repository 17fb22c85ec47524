"""The labeling card's class buttons, rendered once per taxonomy instead of once per label.

Every card carries every class of the project (keys, hierarchy levels and search work on them), so with a big
taxonomy rendering them was most of a label's server time (test client, SQLite: 18 ms per label at 10 classes,
49 ms at 380, 109 ms at 1,080 and seconds at 5,000). The buttons are the same on every card but for the class
the model suggests, which is marked on a copy of the rendered list. Each process keeps the last few lists; a new
or renamed class, another key or a class archived makes a new one.

Nor are they sent again with every card: at 1,080 classes they were 318 KB of each label's response. Each list
has a key (a digest of its HTML, the same in every process); the page sends the key of the list it shows
(label.js, header X-Class-List), and when it is still the project's list the card carries an empty placeholder
(data-keep) that label.js replaces with the buttons already on the page, then marks the new card's suggestion
(data-preselected) and clears the last card's ticks. (Not htmx's hx-preserve: Chromium's moveBefore, which it
uses, took about 40 ms per move at 1,080 buttons, two moves per card.) A page without the header (the first
load, a plain form post, the "nothing left" card) gets the whole list.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from labeling.models import Project
from labeling.selectors.queue import ClassOption

KEEP = 16  # lists per process: one per project being labeled, and a few taxonomies edited meanwhile
_rendered: OrderedDict[tuple, tuple[str, str]] = OrderedDict()
HEADER = "X-Class-List"  # the key of the list the page shows (label.js)


LABEL_LIST, REVIEW_LIST = "labeling/label.html#class-list", "labeling/review.html#review-class-list"


def _rendered_list(project: Project, classes: Sequence[ClassOption], template: str = LABEL_LIST) -> tuple[str, str]:
    """(the buttons' HTML, its key) for this taxonomy and page, rendered once per process."""
    cache_key = (template, project.pk, project.is_multi_label, tuple(classes))
    found = _rendered.get(cache_key)
    if found is None:
        hierarchical = any(c.parent_id for c in classes)
        context = {"project": project, "classes": classes, "hierarchical": hierarchical}
        html = render_to_string(template, context)
        found = (html, hashlib.sha256(f"{project.pk}:{template}:{html}".encode()).hexdigest()[:20])
        _rendered[cache_key] = found
        while len(_rendered) > KEEP:
            _rendered.popitem(last=False)
    else:
        _rendered.move_to_end(cache_key)
    return found


def page_list_key(request: HttpRequest) -> str:
    """The key of the class list the page shows (label.js and review.js send it with their card requests)."""
    return request.headers.get(HEADER, "") if request.htmx else ""


def _block(*, element_id: str, css: str, key: str, page_has: str, html: str) -> SafeString:
    """The list's element: an empty placeholder the page fills with its own list when it already shows this one."""
    if page_has == key:
        return mark_safe(f'<div class="{css}" id="{element_id}" data-key="{key}" data-keep="1"></div>')
    return mark_safe(f'<div class="{css}" id="{element_id}" data-key="{key}">{html}</div>')


def _chosen(html: str, project: Project, preselected: Sequence[int]) -> str:
    """`html` with the classes `preselected` marked chosen (and ticked in a multi-label project)."""
    for class_id in preselected:
        html = html.replace(f'class="class-btn" data-id="{class_id}"', f'class="class-btn on" data-id="{class_id}"', 1)
        if project.is_multi_label:
            html = html.replace(
                f'name="class_ids" value="{class_id}">', f'name="class_ids" value="{class_id}" checked>', 1
            )
    return html


def class_list_block(
    *, project: Project, classes: Sequence[ClassOption], preselected: Sequence[int], page_has: str = ""
) -> SafeString:
    """The card's class list: a placeholder label.js fills with the page's own buttons when `page_has` (the key
    the page sent) is this taxonomy's, else every button, the `preselected` ones marked."""
    html, key = _rendered_list(project, classes)
    html = "" if page_has == key else _chosen(html, project, preselected)
    return _block(element_id="class-list", css="classes", key=key, page_has=page_has, html=html)


def class_list_html(*, project: Project, classes: Sequence[ClassOption], preselected: Sequence[int]) -> SafeString:
    """The class buttons of `project`'s card, the `preselected` ones marked chosen (and ticked in a multi-label
    project)."""
    html, _ = _rendered_list(project, classes)
    return mark_safe(_chosen(html, project, preselected))


def review_list_block(
    *, project: Project, classes: Sequence[ClassOption], given_ids: set[int], page_has: str = ""
) -> SafeString:
    """The review card's correction classes, as class_list_block: a placeholder while the page has this list,
    else every class with the given ones marked (static/js/review.js marks them on a kept list)."""
    html, key = _rendered_list(project, classes, REVIEW_LIST)
    if page_has != key:
        for class_id in given_ids:
            plain, given = f'class="class-btn" data-id="{class_id}"', f'class="class-btn given" data-id="{class_id}"'
            html = html.replace(plain, f'{given} title="the given label"', 1)
    return _block(element_id="review-class-list", css="class-list", key=key, page_has=page_has, html=html)
