"""The Monitoring page's Alerts card: when the project alerts (drift p-value threshold, low-confidence threshold and
share) and where the webhook goes (URL, signing secret). Managers save them; reviewers and ML engineers see the
thresholds read-only on the page, and whether a webhook is set, not its address. Writes go through
serving/services/alerts.py; a refused value re-renders the page with the reason and changes nothing."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.views.decorators.http import require_POST

from labeling.permissions import Capability, project_view
from serving.forms import AlertSettingsForm
from serving.services.alerts import alert_settings_set, webhook_secret_rotate
from serving.views.monitoring import monitoring_page

NOT_SAVED = "Alert settings not saved: fix the values marked in the Alerts card. Nothing changed."


def _refused(request: HttpRequest, form: AlertSettingsForm) -> HttpResponse:
    messages.error(request, NOT_SAVED)
    return monitoring_page(request, alerts_form=form, status=400)


@require_POST
@project_view(Capability.MANAGE)
def alert_settings_save(request: HttpRequest, slug: str) -> HttpResponse:
    form = AlertSettingsForm(request.POST)
    if not form.is_valid():
        return _refused(request, form)
    try:
        alert_settings_set(project=request.project, **form.cleaned_data)
    except ValidationError as exc:  # the model's own checks, should the form's ranges ever differ from them
        for field, errors in getattr(exc, "message_dict", {None: exc.messages}).items():
            form.add_error(field if field in form.fields else None, errors)
        return _refused(request, form)
    url = form.cleaned_data["webhook_url"]
    messages.success(request, f"Alert settings saved. Webhook: {url}." if url else "Alert settings saved. No webhook.")
    return redirect("serving:monitoring", slug=slug)


@require_POST
@project_view(Capability.MANAGE)
def webhook_secret_new(request: HttpRequest, slug: str) -> HttpResponse:
    """A new signing secret, shown in this answer only: the receiver must be given it; the old one stops at once."""
    secret = webhook_secret_rotate(project=request.project)
    messages.success(
        request, "New webhook secret made. Copy it now: it is not shown again. The old one no longer signs."
    )
    response = monitoring_page(request, new_secret=secret)
    response["Cache-Control"] = "no-store"
    return response


urlpatterns = [
    path("p/<slug:slug>/serving/monitoring/alerts/", alert_settings_save, name="alert_settings"),
    path("p/<slug:slug>/serving/monitoring/alerts/secret/", webhook_secret_new, name="webhook_secret"),
]
