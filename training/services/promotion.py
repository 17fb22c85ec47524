"""Whether a round's new version replaces the active one: the holdout rule, and the active version's figure it is
compared with (on the same holdout items where the round could have it, else the active version's stored one)."""

from __future__ import annotations

from training.models import ModelVersion
from training.selectors.holdout_figures import HoldoutFigure

NOT_MADE_ACTIVE = "not_made_active"  # the metrics key (and run summary key) of a held-back version's reason


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def active_figure(*, version: ModelVersion, same_items: HoldoutFigure | None = None) -> HoldoutFigure | None:
    """The active version's accuracy that `version` is compared with: `same_items` (its accuracy on the holdout
    items `version` was evaluated on) while that version is still the active one, else its stored holdout
    accuracy (taken on its own, maybe older and smaller, holdout). None without an active version or a figure."""
    active = ModelVersion.objects.filter(project_id=version.project_id, active=True).exclude(pk=version.pk)
    row = active.values_list("pk", "number", "metrics__accuracy", "metrics__n").first()
    if row is None:
        return None
    if same_items is not None and same_items.version_id == row[0]:
        return same_items
    pk, number, accuracy, n = row
    if not _number(accuracy):
        return None
    return HoldoutFigure(version_id=pk, number=number, accuracy=float(accuracy), n=n if _number(n) else None,
                         same_items=False)  # fmt: skip


def version_held_back_reason(*, version: ModelVersion, same_items: HoldoutFigure | None = None) -> str | None:
    """Why a round's new version must not replace the active one, or None to make it active.

    The rule: a version whose holdout accuracy's 95 % interval lies wholly below the active version's accuracy is
    clearly worse (v5 at 0.048, interval 0.008 to 0.227, against v4's 0.714); one whose interval reaches the active
    figure may be as good and goes live. The active figure is the one `active_figure` gives: on the same holdout
    items where the round measured it, else the active version's stored figure, and the reason says which. Without
    both figures (a first version, metrics without intervals) it goes live as before."""
    best = active_figure(version=version, same_items=same_items)
    metrics = version.metrics if isinstance(version.metrics, dict) else {}
    bounds = (metrics.get("intervals") or {}).get("accuracy") if isinstance(metrics.get("intervals"), dict) else None
    accuracy, low, high = metrics.get("accuracy"), (bounds or {}).get("low"), (bounds or {}).get("high")
    if best is None or not all(_number(f) for f in (accuracy, low, high)):
        return None
    if high >= best.accuracy:
        return None
    name = "subset accuracy" if metrics.get("multi_label") else "accuracy"
    return (
        f"not made active: holdout {name} {accuracy:.3f} ({low:.2f} to {high:.2f}, n {metrics.get('n', '?')}) "
        f"is below v{best.number}'s {best.accuracy:.3f} {figure_words(best)}"
    )


def figure_words(figure: HoldoutFigure) -> str:
    """Where the compared figure was taken: "on the same 30 holdout items", "on its own holdout of 21 items"."""
    if figure.same_items:
        return f"on the same {figure.n} holdout item{'s' if figure.n != 1 else ''}"
    if figure.n is None:
        return "on its own holdout"
    return f"on its own holdout of {figure.n} item{'s' if figure.n != 1 else ''}"
