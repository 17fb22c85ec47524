"""Turning validated bytes into Items: stored file and thumbnail first, then the row, never half of one.

The split keeps near-duplicates together, so the holdout does not grade the model on a copy of a training image
(the same picture re-saved, resized or recompressed has the same perceptual hash, or one a few bits away):
- an image whose phash is NEAR_BITS or fewer bits from the phash of items of the project gets the split of the
  nearest of them (nearest in both splits, as items stored before this rule can be: train, so no further holdout
  item has a copy in train);
- else the split is derived from the phash itself (holdout with probability project.holdout_fraction), so every
  image of a new phash gets the same split whichever comes first, in one batch, one import or two imports at once.
The new images of one batch are decided in phash order, each as if those before it were stored: copies that arrive
together share a split whatever the order of the files. So a split depends on the bytes, the project's items and the
batch's other new images: re-importing the same bytes yields the same split, and an image's split never changes.
Items stored before the rule keep their split (it was derived from the sha256): nothing is moved.

NEAR_BITS = 4, measured with this phash (nearly always an even distance: 32 of its 64 bits are set). Of 3,000 CIFAR-10
images resized to 80 % and saved as JPEG quality 80, 70 % keep their phash, 29 % move 2 bits, 1 % 4 bits and 0.07 %
6 bits; JPEG quality 60: 0.17 % past 4 bits; halved in size: 1.5 % past 4. Between the 30,000 CIFAR-10 images, 97
of 450 million pairs are 4 or fewer bits apart, most of them the data set's own near-duplicates (the same photo
cropped or tinted): at 100,000 stored items about 2 % of new unrelated photos would match one, which only draws
their split from that item's instead of from their own phash (holdout as often). 6 bits would double that for a
few more resized copies. Simple drawings on a flat background (small shapes in the middle of a plain canvas) match
each other far more often, at any distance: that is the hash's limit, not the threshold's. A copy whose phash moved
further (a hard crop, a flipped or inverted picture), or near copies stored by two imports at the same moment, can
still straddle the split.

The lookup reads the project's phashes once per batch (the covering index item_phash_idx; one string per split) as
64-bit integers and compares each new one with all of them in numpy (XOR, popcount): at 100,000 items, 60-90 ms per
batch of 100 on SQLite and 90-115 ms on PostgreSQL (2 busy cores), about 0.3-0.5 ms of CPU per imported image.

Cold-start priority is derived from the sha256: the same bytes always get the same place in the first queue.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Aggregate, CharField
from django.db.models.functions import Length

from labeling.models import Item, ItemState, LabelClass, LabelSource, Project, ResolvedLabel, Split
from labeling.services.imports.validation import ALLOWED_FORMATS, ImportRejected, Inspected, Limits, image_inspect

NEAR_BITS = 4  # a phash this many bits or fewer from a stored one is a copy of it (measured: module docstring)


def _unit(sha256: str, start: int) -> float:
    """A deterministic number in [0, 1) from 13 hex digits of the sha256."""
    return int(sha256[start : start + 13], 16) / 16**13


def derived_split(*, project: Project, sha256: str, phash: str) -> str:
    """The split of an image no stored image is near: holdout with probability project.holdout_fraction, drawn from
    the phash (from the sha256 where there is none)."""
    key = hashlib.sha256(f"split:{phash}".encode()).hexdigest() if phash else sha256
    return Split.HOLDOUT if _unit(key, 0) < project.holdout_fraction else Split.TRAIN


class _Joined(Aggregate):
    """A group's values run together in one string: GROUP_CONCAT on SQLite, STRING_AGG on PostgreSQL."""

    function = "GROUP_CONCAT"
    template = "%(function)s(%(expressions)s, '')"
    output_field = CharField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, function="STRING_AGG", **extra_context)


class NearSplits:
    """The project's perceptual hashes as 64-bit integers beside their splits, with room for the images a batch adds:
    the near-duplicate lookup of the module docstring's rule. One query, each split's phashes run together in one
    string (a row per item would cost more than the comparisons at 100,000 items)."""

    def __init__(self, *, project: Project, room: int) -> None:
        items = Item.objects.filter(project=project).alias(length=Length("phash")).filter(length=16).order_by()
        joined = dict(items.values_list("split").annotate(phashes=_Joined("phash")))
        parts = {split: np.frombuffer(bytes.fromhex(phashes), dtype=">u8") for split, phashes in joined.items()}
        held = parts.pop(Split.HOLDOUT, np.empty(0, np.uint64))
        self.size = len(held) + sum(len(part) for part in parts.values())
        self.hashes = np.concatenate([held, *parts.values(), np.empty(room, np.uint64)]).astype(np.uint64)
        self.holdout = np.zeros(self.size + room, dtype=bool)
        self.holdout[: len(held)] = True

    def near(self, phash: str) -> str | None:
        """The split of the items nearest `phash`, NEAR_BITS or fewer bits away (train when the nearest are in both
        splits); None when none is that near."""
        if not self.size or not phash:
            return None
        distance = np.bitwise_count(self.hashes[: self.size] ^ np.uint64(int(phash, 16)))
        nearest = distance.min()
        if nearest > NEAR_BITS:
            return None
        return Split.HOLDOUT if self.holdout[: self.size][distance == nearest].all() else Split.TRAIN

    def add(self, phash: str, split: str) -> None:
        """Count a new image of the batch as stored, for the images decided after it."""
        if phash:
            self.hashes[self.size], self.holdout[self.size] = int(phash, 16), split == Split.HOLDOUT
            self.size += 1


def new_splits(*, project: Project, images: Iterable[tuple[str, str]], to_front: bool = False) -> dict[str, str]:
    """sha256 -> split of each new image (sha256, phash) of one batch, by the module docstring's rule, in one query.

    `to_front` (images sent to the front of the labeling queue): train, unless the nearest stored image is in the
    holdout; then it stays with it, so no copy of a holdout image is trained on.
    """
    wanted = sorted(set(images), key=lambda image: (image[1], image[0]))
    lookup = NearSplits(project=project, room=len(wanted))
    splits: dict[str, str] = {}
    for sha256, phash in wanted:
        near = lookup.near(phash)
        if to_front:
            splits[sha256] = Split.HOLDOUT if near == Split.HOLDOUT else Split.TRAIN
        else:
            splits[sha256] = near or derived_split(project=project, sha256=sha256, phash=phash)
        lookup.add(phash, splits[sha256])
    return splits


class NewItem(NamedTuple):
    """An unsaved item with the bytes and decoded facts to store, and the classes of its import label."""

    item: Item
    data: bytes
    info: Inspected
    classes: list[LabelClass]


def new_item(*, project: Project, name: str, sha256: str, info: Inspected, labeled: bool, split: str) -> Item:
    """An unsaved item in `split` (`new_splits` decides it, once per batch)."""
    return Item(
        project=project,
        sha256=sha256,
        phash=info.phash,
        width=info.width,
        height=info.height,
        format=info.format,
        original_name=name[:500],
        split=split,
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
    if split is None:
        split = new_splits(project=project, images=[(sha256, info.phash)])[sha256]
    item = new_item(project=project, name=name, sha256=sha256, info=info, labeled=bool(classes), split=split)
    try:
        items_store([NewItem(item, data, info, classes or [])])
    except IntegrityError:
        raise ImportRejected(duplicate_reason(project, sha256)) from None
    return item
