"""A file skipped as a copy of another (the same bytes) whose label differs from the kept file's: its reason says which
copy kept its class and that this copy's was not applied, so a picture dropped in two class folders (clock/ and phone/)
reads as a label conflict, not as a harmless duplicate.

Of two copies in one import the first read keeps its label: the first in the upload's order (the order the page or
the script sent the files), a zip's order, a server folder's files by path. A copy of a file imported before is
skipped and the stored item keeps its label.
"""

from __future__ import annotations

from collections.abc import Collection

from labeling.models import Item, Project
from labeling.selectors.classes import PATH_SEPARATOR, class_path_display, class_path_parse


def kept_labels(project: Project, names: Collection[str]) -> dict[str, list[str]]:
    """The label (stored class paths, sorted) of each stored file named, in one query: an upload can hold many
    copies."""
    if not names:
        return {}
    items = Item.objects.filter(project=project, original_name__in=list(names)).prefetch_related("resolved__classes")
    labels = {}
    for item in items:
        resolved = getattr(item, "resolved", None)
        classes = resolved.classes.all() if resolved is not None else []
        labels[item.original_name] = sorted(class_path_parse(c.path) for c in classes)
    return labels


def _classes(paths: list[str]) -> str:
    names = ", ".join(class_path_display(p.split(PATH_SEPARATOR)) for p in paths)
    return f"class{'es' if len(paths) > 1 else ''} {names}"


def label_conflict(kept: str, kept_paths: list[str], given: list[str], *, earlier: bool) -> str | None:
    """The reason of a copy of `kept` (labeled `kept_paths`) that its folder or an export gave the label `given`
    (stored paths), when the two differ; None when it gave none or the same."""
    given = sorted(set(given))
    if not given or given == sorted(set(kept_paths)):
        return None
    which = "imported before, which" if earlier else "which came first and"
    keeps = f"keeps its {_classes(kept_paths)}" if kept_paths else "keeps no class"
    return f"duplicate of {kept}, {which} {keeps}; this copy's {_classes(given)} was not applied"


def duplicate_row(kept: str, kept_paths: list[str], given: list[str]) -> str | None:
    """The reason of a CSV row whose file was skipped as a copy of `kept` (labeled `kept_paths`): None when it gives
    the kept file's label, else that its label was not applied (the kept file keeps its own)."""
    given = sorted(set(given))
    if given == kept_paths:
        return None
    return (
        f"row's file is a duplicate of {kept}, which keeps its own label ({'; '.join(kept_paths) or 'none'}); "
        f"this row's label ({'; '.join(given)}) was not applied"
    )
