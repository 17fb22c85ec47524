from django import forms
from django.contrib import admin

from serving.models import ApiKey, PredictionLog, ServingSettings
from serving.services.webhook_address import webhook_address_refusal


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "name", "project", "created_at", "revoked_at")
    list_filter = ("project",)
    readonly_fields = ("prefix", "key_hash", "created_at", "created_by")  # a key is made on its page, never here


class ServingSettingsForm(forms.ModelForm):
    """The webhook URL held to the Monitoring page's rule (public addresses only, unless
    LABELLOOP_WEBHOOK_PRIVATE_ADDRESSES is on): a URL the worker would refuse to POST to is refused here."""

    webhook_url = forms.URLField(required=False, max_length=500, assume_scheme="https")

    class Meta:
        model = ServingSettings
        fields = ("project", "keep_images_days", "drift_p_threshold", "low_confidence_threshold",
                  "low_confidence_alert_share", "webhook_url", "webhook_secret", "auto_queue_per_day")  # fmt: skip

    def clean_webhook_url(self) -> str:
        url = self.cleaned_data.get("webhook_url") or ""
        refusal = webhook_address_refusal(url) if url else ""
        if refusal:
            raise forms.ValidationError(refusal)
        return url


@admin.register(ServingSettings)
class ServingSettingsAdmin(admin.ModelAdmin):
    form = ServingSettingsForm
    list_display = ("project", "keep_images_days")


@admin.register(PredictionLog)
class PredictionLogAdmin(admin.ModelAdmin):
    list_display = ("uid", "project", "created_at", "version_number", "top_class", "confidence")
    list_filter = ("project",)
    date_hierarchy = "created_at"
