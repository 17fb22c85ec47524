"""Monitoring alerts as webhooks: a signed JSON POST to the URL a manager set in the project's serving settings.

When a drift report finishes with an alert (serving/selectors/alerts.py says which), `drift_alert_notify` queues
`serving.tasks.alert_webhook_send_task` (default queue) after commit. It is sent when the alert is new (the
previous finished report did not raise the same kinds) or the last webhook for those kinds is older than
WEBHOOK_REMIND_HOURS, so an hourly check of a drift that persists does not send every hour.

The POST: body = the JSON of `alert_payload`, `Content-Type: application/json`, `X-Labelloop-Event: alert`,
`X-Labelloop-Signature: sha256=<hex HMAC-SHA256 of the body with the project's webhook_secret>`. One attempt with a
WEBHOOK_TIMEOUT_SECONDS timeout and no retries (the next alert sends again): a receiver that is down never piles up
work on the queue.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from labeling.models import Project
from labeling.services.dispatch import task_send_on_commit
from serving.models import DriftReport, ServingSettings, new_webhook_secret
from serving.selectors.alerts import report_alerts
from serving.services.webhook_address import webhook_address_refusal, webhook_opener

logger = logging.getLogger(__name__)

WEBHOOK_TASK = "serving.tasks.alert_webhook_send_task"
WEBHOOK_TIMEOUT_SECONDS = 5.0
WEBHOOK_REMIND_HOURS = 24
SIGNATURE_HEADER = "X-Labelloop-Signature"


ALERT_FIELDS = ("webhook_url", "drift_p_threshold", "low_confidence_threshold", "low_confidence_alert_share")


def alert_settings_set(*, project: Project, **values) -> ServingSettings:
    """Set any of ALERT_FIELDS on the project's serving settings. Raises ValidationError (nothing saved) for an
    unknown field, a threshold out of range or a URL that is not http(s)."""
    unknown = set(values) - set(ALERT_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown alert settings: {', '.join(sorted(unknown))}.")
    url = values.get("webhook_url")
    refusal = webhook_address_refusal(url) if url else ""
    if refusal:
        raise ValidationError({"webhook_url": refusal})
    with transaction.atomic():
        row, _ = ServingSettings.objects.select_for_update().get_or_create(project=project)
        for name, value in values.items():
            setattr(row, name, value)
        row.full_clean(exclude=["project"])
        row.save()
    return row


def webhook_secret_rotate(*, project: Project) -> str:
    """A new webhook secret for the project (receivers must be given it); returns it."""
    secret = new_webhook_secret()
    ServingSettings.objects.update_or_create(project=project, defaults={"webhook_secret": secret})
    return secret


def webhook_signature(*, secret: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the exact body bytes with the project's webhook secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def alert_payload(*, report: DriftReport) -> dict:
    project = report.project
    alerts = report_alerts(report, slug=project.slug)
    return {
        "event": "alert",
        "project": {"slug": project.slug, "name": project.name},
        "alerts": [{"kind": a.kind, "message": a.message} for a in alerts],
        "report": {
            "id": report.pk,
            "version_number": report.version_number,
            "window_start": report.window_start.isoformat(),
            "window_end": report.window_end.isoformat(),
            "n_production": report.n_production,
            "n_reference": report.n_reference,
            "statistic": report.statistic,
            "p_value": report.p_value,
            "threshold": report.threshold,
            "drifted": report.drifted,
            "low_confidence_share": report.low_confidence_share,
            "created_at": report.created_at.isoformat(),
        },
        "sent_at": timezone.now().isoformat(),
    }


def _kinds(report: DriftReport) -> set[str]:
    return {a.kind for a in report_alerts(report)}


def drift_alert_notify(*, report: DriftReport) -> bool:
    """Queue the webhook for a finished report that raises an alert, unless the same alert was sent within
    WEBHOOK_REMIND_HOURS. Returns whether it was queued. Call inside or outside a transaction."""
    kinds = _kinds(report)
    if not kinds:
        return False
    url = ServingSettings.objects.filter(project_id=report.project_id).values_list("webhook_url", flat=True).first()
    if not url:
        return False
    earlier = DriftReport.objects.filter(
        project_id=report.project_id, status=DriftReport.Status.DONE, created_at__lte=report.created_at
    ).exclude(pk=report.pk)
    previous = earlier.first()
    if previous is not None and _kinds(previous) >= kinds:
        recent = earlier.filter(alerted_at__gte=timezone.now() - timedelta(hours=WEBHOOK_REMIND_HOURS))
        if any(_kinds(r) >= kinds for r in recent[:50]):
            return False
    with transaction.atomic():
        DriftReport.objects.filter(pk=report.pk).update(alerted_at=timezone.now())
        task_send_on_commit(WEBHOOK_TASK, report.pk)
    return True


def alert_webhook_send(*, report_id: int) -> dict:
    """POST the report's alert to the project's webhook URL once. Returns {"status": http status} or
    {"error": why}; never raises for a receiver's failure."""
    report = DriftReport.objects.select_related("project").filter(pk=report_id).first()
    if report is None:
        return {"error": "no such report"}
    row = ServingSettings.objects.filter(project_id=report.project_id).values("webhook_url", "webhook_secret").first()
    url = (row or {}).get("webhook_url") or ""
    if not url:
        return {"error": "no webhook URL"}
    refusal = webhook_address_refusal(url)
    if refusal:
        logger.warning("alert webhook of project %s not sent: %s", report.project_id, refusal)
        return {"error": refusal}
    body = json.dumps(alert_payload(report=report), separators=(",", ":")).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Labelloop-Webhook",
            "X-Labelloop-Event": "alert",
            SIGNATURE_HEADER: webhook_signature(secret=row["webhook_secret"], body=body),
        },
    )
    try:
        with webhook_opener.open(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        logger.warning("alert webhook of project %s to %s failed: %s", report.project_id, url, exc)
        return {"error": str(getattr(exc, "reason", exc))}
    if status >= 300:
        logger.warning("alert webhook of project %s to %s answered %s", report.project_id, url, status)
    return {"status": status}
