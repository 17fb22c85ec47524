"""A labels CSV's rows applied by file name: a row names the image stored under that name (its folders included, as
imported), else the one image with that file name in any folder ("1.png" for "cats/1.png").

A row whose name more than one image carries labels none of them and is listed as not applied, naming them: two
different pictures stored as "Café.png" (a Mac's "Cafe\u0301.png" and a Windows "Café.png" are one name once stored in
normal form C), imported before or in the same import, are not told apart by the row, which labeled one of them
without a word (stop 58's tester, P7). A file name that files in several folders carry asks for the path instead.

A row for one file of the import labels it as it is stored (batches._Run.classes_for), unless another file of the
import or an image stored before may carry its name (shared_csv_names): those files are stored with the label their
folder gives, if any, and the row is applied here once every file is stored, so that copies skipped and files refused
count for nothing. Rows for images imported before are applied here too (csv_rows_apply).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from django.db import transaction

from labeling.models import Item, ItemState, LabelSource, ResolvedLabel
from labeling.services.imports.batches import _parsed, _Run
from labeling.services.imports.duplicates import duplicate_row, kept_labels

_IN_CHUNK = 500  # names per `IN (...)` query
_IDS_SHOWN = 6


def shared_csv_names(run: _Run, names: Iterable[str]) -> set[str]:
    """The CSV rows (keys of run.csv_labels) that more than one image may carry: rows that two of the files `names`
    (the import's, still to store) map to, or one of them and an image stored before, by its name or as a file in a
    folder. Copies and refused files are counted too; csv_rows_apply looks at what was stored."""
    if not run.csv_labels:
        return set()
    counts = Counter(key for name in names if (key := run._csv_key(name)) is not None)
    shared = {key for key, n in counts.items() if n > 1}
    once = sorted(key for key, n in counts.items() if n == 1)
    items = Item.objects.filter(project=run.project)
    for start in range(0, len(once), _IN_CHUNK):
        chunk = once[start : start + _IN_CHUNK]
        shared.update(items.filter(original_name__in=chunk).values_list("original_name", flat=True))
    rest = set(once) - shared
    if rest:  # a stored file in a folder ("cats/1.png") that a bare name ("1.png") names
        for stored in items.filter(original_name__contains="/").values_list("original_name", flat=True).iterator():
            parts = stored.split("/")
            shared.update(tail for i in range(1, len(parts)) if (tail := "/".join(parts[i:])) in rest)
    return shared


def not_one_item(name: str, items: list[Item], *, by_path: bool) -> str:
    """Why a CSV row labels nothing: no image has its name, several do (`by_path`: each stored under the name;
    else files of that name in several folders, the first two named)."""
    if not items:
        return "no item with this name"
    if by_path:
        shown = ", ".join(f"#{i.pk}" for i in items[:_IDS_SHOWN]) + (", …" if len(items) > _IDS_SHOWN else "")
        none = "neither was" if len(items) == 2 else "none was"
        return f"{len(items)} images have this name: {name} ({shown}); {none} labeled: label them on the labeling page"
    names = [i.original_name for i in items]
    shown = ", ".join(names[:2]) + (", ..." if len(names) > 2 else "")
    return f"name matches several items ({shown}); write the path in the CSV"[:300]


def csv_rows_apply(run: _Run) -> None:
    """Apply the rows not applied as their files were stored: rows for images imported earlier, and rows whose name
    more than one file or image may carry (shared_csv_names), once the import's files are stored."""
    remaining = {name: paths for name, paths in run.csv_labels.items() if name not in run.matched_csv}
    if not remaining:
        return
    items = Item.objects.filter(project=run.project)
    by_name: dict[str, list[Item]] = defaultdict(list)
    for item in items.filter(original_name__in=list(remaining)).select_related("resolved").order_by("pk"):
        by_name[item.original_name].append(item)
    kept = {name.rsplit("/", 1)[-1]: other for name, other in run.duplicate_of.items()}
    kept.update(run.duplicate_of)
    labels = kept_labels(run.project, {kept[name] for name in remaining if name in kept})
    path_of = {c.pk: path for path, c in run.classes.items()}  # class id -> stored path, for a replaced label
    for name, paths in remaining.items():
        named = by_name.get(name) or list(
            items.filter(original_name__endswith="/" + name).select_related("resolved").order_by("original_name")[:3]
        )
        if len(named) > 1:
            run.label_error(name, not_one_item(name, named, by_path=name in by_name))
            continue
        item = named[0] if named else None
        new = item is not None and item.original_name in run.stored_names  # stored by this import, unlabeled by CSV
        if name in kept and not new:  # its file was skipped as a copy of another: the row is not "for no item"
            given = run.names.resolve(paths, existing=run.classes)[0] or paths
            reason = duplicate_row(kept[name], labels.get(kept[name], []), sorted({_parsed(p) for p in given}))
            if reason:
                run.label_error(name, reason)
            continue
        if item is None:
            run.label_error(name, not_one_item(name, [], by_path=True))
            continue
        resolved = getattr(item, "resolved", None)
        if not new and resolved is not None and resolved.source != LabelSource.IMPORT:
            run.label_error(name, "already labeled in Labelloop; imported label not applied")
            continue
        classes = run.csv_classes(name, paths)
        if not classes:
            continue
        if resolved is not None and not new:  # an earlier import's label: replaced, and the job says so
            if any(c.pk not in path_of for c in classes):  # the row made a class
                path_of = {c.pk: path for path, c in run.classes.items()}
            before = [path_of.get(c.pk, c.name) for c in resolved.classes.all()]
            run.relabeled.replaced(item.original_name, before, [path_of[c.pk] for c in classes])
        with transaction.atomic():
            if resolved is None:
                resolved = ResolvedLabel.objects.create(item=item, project=run.project, source=LabelSource.IMPORT)
            elif new:  # its folder's label, given as it was stored: counted then
                run.counts["labeled"] -= 1
            resolved.classes.set(classes)
            Item.objects.filter(pk=item.pk).update(state=ItemState.LABELED)
        run.counts["labeled"] += 1
