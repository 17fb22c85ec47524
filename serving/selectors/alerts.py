"""Monitoring alerts of a project: what its latest finished drift report says is wrong, as banner text.

An alert holds while the latest finished DriftReport of the project's active version (serving/services/drift.py)
says so, and clears with the next report that does not, or when another version is made active: "drift" when its
p-value was below the threshold in force, "low_confidence" when the share of its window's predictions below the
project's low_confidence_threshold reached low_confidence_alert_share. The same texts go into the webhook
(serving/services/alerts.py).

`alerts_context` is a template context processor: on pages behind `project_view` it offers `project_alerts` (a
callable the template evaluates lazily, so pages that do not show it run no query) to members who may see the
Monitoring figures (manager, reviewer, ML engineer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, Q, Subquery
from django.db.models.functions import Right
from django.urls import NoReverseMatch, reverse

from labeling.models import Project
from labeling.permissions import Capability, role_can
from serving.models import (
    DEFAULT_DRIFT_P_THRESHOLD,
    DEFAULT_LOW_CONFIDENCE_ALERT_SHARE,
    DEFAULT_LOW_CONFIDENCE_THRESHOLD,
    DriftReport,
    ServingSettings,
)
from training.models import ModelVersion

DRIFT = "drift"
LOW_CONFIDENCE = "low_confidence"


@dataclass(frozen=True)
class ProjectAlert:
    kind: str  # DRIFT | LOW_CONFIDENCE
    message: str
    report_id: int
    created_at: datetime
    url: str | None  # the project's Monitoring page, when it is wired


@dataclass(frozen=True)
class AlertSettings:
    """When the project alerts and where the webhook goes (ServingSettings, or its defaults before the first save).
    The secret is not read, only its last 4 characters, for the page to tell one secret from another."""

    drift_p_threshold: float
    low_confidence_threshold: float
    low_confidence_alert_share: float
    webhook_url: str
    secret_hint: str  # the secret's last 4 characters ("" before the settings are saved)


def alert_settings_of(*, project_id: int) -> AlertSettings:
    fields = ("drift_p_threshold", "low_confidence_threshold", "low_confidence_alert_share", "webhook_url")
    rows = ServingSettings.objects.filter(project_id=project_id).annotate(secret_hint=Right("webhook_secret", 4))
    row = rows.values(*fields, "secret_hint").first()
    if row is None:
        return AlertSettings(
            DEFAULT_DRIFT_P_THRESHOLD, DEFAULT_LOW_CONFIDENCE_THRESHOLD, DEFAULT_LOW_CONFIDENCE_ALERT_SHARE, "", ""
        )
    return AlertSettings(**row)


def _thresholds(project_id: int) -> tuple[float, float]:
    row = ServingSettings.objects.filter(project_id=project_id).values_list(
        "low_confidence_threshold", "low_confidence_alert_share"
    )
    return row.first() or (DEFAULT_LOW_CONFIDENCE_THRESHOLD, DEFAULT_LOW_CONFIDENCE_ALERT_SHARE)


def _monitoring_url(slug: str) -> str | None:
    try:
        return reverse("serving:monitoring", args=[slug])
    except NoReverseMatch:
        return None


def report_alerts(report: DriftReport, *, slug: str | None = None) -> list[ProjectAlert]:
    """The alerts one finished report raises (none for a running or failed one)."""
    if report.status != DriftReport.Status.DONE:
        return []
    url = _monitoring_url(slug) if slug else None
    when = f"{report.window_start:%Y-%m-%d %H:%M} to {report.window_end:%H:%M} UTC"
    alerts = []
    if report.drifted:
        alerts.append(
            ProjectAlert(
                kind=DRIFT,
                message=(
                    f"Production inputs drifted from the project's images: version {report.version_number}, "
                    f"{report.n_production} predictions ({when}) against {report.n_reference} of the project's "
                    f"images, p = {report.p_value:.3g} < {report.threshold:g}."
                ),
                report_id=report.pk,
                created_at=report.created_at,
                url=url,
            )
        )
    if report.low_confidence_alert:
        below, share = _thresholds(report.project_id)
        alerts.append(
            ProjectAlert(
                kind=LOW_CONFIDENCE,
                message=(
                    f"{report.low_confidence_share:.0%} of {report.n_production} predictions of version "
                    f"{report.version_number} ({when}) had confidence below {below:g} "
                    f"(alert at {share:.0%})."
                ),
                report_id=report.pk,
                created_at=report.created_at,
                url=url,
            )
        )
    return alerts


def latest_finished_report(*, project_id: int) -> DriftReport | None:
    """The newest finished drift report of the version the project serves now (one query). A report of a version
    made inactive since speaks of a model that no longer answers: its alerts end with the switch, and the new
    version's first check raises its own. A project with no active version keeps its newest report."""
    active = ModelVersion.objects.filter(project_id=project_id, active=True)
    return (
        DriftReport.objects.filter(project_id=project_id, status=DriftReport.Status.DONE)
        .filter(Q(version_number=Subquery(active.values("number")[:1])) | ~Exists(active))
        .first()
    )


def project_alerts(project: Project) -> list[ProjectAlert]:
    """The alerts the project's latest finished drift report of its active version raises; [] before the first."""
    report = latest_finished_report(project_id=project.pk)
    return report_alerts(report, slug=project.slug) if report else []


def alerts_context(request) -> dict:
    """Context processor: `project_alerts` on project pages, for roles that see monitoring figures."""
    project = getattr(request, "project", None)
    if project is None or not role_can(getattr(request, "role", None), Capability.VIEW_METRICS):
        return {}
    return {"project_alerts": lambda: project_alerts(project)}
