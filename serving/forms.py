"""Forms of the serving pages shared by more than one view module."""

from __future__ import annotations

from django import forms
from django.core.validators import URLValidator

from serving.models import ServingSettings
from serving.selectors.alerts import AlertSettings
from serving.services.alerts import ALERT_FIELDS

URL_MESSAGE = "The webhook URL must be a full address starting with http:// or https://, e.g. https://hooks.example.org/labelloop."


class AlertSettingsForm(forms.ModelForm):
    """The Monitoring page's Alerts card (managers). The thresholds' ranges are ServingSettings' own validators (the
    form checks them on an unsaved row); the service saves."""

    # Not the model's URLField: its form field would read "hooks.example.org/x" as http://hooks.example.org/x.
    webhook_url = forms.CharField(
        required=False,
        max_length=500,
        validators=[URLValidator(schemes=["http", "https"], message=URL_MESSAGE)],
        label="Webhook URL",
        help_text="An http:// or https:// address that gets a signed JSON POST for each new alert. Empty: no webhook.",
    )

    class Meta:
        model = ServingSettings
        fields = ALERT_FIELDS
        labels = {
            "drift_p_threshold": "Drift when the p-value is below",
            "low_confidence_threshold": "Low confidence below",
            "low_confidence_alert_share": "Alert when this share of predictions has low confidence",
        }
        help_texts = {
            "drift_p_threshold": "0 to 0.5 (default 0.01).",
            "low_confidence_threshold": "0 to 1 (default 0.5).",
            "low_confidence_alert_share": "0 to 1; 0.3 = 30 % (default).",
        }

    @classmethod
    def of(cls, settings: AlertSettings) -> AlertSettingsForm:
        return cls(initial={name: getattr(settings, name) for name in ALERT_FIELDS})
