"""{{ measured|measured_note }}: what a model export's format table was measured on (from the numbers it stores)."""

from django import template

from training.services.export_formats import measured_note as _measured_note

register = template.Library()


@register.filter
def measured_note(measured: dict) -> str:
    return _measured_note(measured)
