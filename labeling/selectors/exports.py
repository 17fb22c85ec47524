"""Reads for dataset exports: which items go in, with which labels, split and file names, and the dataset hash.

The dataset hash (`dataset_hash`, the only one: exports, training snapshots and so model cards use it) is sha256
over the sorted lines "<item sha256>\\t<sorted stored class paths as JSON>": the same labels give the same hash
whatever the export time, format or item ids.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from labeling.models import (
    Annotation,
    Item,
    Job,
    JobKind,
    JobStatus,
    LabelSource,
    Project,
    ResolvedLabel,
    Review,
    Split,
    Verdict,
)
from labeling.selectors.classes import ClassTree, class_path_parse, class_paths, class_tree, classes_below
from labeling.selectors.export_names import export_file_names, export_folder_names

FORMATS = ("imagefolder", "csv", "jsonl", "hf")


# What min_annotators counts, in the words of the exports page and the API (ResolvedLabel.annotator_count).
MIN_ANNOTATORS_HELP = (
    "Only images labeled by at least this many annotators whose label still counts: a label a reviewer rejected does "
    "not (the image went back to the queue for another label); one a reviewer corrected does, with the correction as "
    "the image's label."
)


@dataclass(frozen=True)
class ExportFilters:
    """What a dataset export keeps. Every field is recorded in the export's manifest."""

    only_reviewed: bool = False
    only_agreed: bool = False
    min_annotators: int = 0
    classes: tuple[str, ...] = ()
    val_fraction: float = 0.1

    def as_dict(self) -> dict:
        data = asdict(self)
        data["classes"] = list(self.classes)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ExportFilters:
        classes = data.get("classes") or ()
        if isinstance(classes, str):
            classes = [c for c in classes.split(",")]
        return cls(
            only_reviewed=bool(data.get("only_reviewed", False)),
            only_agreed=bool(data.get("only_agreed", False)),
            min_annotators=int(data.get("min_annotators") or 0),
            classes=tuple(c.strip() for c in classes if c and c.strip()),
            val_fraction=float(data.get("val_fraction", 0.1)),
        )


@dataclass
class ExportClass:
    id: int
    name: str
    path: str  # stored path ("parent/child"), see labeling.selectors.classes
    folder: str  # sanitized, unique (case-insensitively) within the export
    index: int = -1  # position in sorted(folder): what torchvision's ImageFolder assigns


@dataclass
class ExportRow:
    item_id: int
    sha256: str
    original_name: str
    storage_name: str  # key of the original in the media storage
    file_name: str  # the sanitized original name, unique within the export (labeling.selectors.export_names)
    width: int
    height: int
    split: str  # train | val | test
    class_ids: list[int] = field(default_factory=list)
    source: str = ""
    annotator_count: int = 0


@dataclass
class ExportPlan:
    project: Project
    filters: ExportFilters
    classes: list[ExportClass]  # sorted by folder, index = position
    rows: list[ExportRow]
    dataset_hash: str

    @property
    def class_by_id(self) -> dict[int, ExportClass]:
        return {c.id: c for c in self.classes}

    def counts(self) -> dict:
        per_split: dict[str, int] = defaultdict(int)
        per_class: dict[str, int] = defaultdict(int)
        per_split_class: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        by_id = self.class_by_id
        for row in self.rows:
            per_split[row.split] += 1
            for class_id in row.class_ids:
                per_class[by_id[class_id].path] += 1
                per_split_class[row.split][by_id[class_id].path] += 1
        return {
            "items": len(self.rows),
            "per_split": {s: per_split.get(s, 0) for s in ("train", "val", "test")},
            "per_class": {c.path: per_class.get(c.path, 0) for c in self.classes},
            "per_split_class": {s: dict(per_split_class[s]) for s in ("train", "val", "test")},
        }


def split_for(*, sha256: str, item_split: str, val_fraction: float, phash: str = "") -> str:
    """holdout -> test; train -> train or val, decided by the perceptual hash where there is one (a picture and its
    re-saved copies fall on the same side, as imports keep them in one of train and holdout), else the content hash.
    Stable across exports."""
    if item_split == Split.HOLDOUT:
        return "test"
    key = phash or sha256
    bucket = int(hashlib.sha256(f"val:{key}".encode()).hexdigest()[:8], 16) / 0x1_0000_0000
    return "val" if bucket < val_fraction else "train"


def dataset_hash(labels: Iterable[tuple[str, Iterable[int]]], *, paths: Mapping[int, str], multi_label: bool) -> str:
    """The dataset hash of (item sha256, resolved class ids) pairs; `paths` maps class ids to stored paths.

    A single-label item without a class is not part of the dataset (an export has no folder for it), so an
    export and a training snapshot of the same resolved labels hash the same rows.
    """
    digest = hashlib.sha256()
    rows = ((sha, sorted(paths[c] for c in class_ids)) for sha, class_ids in labels)
    for sha, names in sorted(row for row in rows if multi_label or row[1]):
        digest.update(f"{sha}\t{json.dumps(names, ensure_ascii=False)}\n".encode())
    return digest.hexdigest()


