"""The site's form renderer (settings.FORM_RENDERER): Django's, except that `form.as_p` comes from
templates/forms/p.html, which puts each field's errors under that field rather than above its label."""

from __future__ import annotations

from django.forms.renderers import DjangoTemplates
from django.template.loader import get_template

AS_P_TEMPLATES = {"django/forms/p.html": "forms/p.html"}


class FormRenderer(DjangoTemplates):
    def get_template(self, template_name: str):
        if template_name in AS_P_TEMPLATES:
            return get_template(AS_P_TEMPLATES[template_name])
        return super().get_template(template_name)
