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
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet

from labeling.models import Item, LabelClass, Project, ResolvedLabel, ReviewTask, ReviewTaskReason, Split
from labeling.selectors.classes import paths_attached
from training.models import ModelVersion, Prediction
from training.selectors.figures import (  # noqa: F401 (re-exported for the views and services)
    SMALL_HOLDOUT,
    CrossValidated,
    Figure,
    _names,
    _num,
    all_absent_baseline,
    cross_validated_estimate,
    figures,
    holdout_is_small,
    intervals_recorded,
)
from training.selectors.runs import metrics_summary
from training.services.snapshot import ClassOrder


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


def _with_supports(version: ModelVersion, summary: dict) -> dict:
    """A multi-label summary stored before `hamming_all_absent` was recorded, with its per-class block read back
    (only that key) so that its all-absent baseline can be derived; any other summary as it is."""
    if not summary.get("multi_label") or "hamming_all_absent" in summary or "per_class" in summary:
        return summary
    per_class = ModelVersion.objects.filter(pk=version.pk).values_list("metrics__per_class", flat=True).first()
    return {**summary, "per_class": per_class}


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
        headline=figures(_with_supports(version, m) if metrics is not None else m),
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


# The review task a drill-down tile opens when its item has several open: the most specific reason first.
_REVIEW_REASON_ORDER = (
    ReviewTaskReason.LABEL_ERROR,
    ReviewTaskReason.MODEL,
    ReviewTaskReason.DISAGREEMENT,
    ReviewTaskReason.GOLD,
    ReviewTaskReason.SAMPLE,
)


def open_review_tasks(*, project: Project, item_ids: list[int]) -> dict[int, ReviewTask]:
    """Item id -> the open review task a reviewer judges it in (one per item, by _REVIEW_REASON_ORDER)."""
    out: dict[int, ReviewTask] = {}
    rank = {reason: i for i, reason in enumerate(_REVIEW_REASON_ORDER)}
    tasks = ReviewTask.objects.filter(project=project, item_id__in=item_ids, done=False).order_by("pk")
    for task in tasks:
        kept = out.get(task.item_id)
        if kept is None or rank.get(task.reason, len(rank)) < rank.get(kept.reason, len(rank)):
            out[task.item_id] = task
    return out
