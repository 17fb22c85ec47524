"""Model quality reads behind the quality pages (training/views/quality.py): metrics, confusions, drill-down.

A version's metrics JSON comes from training/ml/evaluate.py on the holdout at training time; it is read
defensively (older or partial dicts render what they have). The confusion-matrix drill-down lists the items
behind a cell from Prediction rows of that version: holdout items once `holdout_predictions_write` stored
predictions for them (training/services/quality.py runs it after each round, or the model page asks for it), else
labeled pool items that the version scored before they were labeled. The page says which population it shows.

Headline figures carry n and a 95 % interval (training/ml/intervals.py computes them at evaluation time); a version
stored before intervals were recorded shows its n and says it has none. While the holdout is small
(SMALL_HOLDOUT) the pages add the cross-validated estimate of the latest label-error search (its Job's result).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet

from labeling.models import Item, Job, JobKind, JobStatus, LabelClass, Project, ResolvedLabel, Split
from labeling.selectors.classes import paths_attached
from training.ml.intervals import HEADLINE, SMALL_HOLDOUT, headline
from training.models import ModelVersion, Prediction
from training.selectors.runs import metrics_summary
from training.services.snapshot import ClassOrder


def _num(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f and f not in (float("inf"), float("-inf")) else None


@dataclass
class Figure:
    """One headline metric with its n and 95 % interval (low/high None: none recorded or none defined)."""

    key: str
    label: str
    value: float | None
    n: int | None
    low: float | None = None
    high: float | None = None
    method: str | None = None

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def dom_id(self) -> str:
        return {"macro_f1": "m-macro-f1", "roc_auc": "m-auc"}.get(self.key, "m-" + self.key.replace("_", "-"))


def figures(metrics: Any) -> list[Figure]:
    """The headline figures of a metrics dict, malformed values read as None."""
    out = []
    for row in headline(metrics if isinstance(metrics, dict) else {}):
        n = _num(row["n"])
        low, high = _num(row["low"]), _num(row["high"])
        out.append(
            Figure(
                key=row["key"],
                label=row["label"],
                value=_num(row["value"]),
                n=int(n) if n is not None else None,
                low=low if high is not None else None,
                high=high if low is not None else None,
                method=row["method"] if isinstance(row["method"], str) else None,
            )
        )
    return out


def intervals_recorded(metrics: Any) -> bool:
    """False for a version evaluated before intervals were recorded (its page says so instead of an interval)."""
    return isinstance(metrics, dict) and isinstance(metrics.get("intervals"), dict)


def holdout_is_small(n: int | None) -> bool:
    return n is None or n < SMALL_HOLDOUT


def _names(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


@dataclass
class CrossValidated:
    """Out-of-fold accuracy and macro-F1 over every labeled item, from the latest label-error search. In a
    multi-label project `accuracy` is the subset accuracy, and `extra` holds the Hamming accuracy and micro-F1."""

    n: int
    accuracy: Figure
    macro_f1: Figure
    no_support: list[str]
    folds: int | None
    searched_at: datetime | None
    # Open items each fold's head self-trained on; None for a search from before the estimate used the version's
    # own head (a plain logistic regression).
    pool: int | None = None
    # The estimated accuracy on the open images (training.ml.open_accuracy; n = the labeled items its confidence
    # map is fitted on), the number of open images it scored and the number open in all; None for older searches.
    open_accuracy: Figure | None = None
    open_scored: int | None = None
    open_total: int | None = None
    multi_label: bool = False
    extra: list[Figure] = field(default_factory=list)

    @property
    def headline(self) -> list[Figure]:
        """Every figure of the estimate in the order the holdout's headline shows them."""
        order = [key for key, _ in HEADLINE]
        return sorted([self.accuracy, self.macro_f1, *self.extra], key=lambda f: order.index(f.key))


def _open_figure(value: Any) -> tuple[Figure | None, int | None, int | None]:
    if not isinstance(value, dict):
        return None, None, None
    acc, low, high, n = (_num(value.get(key)) for key in ("accuracy", "low", "high", "n"))
    scored, total = _num(value.get("images")), _num(value.get("of"))
    if acc is None or n is None or not scored:
        return None, None, None
    figure = Figure(
        key="open_accuracy",
        label="accuracy on the open images",
        value=acc,
        n=int(n),
        low=low if high is not None else None,
        high=high if low is not None else None,
        method=value.get("method") if isinstance(value.get("method"), str) else "bootstrap",
    )
    return figure, int(scored), int(total) if total is not None else None