def class_ids_with_descendants(class_ids: Iterable[int], tree: ClassTree) -> set[int]:
    """`class_ids` and every class under them (children, their children, ...), from one read of the tree: what a
    class stands for in a filter (a dataset export's classes, the items API's label_class). An id missing from
    `tree` stands for itself only."""
    children: dict[int | None, list[int]] = defaultdict(list)
    for pk, (_name, parent) in tree.items():
        children[parent].append(pk)
    ids = set(class_ids)
    return ids | classes_below(children, ids)


def resolve_class_names(names: tuple[str, ...], tree: ClassTree) -> set[int]:
    """Class ids for names typed in the export filter, each standing for its class and every class under it.

    An entry is a path, spelled as imports spell one (`class_path_parse`: "animal/cat", "animal / cat",
    "/animal/cat/"), or else a class's own name at any depth ("cat"). Unknown names and entries that are no
    path ("a//b") raise ValidationError naming them.
    """
    paths = class_paths(tree)
    named: set[int] = set()
    unknown: list[str] = []
    malformed: list[str] = []
    for raw in names:
        try:
            key = class_path_parse(raw)
        except ValueError as exc:
            malformed.append(f"{raw!r} ({exc})")
            continue
        hits = {pk for pk, path in paths.items() if path == key} or {
            pk for pk, (name, _parent) in tree.items() if name == key
        }
        if not hits:
            unknown.append(raw)
        named |= hits
    problems = []
    if unknown:
        problems.append(f"Unknown class(es): {', '.join(sorted(unknown))}.")
    if malformed:
        problems.append(f"Not a class path: {', '.join(malformed)}.")
    if problems:
        raise ValidationError(" ".join(problems))
    return class_ids_with_descendants(named, tree)


def _agreed_item_ids(*, project: Project, resolved: dict[int, set[int]]) -> set[int]:
    """Items whose every annotator (latest live annotation per user) chose exactly the resolved label set."""
    live = Annotation.objects.filter(item__project=project).answers()
    latest: dict[tuple[int, int], int] = {}
    for ann_id, item_id, user_id in live.order_by("id").values_list("id", "item_id", "user_id").iterator(2000):
        latest[(item_id, user_id)] = ann_id
    chosen: dict[int, set[int]] = defaultdict(set)
    through = Annotation.classes.through.objects.filter(annotation__item__project=project)
    for ann_id, class_id in through.values_list("annotation_id", "labelclass_id").iterator(2000):
        chosen[ann_id].add(class_id)
    agreed: dict[int, bool] = {}
    for (item_id, _user), ann_id in latest.items():
        if item_id in resolved:
            agreed[item_id] = agreed.get(item_id, True) and chosen.get(ann_id, set()) == resolved[item_id]
    return {item_id for item_id, ok in agreed.items() if ok}


def export_filters_validate(*, project: Project, filters: ExportFilters) -> None:
    """Raise ValidationError with a clear message for filters that cannot apply to this project."""
    if not 0 <= filters.val_fraction < 1:
        raise ValidationError("val_fraction must be in [0, 1).")
    if filters.min_annotators < 0:
        raise ValidationError("min_annotators cannot be negative.")
    if filters.classes:
        resolve_class_names(filters.classes, class_tree(project=project))


def resolved_labels_kept(*, project: Project, filters: ExportFilters) -> QuerySet[ResolvedLabel]:
    """The resolved labels that pass the filters a query can apply (min annotators, only reviewed); export_plan
    applies the class filters and "only agreed" to them in Python."""
    labels = ResolvedLabel.objects.filter(project=project)
    if filters.min_annotators:
        labels = labels.filter(annotator_count__gte=filters.min_annotators)
    if filters.only_reviewed:
        reviewed = Review.objects.filter(
            annotation__item_id=OuterRef("item_id"), verdict__in=[Verdict.ACCEPT, Verdict.CORRECT]
        )
        labels = labels.filter(Q(source=LabelSource.REVIEW) | Exists(reviewed))
    return labels


