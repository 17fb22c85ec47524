"""`manage.py project_create NAME [--slug S] [--kind single|multi] [--classes a,b/c | --classes-file FILE]
[--owner USER] [settings…]`: create a project as POST /api/projects/ does, checked by the same forms.

The settings options are the new-project and settings pages' fields (`--annotations-per-item 3`, `--image-size 192`,
`--al-strategy entropy`, `--no-flip-average`…; `--help` lists them with their ranges); an option left out keeps the
default of a project made on the page. A taxonomy is a class list with paths ("animals/cat"). The owner becomes the
project's manager. Exit status 1 with every refused field named, and nothing created, on bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from django import forms
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from labeling.forms import ProjectCreateForm, ProjectSettingsForm
from labeling.models import TaskType
from labeling.services.project_checked import ProjectInputInvalid, project_create_checked, settings_fields

# The options beside NAME, --slug, --kind and the classes: each a field of a page's form, checked by that form.
OPTION_FIELDS = ("instructions", "annotations_per_item")


def _field(name: str) -> forms.Field:
    return ProjectCreateForm.base_fields.get(name) or ProjectSettingsForm.base_fields[name]


def _help(field: forms.Field) -> str:
    text = str(field.help_text or field.label or "")
    low, high = getattr(field, "min_value", None), getattr(field, "max_value", None)
    if low is not None and high is not None and f"{low} to {high}" not in text:
        text += f" ({low} to {high})"
    choices = getattr(field, "choices", None)
    if choices and not isinstance(field, forms.ModelChoiceField):
        text += " Choices: " + ", ".join(str(value) for value, _ in choices if value != "") + "."
    return text.replace("%", "%%")


class Command(BaseCommand):
    help = "Create a project (its owner its manager) with its classes and settings, as the new-project page does."

    def add_arguments(self, parser):
        parser.add_argument("name", metavar="NAME")
        parser.add_argument("--slug", default="", help="the project's address (default: made from the name)")
        parser.add_argument(
            "--kind", dest="task_type", choices=TaskType.values, default=TaskType.SINGLE,
            help="single: one class per image; multi: any number (a taxonomy is a class list with a/b paths)",
        )  # fmt: skip
        classes = parser.add_mutually_exclusive_group()
        classes.add_argument("--classes", help='comma-separated class paths: "cat,dog" or "animals/cat,animals/dog"')
        classes.add_argument("--classes-file", help="a UTF-8 file with one class path a line (blank lines skipped)")
        parser.add_argument("--owner", metavar="USER", help="the user who becomes the project's manager")
        for name in (*OPTION_FIELDS, *settings_fields()):
            field, option = _field(name), "--" + name.replace("_", "-")
            if isinstance(field, forms.BooleanField):
                parser.add_argument(option, dest=name, action=argparse.BooleanOptionalAction, help=_help(field))
            else:
                parser.add_argument(option, dest=name, metavar="VALUE", help=_help(field))

    def handle(self, *args, **options):
        owner = None
        if options["owner"]:
            owner = get_user_model().objects.filter(username=options["owner"], is_active=True).first()
            if owner is None:
                raise CommandError(f"No active user {options['owner']!r}; nothing was created.")
        classes = self._classes(options)
        data = {name: options[name] for name in ("name", "task_type", *OPTION_FIELDS, *settings_fields())}
        try:
            project = project_create_checked(created_by=owner, data=data, classes=classes, slug=options["slug"])
        except ProjectInputInvalid as exc:
            lines = [f"  {field}: {message}" for field, messages in exc.errors.items() for message in messages]
            raise CommandError("The project was not created:\n" + "\n".join(lines)) from exc
        count = project.classes.count()
        manager = f"manager {owner.get_username()}" if owner else "no members yet (add a manager in the admin)"
        self.stdout.write(
            self.style.SUCCESS(f"Project {project.name!r} created: slug {project.slug}, {count} classes, {manager}.")
        )

    def _classes(self, options) -> list[str]:
        if options["classes"] is not None:
            return options["classes"].split(",")
        if options["classes_file"]:
            path = Path(options["classes_file"])
            try:
                text = path.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"Cannot read the classes file {path}: {exc}. Nothing was created.") from exc
            return [line for line in text.splitlines() if line.strip()]
        return []
