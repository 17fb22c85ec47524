from django import forms
from django.contrib import admin

from training import models
from training.services.weights import WeightsRegistrationError, backbone_weights_prepare, backbone_weights_save


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

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            prepared = backbone_weights_prepare(
                architecture=data["architecture"], path=data["path"], name=data.get("name") or None,
                mean=_floats(data.get("mean") or "", "mean"), std=_floats(data.get("std") or "", "std"), isolated=True,
            )  # fmt: skip
        except WeightsRegistrationError as exc:
            raise forms.ValidationError(f"Nothing registered: {exc}") from exc
        self.prepared = prepared
        return data


@admin.register(models.BackboneWeights)
class BackboneWeightsAdmin(admin.ModelAdmin):
    list_display = ("name", "architecture", "sha256", "size", "created_by", "created_at")
    search_fields = ("name", "architecture", "sha256")
    readonly_fields = ("architecture", "path", "sha256", "size", "mean", "std", "created_by", "created_at")

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = BackboneWeightsAddForm
        return super().get_form(request, obj, change=change, **kwargs)

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
