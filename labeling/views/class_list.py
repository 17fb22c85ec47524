"""The labeling card's class buttons, rendered once per taxonomy instead of once per label.

Every card carries every class of the project (keys, hierarchy levels and search work on them), so with a big
taxonomy rendering them was most of a label's server time (test client, SQLite: 18 ms per label at 10 classes,
49 ms at 380, 109 ms at 1,080 and seconds at 5,000). The buttons are the same on every card but for the class
the model suggests, which is marked on a copy of the rendered list. Each process keeps the last few lists; a new
or renamed class, another key or a class archived makes a new one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from labeling.models import Project
from labeling.selectors.queue import ClassOption

KEEP = 16  # lists per process: one per project being labeled, and a few taxonomies edited meanwhile
_rendered: OrderedDict[tuple, str] = OrderedDict()


def class_list_html(*, project: Project, classes: Sequence[ClassOption], preselected: int | None) -> SafeString:
    """The class buttons of `project`'s card, `preselected` marked chosen (and ticked in a multi-label project)."""
    key = (project.pk, project.is_multi_label, tuple(classes))
    html = _rendered.get(key)
    if html is None:
        html = render_to_string("labeling/label.html#class-list", {"project": project, "classes": classes})
        _rendered[key] = html
        while len(_rendered) > KEEP:
            _rendered.popitem(last=False)
    else:
        _rendered.move_to_end(key)
    if preselected is not None:
        html = html.replace(
            f'class="class-btn" data-id="{preselected}"', f'class="class-btn on" data-id="{preselected}"', 1
        )
        if project.is_multi_label:
            html = html.replace(
                f'name="class_ids" value="{preselected}">', f'name="class_ids" value="{preselected}" checked>', 1
            )
    return mark_safe(html)
