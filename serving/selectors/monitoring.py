"""Monitoring reads: the prediction log aggregated per day (volume, confidence), the predicted-class mix against
the labeled distribution, the drift reports, live accuracy on production images people labeled. The selection of
predictions to send to the labeling queue is serving.selectors.send_selection.

Every aggregate is one grouped query over an indexed window (project, created_at) with a bounded result: per day
x confidence bin, per class, per version. Nothing loads the log's rows, so 100k predictions render as fast as 100.
Confidence quantiles are read from a histogram of CONFIDENCE_BINS bins per day (interpolated within a bin: exact
to 1/CONFIDENCE_BINS), which SQLite and PostgreSQL both compute.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Count, F, FloatField, Min, Q, Value
from django.db.models.functions import Floor, Least, TruncDate
from django.utils import timezone

from labeling.models import Annotation, Item, Project, ResolvedLabel
from labeling.selectors.classes import ClassTree, class_paths, class_tree
from serving.models import (
    DEFAULT_LOW_CONFIDENCE_THRESHOLD,
    DriftReport,
    PredictedLabel,
    PredictionLog,
    ServingSettings,
)
from serving.selectors.keys import keep_images_days_of
from serving.selectors.sent import send_counts
from stats.proportions import wilson_interval

CONFIDENCE_BINS = 20
LAST_BIN = float(CONFIDENCE_BINS - 1)  # confidence 1.0 falls in the last bin
DEFAULT_DAYS = 30
MAX_DAYS = 366
MAX_CLASSES_SHOWN = 20
DRIFT_REPORTS_SHOWN = 60
MAX_SEND = 1000


@dataclass(frozen=True)
class DayFigures:
    day: date
    count: int
    median: float | None
    p10: float | None
    low_share: float | None  # share with confidence below the project's low-confidence threshold


@dataclass(frozen=True)
class LatencyDay:
    day: date
    count: int  # predictions with a measured latency
    p50: float
    p95: float


@dataclass(frozen=True)
class ClassShare:
    path: str  # display path ("a / b"); a logged name no class of the project has, as logged
    predicted: int
    predicted_share: float
    labeled: int
    labeled_share: float
    class_id: int | None = None  # None: a logged name no class of the project has (renamed since)


@dataclass(frozen=True)
class LiveAccuracy:
    version_number: int
    n: int  # images: the predictions of one image by the version count once
    correct: int
    accuracy: float
    low: float  # Wilson 95 % interval on n
    high: float
    predictions: int = 0  # the sent predictions of those images (a request repeated counts each time)


@dataclass(frozen=True)
class Monitoring:
    since: datetime
    until: datetime
    days: list[DayFigures]
    total: int
    by_version: dict[int, int]
    classes: list[ClassShare]
    other_predicted: int
    predicted_total: int  # predictions; in a multi-label project, the classes predicted (each counts once)
    labeled_total: int
    drift: list[DriftReport]
    drift_running: DriftReport | None
    live_accuracy: list[LiveAccuracy]
    sent_to_queue: int  # images queued (serving.selectors.sent)
    kept_images: int
    keep_images_days: int
    low_confidence_threshold: float
    auto_queue_per_day: int
    latency: list[LatencyDay] = field(default_factory=list)  # empty: no row of the window has a latency
    class_paths: list[str] = field(default_factory=list)  # every class's display path, sorted (send to queue's list)
    notes: list[str] = field(default_factory=list)
    # Sent images left out of live accuracy: the project had labeled them before they were sent (live_accuracy)
    live_labeled_before: int = 0
    # Sent predictions whose image the project already had: done, but nothing was queued (serving.selectors.sent)
    already_in_project: int = 0
    # Of kept_images, those older than keep_images_days: the hourly prune deletes them (sendable until it runs)
    expiring_images: int = 0


def _quantile(hist: list[int], q: float) -> float | None:
    """The q-quantile of a CONFIDENCE_BINS-bin histogram over [0, 1], linear within its bin."""
    total = sum(hist)
    if total == 0:
        return None
    target = q * total
    seen = 0
    for b, count in enumerate(hist):
        if count and seen + count >= target:
            return (b + (target - seen) / count) / CONFIDENCE_BINS
        seen += count
    return 1.0


def window_of(*, days: int = DEFAULT_DAYS, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The last `days` whole days up to now (UTC dates), as [since, until)."""
    now = now or timezone.now()
    days = min(max(1, days), MAX_DAYS)
    start = datetime.combine((now - timedelta(days=days - 1)).date(), datetime.min.time(), tzinfo=now.tzinfo)
    return start, now


