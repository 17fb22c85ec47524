"""The one rule for an export that would hold no item: it is refused before any work, by the page, the API and
`manage.py export_dataset` alike. An empty dataset is never what the caller meant (a filter too strict, nothing
labeled yet), and a script that goes on to train on it would fail later and less clearly; nothing is written and no
job is made, so there is nothing to clean up.

The check runs on the web request, so it does not build the export plan (labeling.selectors.exports.export_plan,
which reads every labeled item; the worker builds it once): it asks the database whether one resolved label passes
the plan's filters, a query that stops at the first row. Only "only agreed" (every annotator's latest answer is the
resolved label set, worked out in Python by the plan) still needs the plan, and only once the other filters match.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, QuerySet

from labeling.models import Project, ResolvedLabel
from labeling.selectors.classes import class_tree
from labeling.selectors.exports import ExportFilters, export_plan, resolve_class_names, resolved_labels_kept


def filters_in_words(filters: ExportFilters) -> list[str]:
    """The filters a page or API caller set, as the refusal names them ("min annotators 3")."""
    return [
        *(["only reviewed"] if filters.only_reviewed else []),
        *(["only agreed"] if filters.only_agreed else []),
        *([f"min annotators {filters.min_annotators}"] if filters.min_annotators else []),
        *([f"classes {', '.join(filters.classes)}"] if filters.classes else []),
    ]


def _exported_labels(*, project: Project, filters: ExportFilters) -> QuerySet[ResolvedLabel]:
    """The resolved labels export_plan keeps, but for "only agreed": its filters as one queryset (the plan's
    rows are these labels' items). tests/exports/test_nothing_to_export_matches_the_plan.py holds the two equal."""
    labels = resolved_labels_kept(project=project, filters=filters).filter(item__project=project)
    classes = ResolvedLabel.classes.through.objects.filter(resolvedlabel_id=OuterRef("pk"))
    if filters.classes:
        # An item is kept when one of its classes is a named class or under one.
        wanted = resolve_class_names(filters.classes, class_tree(project=project))
        labels = labels.filter(Exists(classes.filter(labelclass_id__in=wanted)))
    elif not project.is_multi_label:
        # A single-label item with no class (e.g. only skips resolved) has no class folder to go in.
        labels = labels.filter(Exists(classes))
    return labels


def export_would_hold_items(*, project: Project, filters: ExportFilters) -> bool:
    """Whether an export with these (validated) filters would hold at least one item."""
    if not _exported_labels(project=project, filters=filters).exists():
        return False
    return not filters.only_agreed or bool(export_plan(project=project, filters=filters).rows)


def dataset_export_refuse_empty(*, project: Project, filters: ExportFilters, given: list[str] | None = None) -> None:
    """Raise ValidationError when the export would hold no item, naming the filters that left none. `given` is how
    the caller names the filters it set (the command's flags); by default the page's and API's words. The filters
    are validated first (dataset_export_validate)."""
    if export_would_hold_items(project=project, filters=filters):
        return
    given = filters_in_words(filters) if given is None else given
    labeled = _exported_labels(project=project, filters=ExportFilters()).count() if given else 0
    if given and labeled:
        why = f"none of its {labeled} labeled items matches {' '.join(given)}"
    else:
        why = "it has no labeled items yet"
    raise ValidationError(f"Nothing to export from {project.slug}: {why}. Nothing was written.")