def cross_validated_estimate(*, project: Project) -> CrossValidated | None:
    """The newest label-error search (a finished Job) that reported a cross-validated estimate, or None."""
    job = (
        Job.objects.filter(project=project, kind=JobKind.LABEL_ERRORS, status=JobStatus.SUCCEEDED)
        .filter(result__has_key="cross_validated")
        .order_by("-finished_at", "-pk")
        .first()
    )
    cv = job.result.get("cross_validated") if job is not None and isinstance(job.result, dict) else None
    if not isinstance(cv, dict) or not isinstance(_num(cv.get("n")), float) or not cv.get("n"):
        return None
    rows = {f.key: f for f in figures(cv)}
    accuracy = rows.get("subset_accuracy" if cv.get("multi_label") else "accuracy")
    if accuracy is None or "macro_f1" not in rows:
        return None
    folds, pool = _num(cv.get("folds")), _num(cv.get("pool"))
    open_accuracy, open_scored, open_total = _open_figure(cv.get("open_images"))
    return CrossValidated(
        n=int(_num(cv["n"]) or 0),
        accuracy=accuracy,
        macro_f1=rows["macro_f1"],
        no_support=_names(cv.get("no_support")),
        folds=int(folds) if folds is not None else None,
        searched_at=job.finished_at,
        pool=int(pool) if pool is not None else None,
        open_accuracy=open_accuracy,
        open_scored=open_scored,
        open_total=open_total,
        multi_label=bool(cv.get("multi_label")),
        extra=[rows[key] for key in ("hamming_accuracy", "micro_f1") if key in rows],  # multi-label figures only
    )


@dataclass
class ClassMetrics:
    name: str
    precision: float | None
    recall: float | None
    f1: float | None
    support: int | None


@dataclass
class VersionMetrics:
    version: ModelVersion
    names: list[str]
    n: int | None
    multi_label: bool
    accuracy: float | None
    macro_f1: float | None
    micro_f1: float | None
    roc_auc: float | None
    ece: float | None
    per_class: list[ClassMetrics]
    confusion: list[list[int]] | None
    reliability: list[dict]
    per_level: list[dict] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)
    headline: list[Figure] = field(default_factory=list)
    intervals_recorded: bool = False
    no_support: list[str] = field(default_factory=list)  # classes with no holdout item: outside the macro average

    @property
    def small_holdout(self) -> bool:
        return holdout_is_small(self.n)

    def figure(self, key: str) -> Figure | None:
        return next((f for f in self.headline if f.key == key), None)


def version_metrics(version: ModelVersion, metrics: Any = None) -> VersionMetrics:
    """Normalise a version's metrics dict (or `metrics`, e.g. its summary without the per-class parts); anything
    missing or malformed becomes None / empty."""
    m = metrics if metrics is not None else version.metrics
    m = m if isinstance(m, dict) else {}
    names = class_order_of_version(version).names
    raw = m.get("per_class") or {}
    per_class: list[ClassMetrics] = []
    if isinstance(raw, dict):
        items = list(raw.items())
    elif isinstance(raw, list):
        items = [
            (row.get("name") or row.get("label") or str(i), row) for i, row in enumerate(raw) if isinstance(row, dict)
        ]
    else:
        items = []
    for name, row in items:
        if not isinstance(row, dict):
            continue
        support = _num(row.get("support"))
        per_class.append(
            ClassMetrics(
                str(name), _num(row.get("precision")), _num(row.get("recall")), _num(row.get("f1")),
                int(support) if support is not None else None,
            )
        )  # fmt: skip
    confusion = m.get("confusion_matrix")
    if not (
        isinstance(confusion, list)
        and len(confusion) == len(names)
        and all(isinstance(r, list) and len(r) == len(names) for r in confusion)
    ):
        confusion = None
    bins = []
    for b in m.get("reliability") or []:
        if not isinstance(b, dict):
            continue
        bins.append(
            {
                "lower": _num(b.get("lower")) or 0.0,
                "upper": _num(b.get("upper")) or 0.0,
                "count": int(_num(b.get("count")) or 0),
                "accuracy": _num(b.get("acc", b.get("accuracy"))),
                "confidence": _num(b.get("conf", b.get("confidence"))),
            }
        )
    levels = m.get("per_level_accuracy") or m.get("per_level") or []
    levels = [lv for lv in levels if isinstance(lv, dict)] if isinstance(levels, list) else []
    extra = {k: _num(m.get(k)) for k in ("subset_accuracy", "hamming_accuracy") if _num(m.get(k)) is not None}
    n = _num(m.get("n"))
    return VersionMetrics(
        version=version,
        names=names,
        n=int(n) if n is not None else None,
        multi_label=bool(m.get("multi_label")),
        accuracy=_num(m.get("accuracy")),
        macro_f1=_num(m.get("macro_f1")),
        micro_f1=_num(m.get("micro_f1")),
        roc_auc=_num(m.get("roc_auc")),
        ece=_num(m.get("ece")),
        per_class=per_class,
        confusion=confusion,
        reliability=bins,
        per_level=levels,
        extra=extra,
        headline=figures(m),
        intervals_recorded=intervals_recorded(m),
        no_support=_names(m.get("no_support")),
    )