def export_plan(*, project: Project, filters: ExportFilters) -> ExportPlan:
    """Everything an export writes, computed with a handful of queries (no per-item query)."""
    export_filters_validate(project=project, filters=filters)
    tree = class_tree(project=project)
    paths = class_paths(tree)
    wanted = resolve_class_names(filters.classes, tree) if filters.classes else None

    labels = resolved_labels_kept(project=project, filters=filters)
    label_rows = {
        item_id: (source, count)
        for item_id, source, count in labels.values_list("item_id", "source", "annotator_count").iterator(5000)
    }
    resolved: dict[int, set[int]] = defaultdict(set)
    through = ResolvedLabel.classes.through.objects.filter(resolvedlabel__project=project)
    for item_id, class_id in through.values_list("resolvedlabel__item_id", "labelclass_id").iterator(5000):
        if item_id in label_rows:
            resolved[item_id].add(class_id)
    for item_id in label_rows:
        resolved.setdefault(item_id, set())
    if filters.only_agreed:
        keep = _agreed_item_ids(project=project, resolved=resolved)
        resolved = defaultdict(set, {k: v for k, v in resolved.items() if k in keep})
    if wanted is not None:
        resolved = defaultdict(set, {k: v & wanted for k, v in resolved.items() if v & wanted})
    if not project.is_multi_label:
        # A single-label item with no class (e.g. only skips resolved) cannot be placed in a class folder.
        resolved = defaultdict(set, {k: v for k, v in resolved.items() if v})

    rows: list[ExportRow] = []
    items = Item.objects.filter(project=project, resolved__isnull=False).order_by("id")
    fields = ("id", "sha256", "original_name", "file", "width", "height", "split", "phash")
    for pk, sha, original, storage_name, width, height, item_split, phash in items.values_list(*fields).iterator(5000):
        if pk not in resolved:
            continue
        source, count = label_rows[pk]
        rows.append(
            ExportRow(
                item_id=pk,
                sha256=sha,
                original_name=original,
                storage_name=storage_name,
                file_name="",  # below, once every row is known: a name is unique within the whole export
                width=width,
                height=height,
                split=split_for(sha256=sha, item_split=item_split, val_fraction=filters.val_fraction, phash=phash),
                class_ids=sorted(resolved[pk], key=lambda c: paths[c]),
                source=source,
                annotator_count=count,
            )
        )

    for row, name in zip(rows, export_file_names(rows), strict=True):
        row.file_name = name

    used = sorted({c for row in rows for c in row.class_ids}, key=lambda c: (paths[c], c))
    classes = [
        ExportClass(id=class_id, name=tree[class_id][0], path=paths[class_id], folder=folder)
        for class_id, folder in zip(used, export_folder_names([paths[c] for c in used]), strict=True)
    ]
    classes.sort(key=lambda c: c.folder)
    for index, export_class in enumerate(classes):
        export_class.index = index
    digest = dataset_hash(
        ((row.sha256, row.class_ids) for row in rows), paths=paths, multi_label=project.is_multi_label
    )
    return ExportPlan(project=project, filters=filters, classes=classes, rows=rows, dataset_hash=digest)


# ---- how long export files are kept ---------------------------------------------------------------------------

# Jobs whose result is a file in the export storage (dataset and model exports, batch inference CSVs).
FILE_JOB_KINDS = (JobKind.EXPORT_DATASET, JobKind.EXPORT_MODEL, JobKind.INFERENCE)


def export_ttl() -> timedelta | None:
    """How long a finished job's file is kept (LABELLOOP_EXPORT_TTL_HOURS); None when kept forever (0)."""
    hours = float(getattr(settings, "LABELLOOP_EXPORT_TTL_HOURS", 72) or 0)
    return timedelta(hours=hours) if hours > 0 else None


def export_expires_at(job: Job) -> datetime | None:
    """When the job's file is (or was) deleted; None for jobs without a file or when files are kept forever."""
    ttl = export_ttl()
    if ttl is None or job.kind not in FILE_JOB_KINDS or job.status != JobStatus.SUCCEEDED or not job.finished_at:
        return None
    return job.finished_at + ttl


def export_is_expired(job: Job, *, now: datetime | None = None) -> bool:
    """True once the file was deleted by the clean-up, or is past its time and about to be."""
    if (job.result or {}).get("expired_at"):
        return True
    expires = export_expires_at(job)
    return expires is not None and expires <= (now or timezone.now())


def export_jobs_past_ttl(*, now: datetime | None = None, limit: int = 500):
    """Finished file jobs past LABELLOOP_EXPORT_TTL_HOURS whose file is not yet deleted (oldest first)."""
    ttl = export_ttl()
    if ttl is None:
        return Job.objects.none()
    cutoff = (now or timezone.now()) - ttl
    return (
        Job.objects.filter(kind__in=FILE_JOB_KINDS, status=JobStatus.SUCCEEDED, finished_at__lt=cutoff)
        .exclude(result__has_key="expired_at")
        .order_by("finished_at")[:limit]
    )


def export_jobs_abandoned(*, now: datetime | None = None):
    """File jobs still queued or running LABELLOOP_EXPORT_TTL_HOURS after they were asked for: their task was
    lost (broker flushed, message dropped). They would otherwise count against the job limits forever."""
    ttl = export_ttl()
    if ttl is None:
        return Job.objects.none()
    cutoff = (now or timezone.now()) - ttl
    return Job.objects.filter(
        kind__in=FILE_JOB_KINDS, status__in=(JobStatus.QUEUED, JobStatus.RUNNING), created_at__lt=cutoff
    )
