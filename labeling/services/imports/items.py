"""Turning validated bytes into Items: stored file and thumbnail first, then the row, never half of one.

The split keeps near-duplicates together, so the holdout never grades the model on a copy of a training image
(the same picture re-saved, resized or recompressed has the same perceptual hash):
- an image whose phash an item of the project already has gets that item's split (both splits, from items stored
  before this rule: train, so no further holdout item has a copy in train);
- else the split is derived from the phash itself (holdout with probability project.holdout_fraction), so every
  image of a new phash gets the same split whichever comes first, in one batch, one import or two imports at once.
Both depend only on the bytes and the project's items, so re-importing the same bytes yields the same split.
Items stored before the rule keep their split (it was derived from the sha256): nothing is moved.

Only an exact phash match counts. Near-duplicates at a Hamming distance of 1-6 (a harder crop or recompression)
can still straddle the split: finding them means comparing each new hash with every stored one (100k per image at
a user's sizes; SQLite has no popcount) or storing and indexing bands of the hash (multi-index hashing: seven
more columns filled for every stored item). The reported leaks were nearly all at distance 0, which one indexed
query per batch covers.

Cold-start priority is derived from the sha256: the same bytes always get the same place in the first queue.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from labeling.models import Item, ItemState, LabelClass, LabelSource, Project, ResolvedLabel, Split
from labeling.services.imports.validation import ALLOWED_FORMATS, ImportRejected, Inspected, Limits, image_inspect


def _unit(sha256: str, start: int) -> float:
    """A deterministic number in [0, 1) from 13 hex digits of the sha256."""
    return int(sha256[start : start + 13], 16) / 16**13


def stored_splits(*, project: Project, phashes: Iterable[str]) -> dict[str, str]:
    """The split of the project's items with each of these perceptual hashes, in one query (item_phash_idx).

    A phash whose items are in both splits (stored before near-duplicates shared one) maps to train: a new copy
    there adds no holdout item that the model has seen.
    """
    wanted = {p for p in phashes if p}
    if not wanted:
        return {}
    rows = Item.objects.filter(project=project, phash__in=wanted).values_list("phash", "split").distinct()
    splits: dict[str, str] = {}
    for phash, split in rows:
        splits[phash] = split if splits.get(phash, split) == split else Split.TRAIN
    return splits


def _split(*, project: Project, sha256: str, phash: str, stored: Mapping[str, str]) -> str:
    """The split of a new image (the rule: module docstring); `stored` is `stored_splits` for its phash."""
    if phash in stored:
        return stored[phash]
    key = hashlib.sha256(f"split:{phash}".encode()).hexdigest() if phash else sha256
    return Split.HOLDOUT if _unit(key, 0) < project.holdout_fraction else Split.TRAIN


class NewItem(NamedTuple):
    """An unsaved item with the bytes and decoded facts to store, and the classes of its import label."""

    item: Item
    data: bytes
    info: Inspected
    classes: list[LabelClass]


def new_item(
    *, project: Project, name: str, sha256: str, info: Inspected, labeled: bool, stored: Mapping[str, str]
) -> Item:
    """An unsaved item; `stored` is `stored_splits` for (at least) its phash, looked up once per batch."""
    return Item(
        project=project,
        sha256=sha256,
        phash=info.phash,
        width=info.width,
        height=info.height,
        format=info.format,
        original_name=name[:500],
        split=_split(project=project, sha256=sha256, phash=info.phash, stored=stored),
        state=ItemState.LABELED if labeled else ItemState.UNLABELED,
        priority=_unit(sha256, 16),  # random cold-start order until a model ranks the pool
    )


def _store_files(item: Item, data: bytes, info: Inspected, stored: list[str]) -> None:
    item.file.save(f"{item.sha256}{ALLOWED_FORMATS[info.format]}", ContentFile(data), save=False)
    stored.append(item.file.name)
    item.thumbnail.save("thumb.webp", ContentFile(info.thumbnail), save=False)
    stored.append(item.thumbnail.name)


def _delete_files(names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(Exception):
            default_storage.delete(name)


def items_store(new: list[NewItem]) -> None:
    """Store each item's file and thumbnail, then create the rows and their import labels in one transaction.

    All or nothing: on any exception the stored files are deleted, the rows rolled back, the items left unsaved
    (no pk, no file names, ready to store again) and the exception raised. IntegrityError means a file with the
    same sha256 was stored in the project at the same moment. Imports store whole batches through this, and
    again one item at a time when a batch fails; `item_create_from_bytes` stores a batch of one.
    """
    stored: list[str] = []
    try:
        for n in new:
            _store_files(n.item, n.data, n.info, stored)
        with transaction.atomic():
            Item.objects.bulk_create([n.item for n in new])
            attach_labels([(n.item, n.classes) for n in new if n.classes])
    except BaseException:
        _delete_files(stored)
        for n in new:
            n.item.pk = None
            n.item.file.name = n.item.thumbnail.name = None
        raise


def duplicate_reason(project: Project, sha256: str) -> str:
    other = Item.objects.filter(project=project, sha256=sha256).values_list("original_name", flat=True).first()
    return f"duplicate of {other}" if other else "duplicate of a file imported at the same moment"


def attach_labels(items_and_classes: list[tuple[Item, list[LabelClass]]]) -> None:
    """Create ResolvedLabel rows (source=import) for freshly created items."""
    if not items_and_classes:
        return
    rows = [ResolvedLabel(item=item, project_id=item.project_id, source=LabelSource.IMPORT)
            for item, _ in items_and_classes]  # fmt: skip
    ResolvedLabel.objects.bulk_create(rows)
    through = ResolvedLabel.classes.through
    links = [through(resolvedlabel_id=row.pk, labelclass_id=c.pk)
             for row, (_, classes) in zip(rows, items_and_classes, strict=True) for c in classes]  # fmt: skip
    through.objects.bulk_create(links)


def item_create_from_bytes(
    *, project: Project, name: str, data: bytes, split: str | None = None, classes: list[LabelClass] | None = None
) -> Item:
    """Validate, store and create one item; raises ImportRejected (and then nothing was stored).

    `split`, when given, overrides the near-duplicate rule of the module docstring: the caller answers for it.
    """
    sha256 = hashlib.sha256(data).hexdigest()
    info = image_inspect(data, limits=Limits.from_settings())
    if Item.objects.filter(project=project, sha256=sha256).exists():
        raise ImportRejected(duplicate_reason(project, sha256))
    stored = stored_splits(project=project, phashes=[info.phash]) if split is None else {}
    item = new_item(project=project, name=name, sha256=sha256, info=info, labeled=bool(classes), stored=stored)
    if split is not None:
        item.split = split
    try:
        items_store([NewItem(item, data, info, classes or [])])
    except IntegrityError:
        raise ImportRejected(duplicate_reason(project, sha256)) from None
    return item
