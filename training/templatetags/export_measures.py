"""{{ row|accuracy_of:measured }}: a format's accuracy with its 95 % interval and n;
{{ measured|measured_note }}: what a model export's format table was measured on (from the numbers it stores);
{{ bytes|size_text }}: a size as the model card and manage.py export_model write it."""

from django import template

from training.services.export_formats import accuracy_text as _accuracy_text
from training.services.export_formats import measured_note as _measured_note
from training.services.export_formats import size_text as _size_text

register = template.Library()


@register.filter
def measured_note(measured: dict) -> str:
    return _measured_note(measured)


@register.filter
def size_text(size_bytes: int | str | None) -> str:
    return _size_text(size_bytes if isinstance(size_bytes, int) else None)  # a missing value reaches a filter as ""


@register.filter
def accuracy_of(row: dict, measured: dict) -> str:
    return _accuracy_text(row, measured)
