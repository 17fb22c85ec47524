"""A version's accuracy on given holdout items, from its stored Prediction rows: what a round compares its new
version with, so both figures are taken on the same items and the same labels (training/services/promotion.py).

The rule is the one training/ml/evaluate.py measures: single-label, the predicted class is the item's class;
multi-label (subset accuracy), the classes at or above MULTI_LABEL_THRESHOLD are exactly the item's classes. Only
the classes the new version is judged on count (`judged`): a class archived since is in neither set.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from training.ml.export_files import MULTI_LABEL_THRESHOLD
from training.models import ModelVersion, Prediction


@dataclass(frozen=True)
class HoldoutFigure:
    """The accuracy of version `number` (row `version_id`) on `n` holdout items; `same_items`: on exactly the
    items the compared version was evaluated on (else: its own stored figure, from its own holdout); `interval`:
    its stored 95 % interval (low, high), where one is stored (promotion.figure_interval computes Wilson's else)."""

    version_id: int
    number: int
    accuracy: float
    n: int | None
    same_items: bool
    interval: tuple[float, float] | None = None


def holdout_items_unpredicted(*, version: ModelVersion, item_ids: Iterable[int]) -> set[int]:
    """The items of `item_ids` the version has no stored prediction of."""
    wanted = {int(i) for i in item_ids}
    have = Prediction.objects.filter(model_version=version, item_id__in=wanted).values_list("item_id", flat=True)
    return wanted - set(have)


def holdout_accuracy_on_items(
    *,
    version: ModelVersion,
    targets: Sequence[tuple[int, Sequence[int]]],
    judged: Sequence[int],
    multi_label: bool,
) -> HoldoutFigure | None:
    """The version's accuracy on `targets` ((item id, its class ids) pairs), or None when it has no stored
    prediction of one of them (a figure on fewer items would not be on the same items)."""
    if not targets:
        return None
    judged_ids = set(judged)
    rows = Prediction.objects.filter(model_version=version, item_id__in=[i for i, _ in targets])
    predicted: dict[int, tuple[int | None, list[float]]] = {
        item_id: (best, probs or [])
        for item_id, best, probs in rows.values_list("item_id", "predicted_class_id", "probabilities")
    }
    if any(item_id not in predicted for item_id, _ in targets):
        return None
    classes = list(version.class_ids)
    correct = 0
    for item_id, wanted in targets:
        best, probs = predicted[item_id]
        if multi_label:
            ticked = {c for c, p in zip(classes, probs, strict=False) if p >= MULTI_LABEL_THRESHOLD and c in judged_ids}
            correct += ticked == set(wanted)
        else:
            correct += best is not None and [best] == list(wanted)
    return HoldoutFigure(
        version_id=version.pk, number=version.number, accuracy=correct / len(targets), n=len(targets), same_items=True
    )
