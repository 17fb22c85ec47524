"""Admin: staff manage who may create projects (the "project creators" group, under Authentication) and grant a
project its server folders here; no page or API of the product writes those."""

import copy

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from labeling import models
from labeling.forms import ProjectSettingsForm, backbone_pairing_check
from labeling.permissions import granted_roots_clean
from labeling.selectors.backbone_weights import weights_choices, weights_unavailable
from labeling.selectors.classes import class_name_clean, class_name_problem, class_name_twin, class_twin_note

# The project settings the settings page holds to a range (image size, annotators per image, retraining cadence,
# rates, GPUs). The admin edits them with the page's own fields, so it refuses what the page refuses, in the same
# words, and a range changed there changes here.
RANGED_SETTINGS = tuple(
    name
    for name, field in ProjectSettingsForm.base_fields.items()
    if getattr(field, "min_value", None) is not None or getattr(field, "max_value", None) is not None
)


class FolderLinesField(forms.CharField):
    """A list of folders edited as one folder per line."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 80})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value) -> list[str]:
        return [line.strip() for line in (super().to_python(value) or "").splitlines() if line.strip()]

    def validate(self, value) -> None:
        if self.required and not value:
            raise ValidationError(self.error_messages["required"], code="required")


class ProjectAdminForm(forms.ModelForm):
    granted_import_roots = FolderLinesField(
        label="Granted server folders",
        required=False,
        help_text="One absolute folder per line, each inside LABELLOOP_IMPORT_ROOTS (symlinks are resolved). This "
        "project's managers may import from these folders and its ML engineers may run batch inference on them; "
        "staff may use every LABELLOOP_IMPORT_ROOTS folder anyway.",
    )

    class Meta:
        model = models.Project
        fields = "__all__"  # noqa: DJ007 (the admin edits every field)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in RANGED_SETTINGS:
            if name in self.fields:
                self.fields[name] = copy.deepcopy(ProjectSettingsForm.base_fields[name])
        # Backbone weights: the settings page's menu (a free path would have the worker open any file), with its
        # choices, its unavailable options and its check (clean_backbone_weights, below), so the admin accepts what
        # the page accepts: a project keeps the value it has, "hub" needs LABELLOOP_MODEL_HUB=on.
        if "backbone_weights" in self.fields:
            self.current_weights = current = self.instance.backbone_weights if self.instance.pk else None
            field = self.fields["backbone_weights"] = copy.deepcopy(ProjectSettingsForm.base_fields["backbone_weights"])
            field.choices = weights_choices(current)
            field.widget.unavailable = weights_unavailable(current)

    clean_backbone_weights = ProjectSettingsForm.clean_backbone_weights

    def clean(self):
        """The settings page's pairing of backbone and weights, in its words: bundled weights only for the bundled
        backbones, registered weights only for their architecture."""
        data = super().clean()
        backbone_pairing_check(self, data)
        return data

    def clean_granted_import_roots(self) -> list[str]:
        return granted_roots_clean(self.cleaned_data["granted_import_roots"])


@admin.register(models.Project)
class ProjectAdmin(admin.ModelAdmin):
    form = ProjectAdminForm
    list_display = ("name", "slug", "task_type", "annotations_per_item", "created_at")
    # History, and empty once its user is deleted (the form would then refuse to save the project).
    readonly_fields = ("created_by",)
    search_fields = ("name", "slug")


@admin.register(models.Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "project", "role")
    list_filter = ("role",)


class LabelClassAdminForm(forms.ModelForm):
    class Meta:
        model = models.LabelClass
        fields = "__all__"  # noqa: DJ007 (the admin edits every field)

    def clean_name(self) -> str:
        """A new or changed name follows the settings page's rule (no "/", no control characters); an older row
        whose name broke it may still be saved unchanged."""
        name = self.cleaned_data["name"]
        if self.instance.pk and name == self.instance.name:
            return name
        problem = class_name_problem(name)
        if problem:
            raise ValidationError(problem[:1].upper() + problem[1:] + ("" if problem.endswith(".") else "."))
        return class_name_clean(name)  # stored as every other path stores it (trimmed, NFC)

    def clean(self) -> dict:
        """No twin among the class's siblings: the same name in any Unicode spelling ("Cafe" + a combining accent and
        "Café"), as the settings page and imports refuse it. An unchanged name of an older row is left alone."""
        cleaned = super().clean()
        name, project = cleaned.get("name"), cleaned.get("project")
        if name is None or project is None or (self.instance.pk and name == self.instance.name):
            return cleaned
        siblings = models.LabelClass.objects.filter(project=project, parent=cleaned.get("parent"))
        twin = class_name_twin(name, siblings.exclude(pk=self.instance.pk).values_list("name", flat=True))
        if twin is not None:
            self.add_error("name", f"A class named {twin!r} already exists here{class_twin_note(name, twin)}.")
        return cleaned


@admin.register(models.LabelClass)
class LabelClassAdmin(admin.ModelAdmin):
    form = LabelClassAdminForm
    list_display = ("name", "project", "parent", "hotkey", "archived")
    list_filter = ("project",)


@admin.register(models.Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("original_name", "project", "state", "split", "priority", "annotation_count")
    list_filter = ("project", "state", "split")
    raw_id_fields = ("lease_user",)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Annotations and reviews are history: the admin may look, never rewrite."""

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.Annotation)
class AnnotationAdmin(ReadOnlyAdmin):
    list_display = ("id", "item", "user", "skipped", "created_at")
    raw_id_fields = ("item", "undoes")


@admin.register(models.Review)
class ReviewAdmin(ReadOnlyAdmin):
    list_display = ("id", "annotation", "reviewer", "verdict", "created_at")


@admin.register(models.ResolvedLabel)
class ResolvedLabelAdmin(admin.ModelAdmin):
    list_display = ("item", "source", "updated_at")
    raw_id_fields = ("item",)


@admin.register(models.ReviewTask)
class ReviewTaskAdmin(admin.ModelAdmin):
    list_display = ("item", "reason", "score", "done")


@admin.register(models.Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "number", "kind", "status", "done", "total", "created_at")
    list_filter = ("kind", "status")
