"""Shared test helpers for the training suites: resolved labels without going through the UI."""

from __future__ import annotations

from labeling.models import ItemState, LabelSource, ResolvedLabel


def resolve(item, *classes, source: str = LabelSource.SINGLE) -> ResolvedLabel:
    """Give an item a resolved label (what the annotation service ends with) and mark it labeled."""
    row, _ = ResolvedLabel.objects.update_or_create(item=item, defaults={"project": item.project, "source": source})
    row.classes.set(classes)
    row.save()  # bumps updated_at, as a recompute does
    type(item).objects.filter(pk=item.pk).update(state=ItemState.LABELED)
    return row
