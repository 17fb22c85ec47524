"""What a training round sees: the class order, the labeled items (train / holdout), the pool, file paths.

Everything here is plain Django; the ML side gets lists of (item_id, path, [class_idx]) and never a model.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage

from labeling.models import Item, ItemState, LabelClass, Project, ResolvedLabel, Split
from labeling.selectors.classes import class_path_display, class_path_names, class_paths, class_tree
from labeling.selectors.exports import dataset_hash
from training.selectors.runs import learned_class_ids

OPEN_STATES = (ItemState.UNLABELED, ItemState.PARTIAL)


@dataclass
class ClassOrder:
    """The model's outputs: non-archived leaf classes in (order, id) order."""

    ids: list[int]
    names: list[str]  # display paths ("animal / cat") so that names are unique; the checkpoint keeps them
    hierarchy: dict[int, list[int]] | None = None

    @property
    def index(self) -> dict[int, int]:
        return {class_id: i for i, class_id in enumerate(self.ids)}


@dataclass
class LabelSnapshot:
    classes: ClassOrder
    train: list[tuple[int, str, list[int]]] = field(default_factory=list)
    holdout: list[tuple[int, str, list[int]]] = field(default_factory=list)
    pool: list[tuple[int, str]] = field(default_factory=list)
    label_count: int = 0
    labels_seen_at: datetime | None = None
    dataset_hash: str = ""  # labeling.selectors.exports.dataset_hash of the resolved labels: an export's hash

    @property
    def train_class_count(self) -> int:
        return len({c for _, _, labels in self.train for c in labels})


def class_order(*, project: Project) -> ClassOrder:
    """Leaf classes that are not archived; for a flat taxonomy that is every live class.

    For a hierarchical taxonomy, `hierarchy` maps each leaf's output index to its ancestors (root
    first), numbered after the leaves (len(ids) + rank among internal nodes), for per-level metrics.
    """
    classes = list(LabelClass.objects.filter(project=project, archived=False).order_by("order", "id"))
    by_id = {c.pk: c for c in LabelClass.objects.filter(project=project)}
    learned = learned_class_ids([(c.pk, c.parent_id, c.archived) for c in classes])
    leaves = [c for c in classes if c.pk in learned]

    def ancestors(c: LabelClass) -> list[int]:
        chain, node, seen = [], c, set()
        while node.parent_id is not None and node.parent_id not in seen:
            seen.add(node.parent_id)
            node = by_id[node.parent_id]
            chain.append(node.pk)
        return list(reversed(chain))

    tree = {pk: (c.name, c.parent_id) for pk, c in by_id.items()}
    ids = [c.pk for c in leaves]
    names = [class_path_display(class_path_names(c.pk, tree)) for c in leaves]
    hierarchy = None
    if any(c.parent_id is not None for c in leaves):
        # Ancestors are numbered after the leaves (leaf count + position among internal nodes).
        internal = sorted({a for c in leaves for a in ancestors(c)}, key=lambda pk: (by_id[pk].order, pk))
        internal_index = {pk: len(leaves) + i for i, pk in enumerate(internal)}
        hierarchy = {i: [internal_index[a] for a in ancestors(c)] for i, c in enumerate(leaves)}
    return ClassOrder(ids=ids, names=names, hierarchy=hierarchy)


def item_local_path(item: Item) -> str:
    """A local file path for the item's original: the file itself on a filesystem storage, else a cached copy."""
    storage = item.file.storage if item.file else default_storage
    if isinstance(storage, FileSystemStorage):
        return storage.path(item.file.name)
    suffix = Path(item.file.name).suffix
    target = Path(settings.LABELLOOP_DATA_ROOT) / "media-cache" / item.sha256[:2] / f"{item.sha256}{suffix}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with (
            storage.open(item.file.name, "rb") as src,
            tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as dst,
        ):
            shutil.copyfileobj(src, dst)
        Path(dst.name).replace(target)
    return str(target)


def _paths(project: Project, **filters) -> dict[int, tuple[str, str, str]]:
    """item id -> (local path, sha256, split) for the project's items matching `filters`."""
    qs = Item.objects.filter(project=project, **filters).only("id", "file", "sha256", "split", "project_id")
    return {item.pk: (item_local_path(item), item.sha256, item.split) for item in qs.iterator(chunk_size=2000)}


def label_snapshot(*, project: Project) -> LabelSnapshot:
    """Freeze the resolved labels of a project and the pool they leave open.

    Labels on archived or non-leaf classes are dropped; a single-label item keeps its first class in
    output order. The holdout (Item.split = holdout) is evaluation only and never enters the pool.
    The dataset hash is taken over the resolved labels as they are (archived classes included), like an
    unfiltered export's, so a model card and an export of the same labels name the same dataset.
    """
    order = class_order(project=project)
    index = order.index
    multi = project.is_multi_label
    labels: dict[int, list[int]] = {}
    resolved: dict[int, set[int]] = {}
    seen_at = None
    rows = ResolvedLabel.objects.filter(project=project).values_list("item_id", "classes__id", "updated_at")
    for item_id, class_id, updated_at in rows.iterator(chunk_size=5000):
        seen_at = updated_at if seen_at is None or updated_at > seen_at else seen_at
        bucket = labels.setdefault(item_id, [])
        classes = resolved.setdefault(item_id, set())
        if class_id is not None:
            classes.add(class_id)
            if class_id in index:
                bucket.append(index[class_id])
    snap = LabelSnapshot(classes=order, labels_seen_at=seen_at)
    paths = _paths(project, resolved__isnull=False)
    for item_id, idx in sorted(labels.items()):
        if item_id not in paths:
            continue
        idx = sorted(set(idx))
        if not multi:
            if not idx:
                continue
            idx = idx[:1]
        path, _sha, split = paths[item_id]
        (snap.holdout if split == Split.HOLDOUT else snap.train).append((item_id, path, idx))
    snap.label_count = len(snap.train) + len(snap.holdout)
    labeled = ((paths[item_id][1], class_ids) for item_id, class_ids in resolved.items() if item_id in paths)
    snap.dataset_hash = dataset_hash(labeled, paths=class_paths(class_tree(project=project)), multi_label=multi)
    open_items = _paths(project, state__in=OPEN_STATES, split=Split.TRAIN)
    # The holdout is never ranked by active learning: the queue serves it at holdout_fraction, in the random order
    # its import gave it (Item.priority, from each file's sha256), so the labeled holdout is a uniform sample.
    snap.pool = [
        (item_id, path)
        for item_id, (path, _sha, split) in sorted(open_items.items())
        if item_id not in labels and split != Split.HOLDOUT
    ]
    return snap


def pool_snapshot(*, project: Project) -> list[tuple[int, str]]:
    """The open train items (without the labels): for re-scoring with an existing model."""
    labeled = set(ResolvedLabel.objects.filter(project=project).values_list("item_id", flat=True))
    open_items = _paths(project, state__in=OPEN_STATES, split=Split.TRAIN)
    return [(item_id, path) for item_id, (path, _sha, _split) in sorted(open_items.items()) if item_id not in labeled]