def serving_figures_settings(*, project: Project) -> tuple[float, int]:
    """(low-confidence threshold, auto_queue_per_day) of the project, the defaults without a settings row."""
    row = (
        ServingSettings.objects.filter(project=project)
        .values_list("low_confidence_threshold", "auto_queue_per_day")
        .first()
    )
    return row if row else (DEFAULT_LOW_CONFIDENCE_THRESHOLD, 0)


def confidence_by_day(*, project: Project, since: datetime, until: datetime, low: float) -> list[DayFigures]:
    """Per day with predictions: count, median and 10th percentile confidence, share below `low`. One query."""
    rows = (
        PredictionLog.objects.filter(project=project, created_at__gte=since, created_at__lt=until)
        .annotate(
            day=TruncDate("created_at"),
            b=Least(Floor(F("confidence") * CONFIDENCE_BINS), Value(LAST_BIN), output_field=FloatField()),
        )
        .values("day", "b")
        .annotate(n=Count("id"), below=Count("id", filter=Q(confidence__lt=low)))
        .order_by()
    )
    hists: dict[date, list[int]] = {}
    below: dict[date, int] = {}
    for row in rows:
        day = row["day"] if isinstance(row["day"], date) else date.fromisoformat(str(row["day"]))
        hist = hists.setdefault(day, [0] * CONFIDENCE_BINS)
        hist[min(CONFIDENCE_BINS - 1, max(0, int(row["b"])))] += row["n"]
        below[day] = below.get(day, 0) + row["below"]
    out = []
    for day in sorted(hists):
        hist = hists[day]
        total = sum(hist)
        out.append(DayFigures(day, total, _quantile(hist, 0.5), _quantile(hist, 0.1), below[day] / total))
    return out


LATENCY_CAP_MS = 60_000  # whole milliseconds per bin, up to a minute: the groups stay few whatever the volume


def latency_by_day(*, project: Project, since: datetime, until: datetime) -> list[LatencyDay]:
    """Per day: p50 and p95 of the request latency in the service, from a per-millisecond histogram. One query."""
    rows = (
        PredictionLog.objects.filter(
            project=project, created_at__gte=since, created_at__lt=until, latency_ms__isnull=False
        )
        .annotate(
            day=TruncDate("created_at"),
            ms=Least(Floor(F("latency_ms")), Value(LATENCY_CAP_MS), output_field=FloatField()),
        )
        .values("day", "ms")
        .annotate(n=Count("id"))
        .order_by()
    )
    hists: dict[date, dict[int, int]] = {}
    for row in rows:
        day = row["day"] if isinstance(row["day"], date) else date.fromisoformat(str(row["day"]))
        hist = hists.setdefault(day, {})
        hist[int(row["ms"])] = hist.get(int(row["ms"]), 0) + row["n"]
    out = []
    for day in sorted(hists):
        hist = hists[day]
        total = sum(hist.values())
        out.append(LatencyDay(day, total, _ms_quantile(hist, total, 0.5), _ms_quantile(hist, total, 0.95)))
    return out


def _ms_quantile(hist: dict[int, int], total: int, q: float) -> float:
    """The q-quantile of a histogram of whole milliseconds, linear within its millisecond."""
    target, seen = q * total, 0
    for ms in sorted(hist):
        if seen + hist[ms] >= target:
            return ms + (target - seen) / hist[ms]
        seen += hist[ms]
    return float(max(hist))


def class_ids_by_logged_name(tree: ClassTree) -> dict[str, int]:
    """The class a name in the prediction log stands for. The log holds the class names the service answered,
    never class ids: stored paths "a/b/c" (the service's answers now), display paths "a / b / c" (logs from before
    the service named classes by stored path). Both spellings of every class (archived ones too) map to its id, so
    a nested class's predictions meet its labels, whenever they were logged. Where the two spellings of different
    classes collide (a class named "a/b" beside a class b under a) the display path wins: the service answers
    such a pair by their checkpoint names, display paths (training.selectors.classes.model_class_paths)."""
    ids = {path: pk for pk, path in class_paths(tree).items()}
    ids.update({path: pk for pk, path in class_paths(tree, display=True).items()})
    return ids


