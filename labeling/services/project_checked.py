"""Creating a project from a script (the REST API's POST /api/projects/, `manage.py project_create`): the input is
checked by the pages' own forms (the new-project page's, and the settings page's for the settings a script may also
give), so a script is held to exactly what the pages accept, with the same ranges and messages; any refusal creates
nothing."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.forms.models import model_to_dict

from labeling.forms import ProjectCreateForm, ProjectSettingsForm
from labeling.models import Project, TaskType
from labeling.selectors.classes import class_paths_checked
from labeling.services import projects as project_services

# The new-project page's fields. The settings page's others may be given at creation too: a script has no page to
# set them on afterwards. Each is checked by the form of the page it is on.
CREATE_FIELDS = ("name", "task_type", "instructions", "annotations_per_item")
MAX_CLASSES = 10_000


class ProjectInputInvalid(Exception):
    """A new project's input was refused; `errors` maps each field to its messages. Nothing was created."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items()))
        self.errors = errors


def settings_fields() -> list[str]:
    """The settings page's fields that the new-project page lacks."""
    return [name for name in ProjectSettingsForm._meta.fields if name not in CREATE_FIELDS]


def project_create_checked(*, created_by, data: dict, classes: list[str], slug: str = "") -> Project:
    """Create a project (its creator its manager) with its classes, from input checked as the pages check it: the
    new-project form for `CREATE_FIELDS`, the settings form for the settings (only those given are set; the rest
    keep the model's defaults), the page's class list rule (class_paths_checked) for the classes. ProjectInputInvalid,
    creating nothing, otherwise.

    Precondition: the caller checked that `created_by` may create projects (the API does; the command acts for
    the operator)."""
    defaults = model_to_dict(Project(), fields=ProjectSettingsForm._meta.fields)
    given = {
        key: value for key, value in data.items() if value is not None and key in (*CREATE_FIELDS, *settings_fields())
    }
    # The form checks a slug asked for as the page does: a taken one, or one that leaves nothing, is refused (the
    # service would otherwise pick "<slug>-2", and a script would then talk to an address it did not ask for).
    created = ProjectCreateForm(data={"task_type": TaskType.SINGLE, **defaults, **given, "slug": slug, "classes": ""})
    configured = ProjectSettingsForm(data={**defaults, **given})
    errors: dict[str, list[str]] = {}
    for form in (created, configured):
        for field, messages in form.errors.items():
            found = errors.setdefault("non_field_errors" if field == "__all__" else field, [])
            found += [message for message in messages if message not in found]
    numbered = enumerate(classes, start=1)
    paths, problems = class_paths_checked((f"Class {n} ({entry[:60]!r})", entry) for n, entry in numbered)
    if problems:
        errors["classes"] = problems
    if errors:
        raise ProjectInputInvalid(errors)
    values = {name: created.cleaned_data[name] for name in CREATE_FIELDS}
    values.update({name: configured.cleaned_data[name] for name in settings_fields() if name in given})
    try:
        with transaction.atomic():  # as the page: the project comes with all of its classes or not at all
            project = project_services.project_create(
                created_by=created_by, slug=created.cleaned_data["slug"], **values
            )
            project_services.label_classes_from_paths(project=project, paths=paths)
    except DjangoValidationError as exc:
        found = exc.message_dict if hasattr(exc, "error_dict") else {"classes": exc.messages}
        raise ProjectInputInvalid({"non_field_errors" if k == "__all__" else k: v for k, v in found.items()}) from exc
    return project
