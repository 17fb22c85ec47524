"""`manage.py project_create NAME --owner USER [--slug S] [--kind single|multi] [--classes a,b/c | --classes-file FILE]
[settings…]`: create a project as POST /api/projects/ does, checked by the same forms.

The settings options are the new-project and settings pages' fields (`--annotations-per-item 3`, `--image-size 192`,
`--al-strategy entropy`, `--no-flip-average`…; `--help` lists them with their ranges); an option left out keeps the
default of a project made on the page. A taxonomy is a class list with paths ("animals/cat"). The owner, required,
becomes the project's manager: a project records who made it, and one without a manager could be run by no one
(the API's creator is its caller; a shell has no caller to stand in). A classes file skips blank lines and comment
lines ("# ..."; "#1" is a class). Exit status 1 with every refused field named, and nothing created, on bad input.
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


def _comment(line: str) -> bool:
    """A classes file's comment line: "#" alone or followed by whitespace ("# birds"). A class cannot sensibly
    start with "# ", while "#1" or "#hashtag" can be a class name."""
    text = line.strip()
    return text == "#" or (text.startswith("#") and text[1].isspace())


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
        classes.add_argument(
            "--classes-file", help='a UTF-8 file with one class path a line; blank lines and comment lines ("#" '
            'then a space or the line\'s end, e.g. "# birds") are skipped, so "#1" is still a class',
        )  # fmt: skip
        parser.add_argument(
            "--owner", metavar="USER", required=True,
            help="an active user, who becomes the project's manager (required: a project needs someone to run it)",
        )  # fmt: skip
        for name in (*OPTION_FIELDS, *settings_fields()):
            field, option = _field(name), "--" + name.replace("_", "-")
            if isinstance(field, forms.BooleanField):
                parser.add_argument(option, dest=name, action=argparse.BooleanOptionalAction, help=_help(field))
            else:
                parser.add_argument(option, dest=name, metavar="VALUE", help=_help(field))

    def handle(self, *args, **options):
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
        self.stdout.write(
            self.style.SUCCESS(
                f"Project {project.name!r} created: slug {project.slug}, {count} classes, manager "
                f"{owner.get_username()}."
            )
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
            return [line for line in text.splitlines() if line.strip() and not _comment(line)]
        return []
