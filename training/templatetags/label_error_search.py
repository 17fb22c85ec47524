"""{% label_error_search_pending project as pending %}: the label-error search still queued or running (a Job) or
None, for pages that show a figure the search makes (the model pages' cross-validated estimate)."""

from django import template

from training.selectors.label_errors import label_error_search_pending as _pending

register = template.Library()


@register.simple_tag
def label_error_search_pending(project):
    return _pending(project=project) if project is not None else None
