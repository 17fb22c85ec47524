"""Whether a round's new version replaces the active one: the holdout rule, and the active version's figure it is
compared with (on the same holdout items where the round could have it, else the active version's stored one).

The rule: hold a new version back only when it is clearly worse, that is when the two 95 % intervals of holdout
accuracy do not overlap (the new version's high end is below the active figure's low end). The active figure's
interval is Wilson's of its n and accuracy on the same items, else the one stored in its metrics (Wilson from its
stored n and accuracy where none is stored). Not "the new interval below the active point figure": Wilson's high end
is below 1 for any miss, so against an active version at 1.000 on 2 items (the demo's v1, interval 0.34 to 1.00)
every later version was held back, and on the same 34 items 33 right was "below" 34 right.
"""

from __future__ import annotations

from django.utils.dateparse import parse_datetime

from stats.proportions import wilson_interval
from training.models import ModelVersion, TrainingRun
from training.selectors.holdout_figures import HoldoutFigure

NOT_MADE_ACTIVE = "not_made_active"  # the metrics key (and run summary key) of a held-back version's reason


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def active_figure(*, version: ModelVersion, same_items: HoldoutFigure | None = None) -> HoldoutFigure | None:
    """The active version's accuracy that `version` is compared with: `same_items` (its accuracy on the holdout
    items `version` was evaluated on) while that version is still the active one, else its stored holdout
    accuracy (taken on its own, maybe older and smaller, holdout). None without an active version or a figure."""
    active = ModelVersion.objects.filter(project_id=version.project_id, active=True).exclude(pk=version.pk)
    row = active.values_list("pk", "number", "metrics__accuracy", "metrics__n", "metrics__intervals").first()
    if row is None:
        return None
    if same_items is not None and same_items.version_id == row[0]:
        return same_items
    pk, number, accuracy, n, intervals = row
    if not _number(accuracy):
        return None
    stored = intervals.get("accuracy") if isinstance(intervals, dict) else None
    low, high = (stored.get("low"), stored.get("high")) if isinstance(stored, dict) else (None, None)
    bounds = (float(low), float(high)) if _number(low) and _number(high) else None
    return HoldoutFigure(version_id=pk, number=number, accuracy=float(accuracy), n=n if _number(n) else None,
                         same_items=False, interval=bounds)  # fmt: skip


def figure_interval(figure: HoldoutFigure) -> tuple[float, float] | None:
    """The figure's 95 % interval: the stored one, else Wilson's from its n and accuracy; None without an n."""
    if figure.interval is not None:
        return figure.interval
    if not figure.n:
        return None
    return wilson_interval(round(figure.accuracy * figure.n), int(figure.n))


def version_held_back_reason(*, version: ModelVersion, same_items: HoldoutFigure | None = None) -> str | None:
    """Why a round's new version must not replace the active one, or None to make it active.

    Held back only when the two 95 % intervals do not overlap: the new version's high end lies below the low end
    of the active figure's (v5 at 0.048, interval 0.008 to 0.227, against v4's 0.714, interval 0.50 to 0.86). The
    active figure is the one `active_figure` gives: on the same holdout items where the round measured it, else the
    active version's stored figure, and the reason says which. An active figure without n or interval is compared
    as a point. Without both figures (a first version, metrics without intervals) it goes live as before."""
    best = active_figure(version=version, same_items=same_items)
    metrics = version.metrics if isinstance(version.metrics, dict) else {}
    bounds = (metrics.get("intervals") or {}).get("accuracy") if isinstance(metrics.get("intervals"), dict) else None
    accuracy, low, high = metrics.get("accuracy"), (bounds or {}).get("low"), (bounds or {}).get("high")
    if best is None or not all(_number(f) for f in (accuracy, low, high)):
        return None
    theirs = figure_interval(best)
    if high >= (best.accuracy if theirs is None else theirs[0]):
        return None
    name = "subset accuracy" if metrics.get("multi_label") else "accuracy"
    mine = f"holdout {name} {accuracy:.3f} ({low:.2f} to {high:.2f}, n {metrics.get('n', '?')})"
    if theirs is None:
        return f"not made active: {mine} is below v{best.number}'s {best.accuracy:.3f} {figure_words(best)}"
    return (
        f"not made active: {mine} is clearly below v{best.number}'s {best.accuracy:.3f} ({theirs[0]:.2f} to "
        f"{theirs[1]:.2f}) {figure_words(best)}: the two 95 % intervals do not overlap"
    )


def figure_words(figure: HoldoutFigure) -> str:
    """Where the compared figure was taken: "on the same 30 holdout items", "on its own holdout of 21 items"."""
    if figure.same_items:
        return f"on the same {figure.n} holdout item{'s' if figure.n != 1 else ''}"
    if figure.n is None:
        return "on its own holdout"
    return f"on its own holdout of {figure.n} item{'s' if figure.n != 1 else ''}"


HELD_BACK_BY_ROUND = "held_back_by_round"  # a held-back version made active by hand: the round's reason, kept
MADE_ACTIVE_BY_HAND = "made_active_by_hand"  # {"by": username or null, "at": ISO time}: the last switch by hand


def metrics_made_active_by_hand(metrics: dict, *, by: str | None, at: str) -> dict:
    """A version's metrics once it is made active by hand: the round's "not made active" reason is history now,
    kept under HELD_BACK_BY_ROUND (an active version marked not made active read as a contradiction to a script),
    and who made it active and when under MADE_ACTIVE_BY_HAND."""
    out = {k: v for k, v in (metrics if isinstance(metrics, dict) else {}).items() if k != NOT_MADE_ACTIVE}
    if isinstance(metrics, dict) and metrics.get(NOT_MADE_ACTIVE):
        out[HELD_BACK_BY_ROUND] = metrics[NOT_MADE_ACTIVE]
    out[MADE_ACTIVE_BY_HAND] = {"by": by, "at": at}
    return out


def made_active_by_hand_during(*, run: TrainingRun) -> str | None:
    """Why `run`'s new version must not replace the active one when that one was made active by hand after the run
    was asked for (queued or training): "not made active: v1 was made active by hand during this run". A person's
    choice made meanwhile (a rollback) stands; the round's version is kept and listed, as a held-back one is. Call
    inside the round's last transaction: the active row is locked until it ends (PostgreSQL)."""
    active = ModelVersion.objects.select_for_update().filter(project_id=run.project_id, active=True)
    row = active.values_list("number", f"metrics__{MADE_ACTIVE_BY_HAND}").first()
    hand = row[1] if row is not None else None
    at = parse_datetime(hand["at"]) if isinstance(hand, dict) and isinstance(hand.get("at"), str) else None
    if at is None or run.created_at is None or at < run.created_at:
        return None
    return f"not made active: v{row[0]} was made active by hand during this run"