# Above this many classes a matrix or one bar per class is no longer readable at page width: the page leads with
# the largest confusions and the lowest F1 and keeps the full figures one click away.
MANY_CLASSES = 20
TOP_CONFUSIONS = 20
WORST_CLASSES = 20


@dataclass
class Confusion:
    true_index: int
    pred_index: int
    true_name: str
    pred_name: str
    count: float
    share: float  # of the true class's holdout items


def confusions(matrix: list[list[float]], names: list[str], limit: int | None = None) -> list[Confusion]:
    """Off-diagonal cells with a count, largest first (ties: larger share of the true class, then order)."""
    out = []
    for i, row in enumerate(matrix):
        total = sum(row)
        for j, value in enumerate(row):
            if i != j and value:
                out.append(Confusion(i, j, names[i], names[j], value, value / total if total else 0.0))
    out.sort(key=lambda c: (-c.count, -c.share, c.true_index, c.pred_index))
    return out if limit is None else out[:limit]


def lowest_f1(per_class: list[ClassMetrics], limit: int) -> list[ClassMetrics]:
    """The classes with the lowest F1 first; classes without an F1 (no holdout support) after them."""
    ranked = sorted(per_class, key=lambda c: (c.f1 is None, c.f1 if c.f1 is not None else 0.0, c.name))
    return ranked[:limit]


def versions_of(project: Project) -> list[ModelVersion]:
    """Every version, oldest first, each with `summary` (its metrics but the per-class parts) and `metrics`
    deferred: a page lists and charts them without decoding every confusion matrix (1,080 classes: 3.3 MB of JSON
    each); reading one version's `metrics` loads it."""
    versions = ModelVersion.objects.filter(project=project).defer("metrics").annotate(summary=metrics_summary())
    return list(versions.order_by("number"))


@dataclass
class CurvePoint:
    number: int
    labels: int
    accuracy: Figure | None
    macro_f1: Figure | None


def learning_curve(project: Project) -> list[CurvePoint]:
    """Holdout accuracy and macro-F1 (with their intervals) of every version against its label count, oldest
    first."""
    out = []
    for v in versions_of(project):
        rows = {f.key: f for f in figures(v.summary)}
        accuracy = rows.get("subset_accuracy") or rows.get("accuracy")
        out.append(CurvePoint(v.number, v.label_count, accuracy, rows.get("macro_f1")))
    return out


def confusion_items(*, version: ModelVersion, true_index: int, pred_index: int) -> tuple[QuerySet[Prediction], str]:
    """Predictions of `version` whose item's resolved label is class true_index and whose top class is pred_index.

    Returns (queryset, population) where population is "holdout" when the version has holdout predictions,
    else "labeled pool" (items scored by this version and labeled afterwards).
    """
    class_ids = list(version.class_ids)
    if not (0 <= true_index < len(class_ids) and 0 <= pred_index < len(class_ids)):
        return Prediction.objects.none(), "holdout"
    has_true = ResolvedLabel.classes.through.objects.filter(
        resolvedlabel__item_id=OuterRef("item_id"), labelclass_id=class_ids[true_index]
    )
    qs = (
        Prediction.objects.filter(model_version=version, predicted_class_id=class_ids[pred_index])
        .filter(Exists(has_true))
        .select_related("item")
        .order_by("-confidence", "item_id")
    )
    holdout = Prediction.objects.filter(model_version=version, item__split=Split.HOLDOUT, item__resolved__isnull=False)
    if holdout.exists():
        return qs.filter(item__split=Split.HOLDOUT), "holdout"
    return qs, "labeled pool"


def holdout_prediction_count(version: ModelVersion) -> int:
    return Prediction.objects.filter(model_version=version, item__split=Split.HOLDOUT).count()


def items_labeled_in_holdout(project: Project) -> int:
    return Item.objects.filter(project=project, split=Split.HOLDOUT, resolved__isnull=False).count()


def class_order_of_version(version: ModelVersion) -> ClassOrder:
    """The class order a version was trained with (archived classes keep their names)."""
    classes = LabelClass.objects.filter(project_id=version.project_id)
    by_id = {c.pk: c for c in paths_attached(classes, project=version.project)}
    names = [by_id[c].path if c in by_id else f"class {c}" for c in version.class_ids]
    return ClassOrder(ids=list(version.class_ids), names=names)
