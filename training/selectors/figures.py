"""Headline figures of a version or of the cross-validated estimate: each metric with its n, 95 % interval and, for
Hamming accuracy, the all-absent baseline. Read defensively (older or partial metrics dicts render what they have);
training/selectors/quality.py re-exports them for the quality pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from labeling.models import Job, Project
from labeling.selectors.training_seam import label_error_search_jobs
from training.ml.intervals import HEADLINE, SMALL_HOLDOUT, bootstrap_shown, headline, widened_to_binomial


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
    # Hamming accuracy only: what answering "absent" for every class scores on the same items (all_absent_baseline).
    baseline: float | None = None

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def dom_id(self) -> str:
        return {"macro_f1": "m-macro-f1", "roc_auc": "m-auc"}.get(self.key, "m-" + self.key.replace("_", "-"))


def _supports(raw: Any) -> list[float | None]:
    """Each class's holdout support from a stored per-class block (a dict by name, or an older list of rows)."""
    rows = raw.values() if isinstance(raw, dict) else raw if isinstance(raw, list) else []
    return [_num(row.get("support")) if isinstance(row, dict) else None for row in rows]


def all_absent_baseline(metrics: Any) -> float | None:
    """The Hamming accuracy of predicting no class at all on a multi-label version's evaluation items: stored as
    `hamming_all_absent` since it was recorded, else derived from the stored per-class supports as
    1 - (sum of supports) / (n x classes). None where neither is there (a summary without the per-class part)."""
    if not isinstance(metrics, dict) or not metrics.get("multi_label"):
        return None
    stored = _num(metrics.get("hamming_all_absent"))
    if stored is not None:
        return stored
    n, supports = _num(metrics.get("n")), _supports(metrics.get("per_class"))
    if not n or not supports or any(s is None for s in supports):
        return None
    return 1.0 - sum(supports) / (n * len(supports))


def figures(metrics: Any) -> list[Figure]:
    """The headline figures of a metrics dict, malformed values read as None."""
    out = []
    baseline = all_absent_baseline(metrics)
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
                baseline=baseline if row["key"] == "hamming_accuracy" else None,
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
    method = value.get("method") if isinstance(value.get("method"), str) else "bootstrap"
    if method == "bootstrap" and not bootstrap_shown(n):
        low = high = None  # stored before the bootstrap needed MIN_BOOTSTRAP_N labels
    elif method == "bootstrap" and low is not None and high is not None:
        low, high = widened_to_binomial(acc, low, high, int(n))  # stored before open_accuracy widened it
    figure = Figure(
        key="open_accuracy",
        label="accuracy on the open images",
        value=acc,
        n=int(n),
        low=low if high is not None else None,
        high=high if low is not None else None,
        method=method if low is not None and high is not None else None,
    )
    return figure, int(scored), int(total) if total is not None else None


def cross_validated_estimate(*, project: Project, version: Any = None) -> CrossValidated | None:
    """The newest label-error search (a finished Job) that reported a cross-validated estimate, or None. With a model
    `version`, only a search started while that version was the newest: a search runs after each new version, on
    the project's backbone then, so an older search measured another model (after a change of backbone, its
    figure was shown, and written into the new version's model card, as the new version's)."""
    # Newest by when it started (training_seam.label_error_search_jobs).
    jobs = started_in_version(label_error_search_jobs(project_id=project.pk, result_key="cross_validated"), version)
    job = jobs.order_by("-began", "-pk").first()
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


def started_in_version(jobs: QuerySet[Job], version: Any) -> QuerySet[Job]:
    """Of label-error search `jobs` (annotated with `began`: training_seam.label_error_search_jobs), those that
    started while model `version` was the newest (all of them with None): a search runs after each new version, with
    that version's backbone, so it measures that version's model."""
    if version is None:
        return jobs
    jobs = jobs.filter(began__gte=version.created_at)
    # its creation time only: a version's metrics (a confusion matrix of 3 MB at 1,000 classes) stay undecoded
    newer = (
        type(version).objects.filter(project_id=version.project_id, number__gt=version.number)
        .order_by("number").values_list("created_at", flat=True).first()
    )  # fmt: skip
    return jobs.filter(began__lt=newer) if newer is not None else jobs
