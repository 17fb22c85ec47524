"""Forms of the serving pages shared by more than one view module."""

from __future__ import annotations

from django import forms
from django.core.validators import URLValidator

from serving.selectors.alerts import AlertSettings

URL_MESSAGE = "The webhook URL must be a full address starting with http:// or https://, e.g. https://hooks.example.org/labelloop."


class AlertSettingsForm(forms.Form):
    """The Monitoring page's Alerts card (managers): the ranges are ServingSettings' validators."""

    webhook_url = forms.CharField(
        required=False,
        max_length=500,
        validators=[URLValidator(schemes=["http", "https"], message=URL_MESSAGE)],
        label="Webhook URL",
        help_text="An http:// or https:// address that gets a signed JSON POST for each new alert. Empty: no webhook.",
    )
    drift_p_threshold = forms.FloatField(
        min_value=0.0, max_value=0.5, label="Drift when the p-value is below", help_text="0 to 0.5 (default 0.01)."
    )
    low_confidence_threshold = forms.FloatField(
        min_value=0.0, max_value=1.0, label="Low confidence below", help_text="0 to 1 (default 0.5)."
    )
    low_confidence_alert_share = forms.FloatField(
        min_value=0.0,
        max_value=1.0,
        label="Alert when this share of predictions has low confidence",
        help_text="0 to 1; 0.3 = 30 % (default).",
    )

    @classmethod
    def of(cls, settings: AlertSettings) -> AlertSettingsForm:
        return cls(
            initial={
                "webhook_url": settings.webhook_url,
                "drift_p_threshold": settings.drift_p_threshold,
                "low_confidence_threshold": settings.low_confidence_threshold,
                "low_confidence_alert_share": settings.low_confidence_alert_share,
            }
        )