def class_mix(
    *, project: Project, since: datetime, until: datetime, display: dict[int, str], ids: dict[str, int]
) -> tuple[list[ClassShare], int, int, int]:
    """The predicted classes in the window against the labeled distribution (each class of each resolved label
    counts once; in a multi-label project each class of each prediction does too, a single-label prediction is its
    top class). The MAX_CLASSES_SHOWN most predicted or labeled classes, by display path; returns (rows, other
    predicted, predicted total, labeled total). Two grouped queries. `display`: class id -> display path of every
    class of the project (class_paths of its class_tree); `ids`: class_ids_by_logged_name of the same tree, which
    matches predicted names to classes; a name no class has stays a row of its own."""
    if project.is_multi_label:
        rows_of = PredictedLabel.objects.filter(
            log__project=project, log__created_at__gte=since, log__created_at__lt=until
        ).values_list("path")
    else:
        rows_of = PredictionLog.objects.filter(
            project=project, created_at__gte=since, created_at__lt=until
        ).values_list("top_class")
    predicted: dict[int | str, int] = {}  # class id, or the logged name of no class
    for name, n in rows_of.annotate(n=Count("id")).order_by():
        key = ids.get(name, name)
        predicted[key] = predicted.get(key, 0) + n
    labeled: dict[int | str, int] = dict(
        ResolvedLabel.classes.through.objects.filter(resolvedlabel__project=project)
        .values_list("labelclass_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    labeled = {class_id: n for class_id, n in labeled.items() if class_id in display}

    def path_of(key: int | str) -> str:
        return display[key] if isinstance(key, int) and key in display else str(key)

    n_pred, n_lab = sum(predicted.values()), sum(labeled.values())
    keys = sorted(set(predicted) | set(labeled), key=lambda k: (-predicted.get(k, 0), -labeled.get(k, 0), path_of(k)))
    rows = [
        ClassShare(
            path=path_of(k),
            predicted=predicted.get(k, 0),
            predicted_share=predicted.get(k, 0) / n_pred if n_pred else 0.0,
            labeled=labeled.get(k, 0),
            labeled_share=labeled.get(k, 0) / n_lab if n_lab else 0.0,
            class_id=k if isinstance(k, int) else None,
        )
        for k in keys[:MAX_CLASSES_SHOWN]
    ]
    other = n_pred - sum(r.predicted for r in rows)
    return rows, other, n_pred, n_lab


def live_accuracy(*, project: Project, ids: dict[str, int]) -> tuple[list[LiveAccuracy], int]:
    """Per version: of the production images sent to the queue that people labeled after the send, how many the
    version got right, with a Wilson 95 % interval on the images; and how many sent images are left out because the
    project had labeled them before they were sent. An image (by its sha256, as the send's import dedups it) is one
    trial however many times the version was asked about it: repeated requests are not independent, and counting
    each would narrow the interval. Its prediction is the one sent first. Right: the top class is one of the resolved
    classes; in a multi-label project, the predicted classes are the resolved ones (subset accuracy, as on the model
    page). Compared by class id: the logged names map to classes through `ids`, the project's
    class_ids_by_logged_name (a name no class has any more is never right).

    A label counts only when it was made on or after the send: the item's resolved label set then, and no label
    (annotation, skips aside) on the item from before. The version answered before the send, so it never trained
    on such a label; an image that duplicates an item labeled earlier may be one the version learned from (the
    import finds it a duplicate), and would only flatter it."""
    logs = PredictionLog.objects.filter(project=project, queued_at__isnull=False).exclude(image_sha256="")
    logs = logs.order_by("-created_at", "-pk")[: MAX_SEND * 100]
    sent = list(logs.values_list("version_number", "top_class", "image_sha256", "pk", "queued_at"))
    if not sent:
        return [], 0
    multi = project.is_multi_label
    predicted: dict[int, set[int | str]] = {}
    if multi:  # the classes of the same rows
        for log_id, path in PredictedLabel.objects.filter(log__in=logs.values("pk")).values_list("log_id", "path"):
            predicted.setdefault(log_id, set()).add(ids.get(path, path))
    shas = {row[2] for row in sent}
    item_rows = Item.objects.filter(project=project, sha256__in=shas, resolved__isnull=False).values_list(
        "sha256", "pk", "resolved__updated_at"
    )
    item_of = {sha: pk for sha, pk, _ in item_rows}
    if not item_of:
        return [], 0
    resolved_at = {pk: when for _, pk, when in item_rows}
    first_label = dict(
        Annotation.objects.filter(item_id__in=item_of.values(), skipped=False)
        .values_list("item_id")
        .annotate(first=Min("created_at"))
        .order_by()
    )
    labels: dict[int, set[int | str]] = {}
    for item_id, class_id in ResolvedLabel.classes.through.objects.filter(
        resolvedlabel__item_id__in=item_of.values()
    ).values_list("resolvedlabel__item_id", "labelclass_id"):
        labels.setdefault(item_id, set()).add(class_id)
    # One image, one trial: the predictions of one image by one version (a request repeated, a retry, the same file
    # in a batch) count once, as its earliest-sent prediction (the newest of that send). Sent newest first: the
    # later rows of an image replace an earlier pick only when they were sent before it.
    first_sent: dict[tuple[int, str], tuple] = {}
    for row in sent:
        key = (row[0], row[2])
        if key not in first_sent or row[4] < first_sent[key][4]:
            first_sent[key] = row
    tally: dict[int, list[int]] = {}  # version -> [images, right, predictions]
    before: set[str] = set()  # images left out for a version that may have trained on their label
    repeats = Counter((row[0], row[2]) for row in sent)
    for (version, sha), (_, top, _, log_id, queued_at) in first_sent.items():
        item_id = item_of.get(sha)
        if item_id is None or (item_id not in labels and not multi):
            continue  # not labeled yet, or labeled "none of these" (in a multi-label project: no class present)
        earliest = first_label.get(item_id)
        if resolved_at[item_id] < queued_at or (earliest is not None and earliest < queued_at):
            before.add(sha)
            continue
        counts = tally.setdefault(version, [0, 0, 0])
        counts[0] += 1
        counts[2] += repeats[(version, sha)]
        if multi:
            counts[1] += predicted.get(log_id, set()) == labels.get(item_id, set())
        else:
            counts[1] += ids.get(top, top) in labels[item_id]
    out = []
    for version in sorted(tally):
        n, correct, predictions = tally[version]
        low, high = wilson_interval(correct, n)
        out.append(LiveAccuracy(version, n, correct, correct / n, low, high, predictions))
    return out, len(before)


def drift_reports(*, project: Project) -> tuple[list[DriftReport], DriftReport | None]:
    """The newest drift reports (oldest first, for a chart) and the check running now, if any."""
    reports = list(DriftReport.objects.filter(project=project)[:DRIFT_REPORTS_SHOWN])
    running = next((r for r in reports if r.status == DriftReport.Status.RUNNING), None)
    return reports[::-1], running


def monitoring_of(*, project: Project, days: int = DEFAULT_DAYS, now: datetime | None = None) -> Monitoring:
    """Every figure of the Monitoring page and its API for the last `days` days."""
    since, until = window_of(days=days, now=now)
    low, auto_per_day = serving_figures_settings(project=project)
    window = PredictionLog.objects.filter(project=project, created_at__gte=since, created_at__lt=until)
    by_version = dict(window.values_list("version_number").annotate(n=Count("id")).order_by("version_number"))
    # The classes read once, their paths and the logged names' classes worked out once: the class mix, live accuracy
    # and the page's class list share them.
    tree = class_tree(project=project)
    display, ids = class_paths(tree, display=True), class_ids_by_logged_name(tree)
    classes, other, predicted_total, labeled_total = class_mix(
        project=project, since=since, until=until, display=display, ids=ids
    )
    drift, running = drift_reports(project=project)
    live, labeled_before = live_accuracy(project=project, ids=ids)
    counts = send_counts(project=project)
    keep_days = keep_images_days_of(project_id=project.pk)
    cutoff = (now or timezone.now()) - timedelta(days=keep_days)
    unsent = PredictionLog.objects.filter(project=project, queued_at=None, created_at__lt=cutoff).exclude(image="")
    return Monitoring(
        since=since,
        until=until,
        days=confidence_by_day(project=project, since=since, until=until, low=low),
        latency=latency_by_day(project=project, since=since, until=until),
        total=sum(by_version.values()),
        by_version=by_version,
        classes=classes,
        other_predicted=other,
        predicted_total=predicted_total,
        labeled_total=labeled_total,
        drift=drift,
        drift_running=running,
        live_accuracy=live,
        live_labeled_before=labeled_before,
        class_paths=sorted(display.values()),
        sent_to_queue=counts["sent"],
        already_in_project=counts["already_in_project"],
        kept_images=counts["kept"],
        keep_images_days=keep_days,
        expiring_images=unsent.count() if counts["kept"] else 0,
        low_confidence_threshold=low,
        auto_queue_per_day=auto_per_day,
    )
