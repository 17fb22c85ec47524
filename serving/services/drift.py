"""Drift checks: are the production inputs of a project's active model still like the project's images?

One check compares a window of the prediction log with a random sample of the project's images
(serving/services/drift_reference.py, embedded by the same ONNX model as production) by MMD with a permutation test
(serving/services/drift_stats.py), and stores a DriftReport:

- the window is rolling: the latest WINDOW_MAX predictions of the active version that carry an embedding;
- the hourly task (`drift_checks_run_due`, beat entry "drift-check", default queue) checks a project when at least
  MIN_NEW_PREDICTIONS of them arrived since its previous report's window; `drift_check_run` (the
  `manage.py drift_check` command) checks now, with at least MIN_ON_DEMAND predictions;
- progress: the report row is created "running" when the check starts, its `progress` moves from 0 to 1, and it
  ends "done" (statistic, p_value, drifted, low_confidence_share) or "failed" (error). One check per project at a
  time (the project's ServingSettings row is the lock); a "running" row older than STALE_RUNNING is a crashed
  worker's and is marked failed;
- `drifted` = p_value < the project's drift_p_threshold; `low_confidence_alert` = the share of the window's
  predictions with confidence below low_confidence_threshold reached low_confidence_alert_share. Either alert
  queues the webhook (serving/services/alerts.py); banners read serving/selectors/alerts.py.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import numpy as np
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from labeling.constants import Progress
from labeling.models import Project
from serving.models import DriftReport, PredictionLog, ServingSettings
from serving.selectors.models import active_version_of
from serving.selectors.send_selection import Order, Selection, send_candidates
from serving.services.alerts import drift_alert_notify
from serving.services.drift_reference import (
    ReferenceUnavailable,
    drift_reference_sweep,
    reference_cached,
    reference_embeddings,
)
from serving.services.drift_stats import DEFAULT_PERMUTATIONS, low_confidence_share, mmd_permutation_test
from training.models import ModelVersion

logger = logging.getLogger(__name__)

WINDOW_MAX = 500
MIN_NEW_PREDICTIONS = 100
MIN_ON_DEMAND = 30
PERMUTATIONS = DEFAULT_PERMUTATIONS
SEED = 0
STALE_RUNNING = timedelta(hours=1)
DRIFT_CHECK_TASK = "serving.tasks.drift_check_task"
REFERENCE_SHARE = 0.8  # of the progress bar: embedding the reference (the permutations take the rest)


class DriftCheckError(Exception):
    """A check that cannot run (no model, too few predictions, a check already running): the message says why."""


def _window(project_id: int, version_number: int):
    return PredictionLog.objects.filter(
        project_id=project_id, version_number=version_number, embedding__isnull=False
    ).order_by("-created_at", "-pk")


def embedded_predictions(*, project_id: int, version_number: int) -> int:
    """How many predictions of the version carry an embedding (what a drift check's window is made of)."""
    return _window(project_id, version_number).count()


def _one_file(rows: list[tuple]) -> tuple[list[tuple], str | None]:
    """The window's rows answered by one ONNX file (the one that answered most of them, the latest on a tie) and
    that file; rows logged before the file was recorded are used only when none names one. A service switched
    between FP32 and INT8 logs embeddings of two graphs, and a reference can be made by only one of them."""
    counts = Counter(row[-1] for row in rows if row[-1])  # rows newest first: on a tie the latest file wins
    if not counts:
        return rows, None
    model_file = counts.most_common(1)[0][0]
    return [r for r in rows if r[-1] == model_file], model_file


def _embeddings(blobs: list[bytes]) -> np.ndarray:
    sizes = {len(b) for b in blobs}
    if len(sizes) != 1:
        raise DriftCheckError("the window's embeddings differ in size (more than one export of the version?)")
    return np.frombuffer(b"".join(bytes(b) for b in blobs), dtype=np.float16).reshape(len(blobs), -1)


def _start(project: Project, version_number: int, rows: list[tuple], model_file: str | None) -> DriftReport:
    """The running report, created under the project's settings row lock; raises if a check is running."""
    with transaction.atomic():
        serving_settings, _ = ServingSettings.objects.get_or_create(project=project)
        serving_settings = ServingSettings.objects.select_for_update().get(pk=serving_settings.pk)
        running = DriftReport.objects.filter(project=project, status=DriftReport.Status.RUNNING)
        running.filter(created_at__lt=timezone.now() - STALE_RUNNING).update(
            status=DriftReport.Status.FAILED, error="the worker running this check stopped", finished_at=timezone.now()
        )
        _refuse_if_running(project)
        return DriftReport.objects.create(
            project=project,
            version_number=version_number,
            window_start=min(r[0] for r in rows),
            window_end=max(r[0] for r in rows),
            n_production=len(rows),
            threshold=serving_settings.drift_p_threshold,
            permutations=PERMUTATIONS,
            model_file=model_file or "",
        )


def _refuse_if_running(project: Project) -> None:
    """DriftCheckError when a check of the project is running (one started within STALE_RUNNING)."""
    running = DriftReport.objects.filter(project=project, status=DriftReport.Status.RUNNING)
    if running.filter(created_at__gte=timezone.now() - STALE_RUNNING).exists():
        raise DriftCheckError("a drift check of this project is already running")


def _checkable(project: Project, minimum: int, fields: tuple[str, ...] = ("created_at", "confidence", "embedding")):
    """(active version, the window's rows of one ONNX file, that file); DriftCheckError when there is nothing to
    check: no active version, or fewer than `minimum` such predictions. Each row holds `fields`, then its file (the
    button's precheck asks for no field: it counts rows, and leaves the 500 embeddings to the worker)."""
    active = active_version_of(project_id=project.pk)
    if active is None:
        raise DriftCheckError("the project has no active model version")
    window = _window(project.pk, active.number).values_list(*fields, "model_file")
    rows, model_file = _one_file(list(window[:WINDOW_MAX]))
    if len(rows) < minimum:
        answered = f" (of those {model_file} answered, the file that answered most)" if model_file else ""
        fewer = f" (or now, on those: manage.py drift_check {project.slug} --min-predictions {len(rows)})"
        elsewhere = most_drifted_elsewhere(
            project=project, selection=Selection(order=Order.MOST_DRIFTED), skip=active.number
        )
        raise DriftCheckError(
            f"{len(rows)} predictions of version {active.number} carry an embedding; a drift check needs {minimum}"
            f"{answered}. A check compares the active version's own predictions: it can run once the prediction "
            f"service has answered {minimum} with version {active.number}{fewer if len(rows) >= 2 else ''}."
            + (f" {elsewhere}" if elsewhere else "")
        )
    return active, rows, model_file


def most_drifted_elsewhere(*, project: Project, selection: Selection, skip: int) -> str:
    """The way to "most drifted" while version `skip` has no drift reference: the newest other version whose
    project images a drift check embedded (its reference is cached) and that answered some of the selection's
    candidates with an embedding, named with the option that picks it; "" when there is none."""
    candidates = send_candidates(project=project, selection=replace(selection, version_number=None))
    counts = (
        candidates.exclude(version_number=skip)
        .exclude(embedding=None)
        .values_list("version_number")
        .annotate(n=Count("pk"))
        .order_by("-version_number")
    )
    pks = dict(ModelVersion.objects.filter(project=project).values_list("number", "pk"))
    for number, n in counts:
        if number in pks and reference_cached(version_pk=pks[number]) is not None:
            return (
                f"Version {number}'s reference images are embedded already (its last drift check) and {n} of its "
                f"unsent predictions carry an embedding: its most drifted can be sent now with model version "
                f"{number} (manage.py send_to_queue {project.slug} --most-drifted N --model-version {number}; "
                f"Model version {number} on the Monitoring page)."
            )
    return ""


def drift_check_run(*, project: Project, minimum: int = MIN_ON_DEMAND, progress: Progress | None = None) -> DriftReport:
    """Check the latest WINDOW_MAX predictions of the active version now; returns the finished report.

    Raises DriftCheckError (nothing stored) when the project has no active version, fewer than `minimum`
    predictions with an embedding, or a check running. A check that fails later (no ONNX export, unreadable
    images) leaves a "failed" report with the reason and raises DriftCheckError."""
    active, rows, model_file = _checkable(project, minimum)
    report = _start(project, active.number, rows, model_file)

    def step(fraction: float, message: str) -> None:
        DriftReport.objects.filter(pk=report.pk).update(progress=round(min(max(fraction, 0.0), 1.0), 4))
        if progress:
            progress(round(10_000 * fraction), 10_000, message)

    try:
        production = _embeddings([r[2] for r in rows]).astype(np.float32)
        reference = reference_embeddings(
            project_id=project.pk,
            version_pk=active.pk,
            version_number=active.number,
            model_file=model_file,
            progress=lambda done, total, message="": step(REFERENCE_SHARE * done / max(total, 1), message),
        )
        if reference.shape[1] != production.shape[1]:
            raise DriftCheckError(
                f"production embeddings have {production.shape[1]} dimensions but the reference has "
                f"{reference.shape[1]}: was version {active.number} exported again with another model?"
            )
        result = mmd_permutation_test(
            production,
            reference,
            permutations=PERMUTATIONS,
            seed=SEED,
            max_samples=max(WINDOW_MAX, len(reference)),
            progress=lambda done, total: step(REFERENCE_SHARE + (1 - REFERENCE_SHARE) * done / total, "permutations"),
        )
    except (DriftCheckError, ReferenceUnavailable, ValueError) as exc:
        DriftReport.objects.filter(pk=report.pk).update(
            status=DriftReport.Status.FAILED, error=str(exc), finished_at=timezone.now()
        )
        raise DriftCheckError(str(exc)) from exc
    except BaseException as exc:
        DriftReport.objects.filter(pk=report.pk).update(
            status=DriftReport.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
        )
        raise

    serving_settings = ServingSettings.objects.get(project=project)
    share = low_confidence_share(np.array([r[1] for r in rows]), serving_settings.low_confidence_threshold)
    report.n_reference = result.n_y
    report.statistic = result.statistic
    report.p_value = result.p_value
    report.drifted = result.p_value < report.threshold
    report.low_confidence_share = share
    report.low_confidence_alert = share >= serving_settings.low_confidence_alert_share
    report.status = DriftReport.Status.DONE
    report.progress = 1.0
    report.finished_at = timezone.now()
    report.save()
    if progress:
        progress(10_000, 10_000, "done")
    logger.info(
        "drift check of project %s v%s: MMD² %.4g, p %.3g over %s predictions and %s references",
        project.pk, active.number, result.statistic, result.p_value, result.n_x, result.n_y,
    )  # fmt: skip
    drift_alert_notify(report=report)
    return report


def projects_due_for_drift_check() -> list[int]:
    """Projects with an active version and at least MIN_NEW_PREDICTIONS logged (with an embedding) after their
    latest report's window (or ever, before the first report)."""
    due = []
    for project_id, number in ModelVersion.objects.filter(active=True).values_list("project_id", "number"):
        last = DriftReport.objects.filter(project_id=project_id).exclude(status=DriftReport.Status.FAILED).first()
        window = _window(project_id, number)
        if last is not None:
            window = window.filter(created_at__gt=last.window_end)
        if window[:MIN_NEW_PREDICTIONS].count() >= MIN_NEW_PREDICTIONS:
            due.append(project_id)
    return due


def drift_check_request(*, project: Project) -> None:
    """Ask a worker (default queue) to check the project now, after commit (the Monitoring page's button). The
    report row appears "running" when the worker starts. Raises DriftCheckError, and asks nothing, when the check
    could not run: no active version, too few predictions, or a check running."""
    from labeling.services.dispatch import task_send_on_commit

    _checkable(project, MIN_ON_DEMAND, fields=())
    _refuse_if_running(project)

    task_send_on_commit(DRIFT_CHECK_TASK, project.pk, True)


def drift_checks_run_due(*, project_id: int | None = None, on_demand: bool = False) -> dict:
    """The hourly task: check every due project (or only `project_id` when given, if due). A project's failure
    is stored on its report and logged; the others still run. `on_demand` checks `project_id` now (at least
    MIN_ON_DEMAND predictions), due or not."""
    if on_demand and project_id is not None:
        due = [project_id]
        minimum = MIN_ON_DEMAND
    else:
        due = projects_due_for_drift_check()
        minimum = MIN_NEW_PREDICTIONS
        if project_id is not None:
            due = [p for p in due if p == project_id]
    done, failed = [], []
    for pk in due:
        project = Project.objects.filter(pk=pk).first()
        if project is None:
            continue
        try:
            report = drift_check_run(project=project, minimum=minimum)
        except DriftCheckError as exc:
            logger.warning("drift check of project %s: %s", pk, exc)
            failed.append(pk)
            continue
        done.append(report.pk)
    from serving.runtime.registry import serving_cache_sweep

    try:  # this machine's caches of versions no longer served (the drift checks made some of them)
        swept = drift_reference_sweep() + serving_cache_sweep()
    except Exception:
        logger.exception("could not sweep the drift and serving caches")
        swept = []
    return {"reports": done, "failed_projects": failed, "swept": len(swept)}
