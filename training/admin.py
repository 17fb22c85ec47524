from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect

from training import models
from training.services.weights import (
    WeightsNameTakenError,
    WeightsRegistrationError,
    backbone_weights_prepare,
    backbone_weights_save,
)


@admin.register(models.TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "status", "trigger", "mode", "mode_reason", "label_count", "device", "created_at")
    list_filter = ("status", "mode")


@admin.register(models.ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("project", "number", "architecture", "label_count", "active", "created_at")


@admin.register(models.Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ("item", "model_version", "predicted_class", "confidence", "uncertainty")
    raw_id_fields = ("item",)


def _floats(text: str, what: str) -> list[float] | None:
    if not text.strip():
        return None
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError as exc:
        message = "Numbers separated by spaces, one per channel (0.485 0.456 0.406)."
        raise forms.ValidationError({what: message}) from exc


# Saving blocks while the child process hashes the file and loads it into timm (over 30 s for 45 MB on a busy 2-core
# machine): the form says so, and static/js/admin-weights.js sends it once (a second click would find the name taken).
ADD_NOTE = (
    "Saving hashes the file and test-loads it into the architecture before anything is stored: this takes tens of "
    "seconds for a large file. Click Save once and keep the page open."
)


def _name_taken(exc: WeightsNameTakenError, *, defaulted: bool) -> str:
    """The service's taken-name refusal in the form's terms (its Name field, not the command's --name)."""
    which = " (the file's name, used when Name is empty)" if defaulted else ""
    return f"Weights named {exc.name!r}{which} are already registered; choose another Name."


class BackboneWeightsAddForm(forms.ModelForm):
    """Registration in the admin: the file is validated in a child process (no torch in the web process)."""

    name = forms.CharField(
        max_length=100, required=False, help_text="Shown in the project settings; default: the file name."
    )
    path = forms.CharField(
        label="File", max_length=500, help_text="Path of the .safetensors or .pth state dict, readable by every worker."
    )
    mean = forms.CharField(required=False, help_text="Per-channel mean, e.g. 0.485 0.456 0.406; empty: timm's.")
    std = forms.CharField(required=False, help_text="Per-channel std, e.g. 0.229 0.224 0.225; empty: timm's.")

    class Meta:
        model = models.BackboneWeights
        fields = ["name", "architecture", "path", "mean", "std"]
        help_texts = {"architecture": "A timm architecture name, e.g. vit_small_patch14_dinov2 or resnet50."}

    class Media:
        js = ["js/admin-weights.js"]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            prepared = backbone_weights_prepare(
                architecture=data["architecture"], path=data["path"], name=data.get("name") or None,
                mean=_floats(data.get("mean") or "", "mean"), std=_floats(data.get("std") or "", "std"), isolated=True,
            )  # fmt: skip
        except WeightsNameTakenError as exc:
            raise forms.ValidationError({"name": _name_taken(exc, defaulted=not data.get("name"))}) from exc
        except WeightsRegistrationError as exc:
            raise forms.ValidationError(f"Nothing registered: {exc}") from exc
        self.prepared = prepared
        return data

    def validate_unique(self):
        # The model's one unique field, name, is the service's rule (checked in clean, before and after the file is
        # read, and by the save): Django's own check would say it a second time, in other words.
        pass


@admin.register(models.BackboneWeights)
class BackboneWeightsAdmin(admin.ModelAdmin):
    list_display = ("name", "architecture", "sha256", "size", "created_by", "created_at")
    search_fields = ("name", "architecture", "sha256")
    readonly_fields = ("architecture", "path", "sha256", "size", "mean", "std", "created_by", "created_at")

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = BackboneWeightsAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": BackboneWeightsAddForm.Meta.fields, "description": ADD_NOTE})]
        return super().get_fieldsets(request, obj)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except WeightsRegistrationError as exc:
            # The save found the name or file registered since the form's check (the admin's transaction is rolled
            # back): say so on the add page rather than answer with a server error.
            why = _name_taken(exc, defaulted=False) if isinstance(exc, WeightsNameTakenError) else f"{exc}."
            self.message_user(request, f"Nothing registered: {why[0].lower()}{why[1:]}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def get_readonly_fields(self, request, obj=None):
        # A registered file is what its sha256 says: to use other bytes, register them anew.
        return self.readonly_fields if obj is not None else ()

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        for field in ("name", "architecture", "path", "sha256", "size", "mean", "std"):
            setattr(obj, field, getattr(form.prepared, field))  # what was validated, not the form's text
        backbone_weights_save(weights=obj, created_by=request.user)
