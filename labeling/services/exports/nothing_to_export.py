"""The one rule for an export that would hold no item: it is refused before any work, by the page, the API and
`manage.py export_dataset` alike. An empty dataset is never what the caller meant (a filter too strict, nothing
labeled yet), and a script that goes on to train on it would fail later and less clearly; nothing is written and no
job is made, so there is nothing to clean up.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from labeling.models import Project
from labeling.selectors.exports import ExportFilters, export_plan


def filters_in_words(filters: ExportFilters) -> list[str]:
    """The filters a page or API caller set, as the refusal names them ("min annotators 3")."""
    return [
        *(["only reviewed"] if filters.only_reviewed else []),
        *(["only agreed"] if filters.only_agreed else []),
        *([f"min annotators {filters.min_annotators}"] if filters.min_annotators else []),
        *([f"classes {', '.join(filters.classes)}"] if filters.classes else []),
    ]


def dataset_export_refuse_empty(*, project: Project, filters: ExportFilters, given: list[str] | None = None) -> None:
    """Raise ValidationError when the export would hold no item, naming the filters that left none. `given` is how
    the caller names the filters it set (the command's flags); by default the page's and API's words."""
    if export_plan(project=project, filters=filters).rows:
        return
    given = filters_in_words(filters) if given is None else given
    labeled = len(export_plan(project=project, filters=ExportFilters.from_dict({})).rows) if given else 0
    if given and labeled:
        why = f"none of its {labeled} labeled items matches {' '.join(given)}"
    else:
        why = "it has no labeled items yet"
    raise ValidationError(f"Nothing to export from {project.slug}: {why}. Nothing was written.")
